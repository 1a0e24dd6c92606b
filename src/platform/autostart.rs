//! Starting with the session, opt-in: an XDG autostart entry on Linux, the user's Run key on
//! Windows. Either starts vramdeck with `--hidden` (in the tray when there is one). The entry
//! names this executable, so moving the program means ticking the box again.

/// The argument the session starts vramdeck with.
pub const HIDDEN_ARG: &str = "--hidden";

/// True when the session starts vramdeck.
pub fn enabled() -> bool {
    imp::enabled()
}

/// Adds or removes the entry that starts vramdeck with the session.
pub fn set(enabled: bool) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    imp::set(enabled, &exe).map_err(|e| crate::t!("autostart-failed", error = e))
}

/// Where the session looks for the entry, for messages ("~/.config/autostart/vramdeck.desktop",
/// the registry key).
pub fn location() -> String {
    imp::location()
}

/// `path` quoted as the Desktop Entry specification's Exec key wants an argument: in double
/// quotes, with `"`, `` ` ``, `$` and `\` escaped, then every `\` doubled again for the file's
/// string escaping, and every `%` written `%%` (a field code otherwise: GLib expands `%c`).
#[cfg_attr(not(unix), allow(dead_code))]
fn exec_quoted(path: &str) -> String {
    let mut quoted = String::from("\"");
    for c in path.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted.replace('\\', "\\\\").replace('%', "%%")
}

/// The autostart entry for `exe`, or why its path cannot be written in one: a line break or
/// other control character would end the Exec line and start keys of its own.
#[cfg_attr(not(unix), allow(dead_code))]
fn desktop_entry(exe: &std::path::Path) -> Result<String, String> {
    let path = exe
        .to_str()
        .filter(|p| !p.chars().any(char::is_control))
        .ok_or_else(|| {
            crate::t!(
                "autostart-bad-path",
                path = crate::text::sanitized(&exe.to_string_lossy())
            )
        })?;
    Ok(format!(
        "[Desktop Entry]\nType=Application\nName=vramdeck\nComment=GPU memory monitor, started \
         with the session\nExec={} {HIDDEN_ARG}\nIcon=vramdeck\nTerminal=false\n\
         X-GNOME-Autostart-enabled=true\n",
        exec_quoted(path)
    ))
}

#[cfg(unix)]
mod imp {
    use std::io::Write;
    use std::path::{Path, PathBuf};

    /// `$XDG_CONFIG_HOME/autostart/vramdeck.desktop`.
    pub fn entry_path() -> Option<PathBuf> {
        directories::BaseDirs::new().map(|d| d.config_dir().join("autostart/vramdeck.desktop"))
    }

    pub fn enabled() -> bool {
        entry_path().is_some_and(|p| enabled_at(&p))
    }

    pub fn enabled_at(path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
    }

    pub fn set(enabled: bool, exe: &Path) -> Result<(), String> {
        let path = entry_path().ok_or("no home folder")?;
        set_at(&path, enabled, exe)
    }

    pub fn location() -> String {
        entry_path()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// Writes (through a new file renamed into place, readable by all like any .desktop
    /// file) or removes the entry at `path`.
    pub fn set_at(path: &Path, enabled: bool, exe: &Path) -> Result<(), String> {
        let say = |e: std::io::Error| format!("{}: {e}", path.display());
        if !enabled {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(say(e)),
                _ => Ok(()),
            };
        }
        let entry = super::desktop_entry(exe)?;
        let dir = path.parent().ok_or("no folder")?;
        std::fs::create_dir_all(dir).map_err(say)?;
        let temp = dir.join(format!(".vramdeck.desktop.{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(say)?;
        let written = file
            .write_all(entry.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644))
            })
            .and_then(|()| std::fs::rename(&temp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(say(e));
        }
        Ok(())
    }
}

#[cfg(windows)]
mod imp {
    use std::path::Path;
    use windows_sys::Win32::Foundation::ERROR_SUCCESS;
    use windows_sys::Win32::System::Registry::{
        HKEY_CURRENT_USER, REG_SZ, RRF_RT_REG_SZ, RegDeleteKeyValueW, RegGetValueW, RegSetKeyValueW,
    };

    const RUN_KEY: &str = r"Software\Microsoft\Windows\CurrentVersion\Run";
    const VALUE: &str = "vramdeck";

    fn wide(s: &str) -> Vec<u16> {
        s.encode_utf16().chain(std::iter::once(0)).collect()
    }

