//! The tray icon: VRAM at a glance in its tooltip, and a menu with Free VRAM, show/hide and
//! quit. A StatusNotifierItem over D-Bus on Linux (ksni; no GTK), the notification area on
//! Windows (tray-icon). What the user picks arrives as [`TrayCommand`]s; every pick wakes the
//! window, whose logic runs even while it is hidden.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

/// What the user picked in the tray.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrayCommand {
    /// Show the window if hidden, hide it if shown (a click on the icon).
    ShowHide,
    /// Free VRAM in every agent at the chosen level.
    FreeVram,
    /// End vramdeck.
    Quit,
    /// The desktop's tray went away: the window must be shown, or nothing would be left.
    Lost,
}

/// What the tray shows, in the user's language.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrayText {
    /// Tooltip heading ("vramdeck", "vramdeck (demo)").
    pub title: String,
    /// One line per GPU.
    pub lines: Vec<String>,
    /// Menu entries.
    pub free: String,
    /// Menu entry that shows or hides the window.
    pub show_hide: String,
    /// Menu entry that quits.
    pub quit: String,
}

/// Called after every command, from the tray's thread (wakes the window).
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// A tray icon while it lives; dropped, it leaves the tray.
pub struct Tray {
    commands: Receiver<TrayCommand>,
    shown: TrayText,
    imp: imp::TrayImpl,
}

impl Tray {
    /// Puts vramdeck's icon in the tray, or says why there is none (no tray on this desktop,
    /// no session bus).
    pub fn spawn(text: TrayText, wake: Wake) -> Result<Tray, String> {
        let (tx, commands) = std::sync::mpsc::channel();
        let sender = CommandSender {
            tx: Arc::new(Mutex::new(tx)),
            wake,
        };
        let imp = imp::TrayImpl::spawn(&text, sender)?;
        Ok(Tray {
            commands,
            shown: text,
            imp,
        })
    }

    /// Commands picked since the last call.
    pub fn commands(&self) -> Vec<TrayCommand> {
        self.commands.try_iter().collect()
    }

    /// Shows `text`; does nothing when it is what the tray already shows.
    pub fn set_text(&mut self, text: TrayText) {
        if text != self.shown {
            self.imp.set_text(&text);
            self.shown = text;
        }
    }

    /// The text on show.
    pub fn text(&self) -> &TrayText {
        &self.shown
    }
}

/// Sends a command and wakes the window; shared by the tray's callbacks.
#[derive(Clone)]
struct CommandSender {
    tx: Arc<Mutex<Sender<TrayCommand>>>,
    wake: Wake,
}

impl CommandSender {
    fn send(&self, command: TrayCommand) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(command);
        }
        (self.wake)();
    }
}

/// vramdeck's icon as RGBA, `(pixels, width, height)`.
fn icon_rgba() -> Option<(Vec<u8>, u32, u32)> {
    let icon =
        eframe::icon_data::from_png_bytes(include_bytes!("../../assets/vramdeck-128.png")).ok()?;
    Some((icon.rgba, icon.width, icon.height))
}

/// RGBA pixels as ARGB32 in network byte order (the StatusNotifierItem format).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn rgba_to_argb(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| [p[3], p[0], p[1], p[2]])
        .collect()
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{CommandSender, TrayCommand, TrayText};
    use ksni::blocking::TrayMethods;

    /// The item served on the session bus.
    struct Item {
        text: TrayText,
        icon: Vec<ksni::Icon>,
        sender: CommandSender,
    }

    impl ksni::Tray for Item {
        fn id(&self) -> String {
            "vramdeck".into()
        }

        fn title(&self) -> String {
            self.text.title.clone()
        }

        fn icon_name(&self) -> String {
            // Installed by the .desktop package; the pixmap below covers a build run in place.
            "vramdeck".into()
        }

        fn icon_pixmap(&self) -> Vec<ksni::Icon> {
            self.icon.clone()
        }

        fn tool_tip(&self) -> ksni::ToolTip {
            ksni::ToolTip {
                title: self.text.title.clone(),
                description: self.text.lines.join("\n"),
                ..Default::default()
            }
        }

        fn activate(&mut self, _x: i32, _y: i32) {
            self.sender.send(TrayCommand::ShowHide);
        }

        fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
            let item = |label: &str, command: TrayCommand| {
                ksni::menu::StandardItem {
                    label: label.replace('_', "__"),
                    activate: Box::new(move |item: &mut Item| item.sender.send(command)),
                    ..Default::default()
                }
                .into()
            };
            vec![
                item(&self.text.free, TrayCommand::FreeVram),
                item(&self.text.show_hide, TrayCommand::ShowHide),
                ksni::MenuItem::Separator,
                item(&self.text.quit, TrayCommand::Quit),
            ]
        }

        fn watcher_offline(&self, _reason: ksni::OfflineReason) -> bool {
            self.sender.send(TrayCommand::Lost);
            true
        }
    }

    pub struct TrayImpl(ksni::blocking::Handle<Item>);

    impl TrayImpl {
        pub fn spawn(text: &TrayText, sender: CommandSender) -> Result<TrayImpl, String> {
            let icon = super::icon_rgba()
                .map(|(rgba, w, h)| {
                    vec![ksni::Icon {
                        width: w as i32,
                        height: h as i32,
                        data: super::rgba_to_argb(&rgba),
                    }]
                })
                .unwrap_or_default();
            let item = Item {
                text: text.clone(),
                icon,
                sender,
            };
            item.spawn()
                .map(TrayImpl)
                .map_err(|e| crate::t!("tray-unavailable", error = e.to_string()))
        }

        pub fn set_text(&self, text: &TrayText) {
            let text = text.clone();
            self.0.update(move |item| item.text = text);
        }
    }

    impl Drop for TrayImpl {
        fn drop(&mut self) {
            // Leaves the tray now, not when the process ends.
            let _ = self.0.shutdown();
        }
    }
}

