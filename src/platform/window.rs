//! How the desktop recognises vramdeck's window: its icon and name in the taskbar.
//!
//! X11: egui-winit hands winit the app id as the class and an empty string as the instance,
//! so window managers, taskbars and `xprop` saw WM_CLASS = ("", "vramdeck"); [`identify`]
//! sets both halves, the way X11 programs name themselves (Wayland uses the app id as is).
//! Windows: the taskbar groups windows by the process's AppUserModelID, set by
//! [`before_window`] before any window exists (the installer's Start-menu shortcut carries
//! the same id).

use raw_window_handle::HasWindowHandle;

/// The AppUserModelID of vramdeck on Windows (the shortcut the installer makes has it too).
pub const APP_USER_MODEL_ID: &str = "vramdeck.vramdeck";

/// The named mutex vramdeck's window holds on Windows while it runs (the installer checks it).
#[cfg_attr(not(windows), allow(dead_code))]
pub const RUNNING_MUTEX: &str = "vramdeck-running";

/// Called once before the window opens.
pub fn before_window() {
    imp::before_window()
}

/// Names the open `window` for the desktop.
pub fn identify(window: &impl HasWindowHandle) -> Result<(), String> {
    imp::identify(window)
}

#[cfg(unix)]
mod imp {
    use raw_window_handle::{HasWindowHandle, RawWindowHandle};
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{AtomEnum, PropMode};
    use x11rb::wrapper::ConnectionExt;

    /// WM_CLASS: the instance, then the class, each NUL-terminated.
    const WM_CLASS: &[u8] = b"vramdeck\0vramdeck\0";

    pub fn before_window() {}

    /// Names the X11 window ("vramdeck", "vramdeck"); does nothing on Wayland.
    pub fn identify(window: &impl HasWindowHandle) -> Result<(), String> {
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
}

#[cfg(windows)]
mod imp {
    use raw_window_handle::HasWindowHandle;

    pub fn before_window() {
        let id: Vec<u16> = super::APP_USER_MODEL_ID
            .encode_utf16()
            .chain(std::iter::once(0))
            .collect();
        // SAFETY: a NUL-terminated UTF-16 string that outlives the call.
        unsafe {
            windows_sys::Win32::UI::Shell::SetCurrentProcessExplicitAppUserModelID(id.as_ptr())
        };
        // The installer and uninstaller look for this mutex and ask the user to quit vramdeck
        // before they replace or remove its files (packaging/windows/installer.nsi). Its handle
        // is kept open for the process's life; Windows closes it at exit, even a crash.
        let name: Vec<u16> = super::RUNNING_MUTEX
            .encode_utf16()
            .chain(std::iter::once(0))
            .collect();
        // SAFETY: a NUL-terminated UTF-16 name that outlives the call; no security attributes.
        unsafe {
            windows_sys::Win32::System::Threading::CreateMutexW(std::ptr::null(), 0, name.as_ptr())
        };
    }

    pub fn identify(_: &impl HasWindowHandle) -> Result<(), String> {
        Ok(())
    }
}
