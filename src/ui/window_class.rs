//! The window's X11 class. egui-winit hands winit the app id as the class and an empty string
//! as the instance, so X11 window managers, taskbars and `xprop` saw WM_CLASS = ("",
//! "vramdeck"). This sets both halves, the way X11 programs name themselves.

use raw_window_handle::{HasWindowHandle, RawWindowHandle};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, PropMode};
use x11rb::wrapper::ConnectionExt;

/// WM_CLASS: the instance, then the class, each NUL-terminated.
const WM_CLASS: &[u8] = b"vramdeck\0vramdeck\0";

/// Names the X11 window behind `window` ("vramdeck", "vramdeck"); does nothing on Wayland.
pub fn set(window: &impl HasWindowHandle) -> Result<(), String> {
    let handle = window.window_handle().map_err(|e| e.to_string())?;
    let id = match handle.as_raw() {
        RawWindowHandle::Xlib(h) => h.window as u32,
        RawWindowHandle::Xcb(h) => h.window.get(),
        _ => return Ok(()),
    };
    let (conn, _) = x11rb::connect(None).map_err(|e| e.to_string())?;
    conn.change_property8(
        PropMode::REPLACE,
        id,
        AtomEnum::WM_CLASS,
        AtomEnum::STRING,
        WM_CLASS,
    )
    .map_err(|e| e.to_string())?
    .check()
    .map_err(|e| e.to_string())?;
    conn.flush().map_err(|e| e.to_string())
}