#[cfg(windows)]
mod imp {
    use super::{CommandSender, TrayCommand, TrayText};
    use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
    use tray_icon::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};

    pub struct TrayImpl {
        icon: TrayIcon,
        free: MenuItem,
        show_hide: MenuItem,
        quit: MenuItem,
    }

    /// The tooltip: Windows cuts it at 127 characters.
    fn tooltip(text: &TrayText) -> String {
        let mut s = std::iter::once(text.title.as_str())
            .chain(text.lines.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("\n");
        if s.chars().count() > 127 {
            s = s.chars().take(126).collect::<String>() + "…";
        }
        s
    }

    impl TrayImpl {
        /// Must run on the thread of the window's event loop (the tray's window lives there).
        pub fn spawn(text: &TrayText, sender: CommandSender) -> Result<TrayImpl, String> {
            let unavailable =
                |e: &dyn std::fmt::Display| crate::t!("tray-unavailable", error = e.to_string());
            let free = MenuItem::with_id("free", &text.free, true, None);
            let show_hide = MenuItem::with_id("show-hide", &text.show_hide, true, None);
            let quit = MenuItem::with_id("quit", &text.quit, true, None);
            let menu = Menu::new();
            menu.append_items(&[&free, &show_hide, &PredefinedMenuItem::separator(), &quit])
                .map_err(|e| unavailable(&e))?;
            let mut builder = TrayIconBuilder::new()
                .with_id("vramdeck")
                .with_tooltip(tooltip(text))
                .with_menu(Box::new(menu))
                .with_menu_on_left_click(false);
            if let Some((rgba, w, h)) = super::icon_rgba()
                && let Ok(icon) = tray_icon::Icon::from_rgba(rgba, w, h)
            {
                builder = builder.with_icon(icon);
            }
            let icon = builder.build().map_err(|e| unavailable(&e))?;
            let on_menu = sender.clone();
            MenuEvent::set_event_handler(Some(move |e: MenuEvent| {
                let command = match e.id().0.as_str() {
                    "free" => TrayCommand::FreeVram,
                    "show-hide" => TrayCommand::ShowHide,
                    "quit" => TrayCommand::Quit,
                    _ => return,
                };
                on_menu.send(command);
            }));
            TrayIconEvent::set_event_handler(Some(move |e: TrayIconEvent| {
                if let TrayIconEvent::Click {
                    button: MouseButton::Left,
                    button_state: MouseButtonState::Up,
                    ..
                } = e
                {
                    sender.send(TrayCommand::ShowHide);
                }
            }));
            Ok(TrayImpl {
                icon,
                free,
                show_hide,
                quit,
            })
        }

        pub fn set_text(&self, text: &TrayText) {
            let _ = self.icon.set_tooltip(Some(tooltip(text)));
            self.free.set_text(&text.free);
            self.show_hide.set_text(&text.show_hide);
            self.quit.set_text(&text.quit);
        }
    }

    impl Drop for TrayImpl {
        fn drop(&mut self) {
            MenuEvent::set_event_handler(None::<fn(MenuEvent)>);
            TrayIconEvent::set_event_handler(None::<fn(TrayIconEvent)>);
        }
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
mod imp {
    use super::{CommandSender, TrayText};

    pub struct TrayImpl;

    impl TrayImpl {
        pub fn spawn(_text: &TrayText, _sender: CommandSender) -> Result<TrayImpl, String> {
            Err(crate::t!(
                "tray-unavailable",
                error = "not built for this system"
            ))
        }

        pub fn set_text(&self, _text: &TrayText) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_decodes_and_converts_to_argb() {
        let (rgba, w, h) = icon_rgba().expect("the PNG is ours");
        assert_eq!(rgba.len(), (w * h * 4) as usize);
        let argb = rgba_to_argb(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(argb, [4, 1, 2, 3, 8, 5, 6, 7]);
    }
}