    /// The command the Run key holds, if any.
    pub fn command() -> Option<String> {
        let (key, value) = (wide(RUN_KEY), wide(VALUE));
        let mut buf = vec![0u16; 1024];
        let mut len = (buf.len() * 2) as u32;
        // SAFETY: the names are NUL-terminated; `len` is the buffer's size in bytes.
        let status = unsafe {
            RegGetValueW(
                HKEY_CURRENT_USER,
                key.as_ptr(),
                value.as_ptr(),
                RRF_RT_REG_SZ,
                std::ptr::null_mut(),
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if status != ERROR_SUCCESS {
            return None;
        }
        let chars = (len as usize / 2).min(buf.len());
        Some(
            String::from_utf16_lossy(&buf[..chars])
                .trim_end_matches('\0')
                .to_string(),
        )
    }

    pub fn enabled() -> bool {
        command().is_some()
    }

    pub fn location() -> String {
        format!(r"HKEY_CURRENT_USER\{RUN_KEY}\{VALUE}")
    }

    pub fn set(enabled: bool, exe: &Path) -> Result<(), String> {
        let (key, value) = (wide(RUN_KEY), wide(VALUE));
        let status = if enabled {
            let data = wide(&format!("\"{}\" {}", exe.display(), super::HIDDEN_ARG));
            // SAFETY: as above; `data` is a NUL-terminated REG_SZ of the given byte length.
            unsafe {
                RegSetKeyValueW(
                    HKEY_CURRENT_USER,
                    key.as_ptr(),
                    value.as_ptr(),
                    REG_SZ,
                    data.as_ptr().cast(),
                    (data.len() * 2) as u32,
                )
            }
        } else {
            // SAFETY: as above.
            let status =
                unsafe { RegDeleteKeyValueW(HKEY_CURRENT_USER, key.as_ptr(), value.as_ptr()) };
            // Already absent is what was asked for.
            if status == windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND {
                ERROR_SUCCESS
            } else {
                status
            }
        };
        if status == ERROR_SUCCESS {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                location(),
                std::io::Error::from_raw_os_error(status as i32)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_quotes_spaces_and_the_characters_the_spec_reserves() {
        assert_eq!(
            exec_quoted("/opt/vram deck/vramdeck"),
            "\"/opt/vram deck/vramdeck\""
        );
        // `$` escaped for Exec (\$), then the backslash doubled for the file (\\$).
        assert_eq!(exec_quoted("/a$b\"c"), "\"/a\\\\$b\\\\\"c\"");
        // A field code in a folder's name stays literal: GLib expanded `%c` to the app's name.
        assert_eq!(
            exec_quoted("/opt/100%c/vramdeck"),
            "\"/opt/100%%c/vramdeck\""
        );
    }

    #[test]
    fn a_path_with_a_line_break_is_refused_instead_of_injecting_keys() {
        let evil = std::path::Path::new("/tmp/x\nExec=/tmp/evil\n/vramdeck");
        let refused = desktop_entry(evil).unwrap_err();
        assert!(refused.contains("line break"), "{refused}");
        assert!(!refused.contains('\n'), "{refused:?}");
        let fine = desktop_entry(std::path::Path::new("/usr/bin/vramdeck")).unwrap();
        assert_eq!(fine.matches("Exec=").count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn the_entry_is_written_readable_then_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autostart/vramdeck.desktop");
        imp::set_at(&path, true, std::path::Path::new("/opt/vram deck/vramdeck")).unwrap();
        assert!(imp::enabled_at(&path));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("[Desktop Entry]\n"));
        assert!(
            text.contains("\nExec=\"/opt/vram deck/vramdeck\" --hidden\n"),
            "{text}"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // Writing again replaces it; no temporary file is left.
        imp::set_at(&path, true, std::path::Path::new("/usr/bin/vramdeck")).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["vramdeck.desktop"]);
        imp::set_at(&path, false, std::path::Path::new("/usr/bin/vramdeck")).unwrap();
        assert!(!imp::enabled_at(&path));
        // Removing what is not there is not an error.
        imp::set_at(&path, false, std::path::Path::new("/usr/bin/vramdeck")).unwrap();
    }

    #[cfg(windows)]
    #[test]
    fn the_run_key_is_written_and_removed() {
        let exe = std::path::Path::new(r"C:\Program Files\vramdeck\vramdeck.exe");
        imp::set(true, exe).unwrap();
        assert_eq!(
            imp::command().as_deref(),
            Some(r#""C:\Program Files\vramdeck\vramdeck.exe" --hidden"#)
        );
        assert!(enabled());
        imp::set(false, exe).unwrap();
        assert!(!enabled());
        imp::set(false, exe).unwrap();
    }
}
