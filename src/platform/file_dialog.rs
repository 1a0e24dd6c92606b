//! Whether the desktop can show its own file dialog. rfd asks, on Linux, the desktop portal
//! over D-Bus and then zenity: with neither, the window uses its in-window chooser. Windows
//! always has its common dialogs.

/// Why no system file dialog can be shown, or `None` when one may be.
pub fn unavailable() -> Option<String> {
    imp::unavailable()
}

/// True when `program` is an executable file in one of `paths` (a PATH value).
pub fn on_path(paths: Option<&std::ffi::OsStr>, program: &str) -> bool {
    paths.is_some_and(|paths| {
        std::env::split_paths(paths).any(|dir| super::files::is_executable(&dir.join(program)))
    })
}

#[cfg(unix)]
mod imp {
    pub fn unavailable() -> Option<String> {
        let zenity = super::on_path(std::env::var_os("PATH").as_deref(), "zenity");
        if zenity || portal_reachable() {
            None
        } else {
            Some(crate::t!("file-no-dialog-installed"))
        }
    }

    /// True when the session bus has the desktop portal running or can start it.
    fn portal_reachable() -> bool {
        const PORTAL: &str = "org.freedesktop.portal.Desktop";
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
            return false;
        }
        let Ok(conn) = zbus::blocking::Connection::session() else {
            return false;
        };
        let Ok(bus) = zbus::blocking::fdo::DBusProxy::new(&conn) else {
            return false;
        };
        let Ok(name) = zbus::names::BusName::try_from(PORTAL) else {
            return false;
        };
        bus.name_has_owner(name).unwrap_or(false)
            || bus
                .list_activatable_names()
                .is_ok_and(|names| names.iter().any(|n| n.as_str() == PORTAL))
    }
}

#[cfg(windows)]
mod imp {
    pub fn unavailable() -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_counts_only_when_on_path_and_executable() {
        let dir = tempfile::tempdir().unwrap();
        let name = if cfg!(windows) {
            "zenity.exe"
        } else {
            "zenity"
        };
        let zenity = dir.path().join(name);
        std::fs::write(&zenity, "").unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert!(!on_path(Some(&path), name), "not executable");
            std::fs::set_permissions(&zenity, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert!(on_path(Some(&path), name));
        assert!(!on_path(None, name));
        assert!(!on_path(Some(std::ffi::OsStr::new("/nonexistent")), name));
    }
}
