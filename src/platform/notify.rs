//! Desktop notifications: notify-send on Linux (the freedesktop notification service), a toast
//! on Windows. Sent from a thread of their own: the window never waits for the desktop.

/// Shows `summary` and `body` as a desktop notification; a desktop without the service shows
/// nothing (the alert is still in the window).
pub fn notify(summary: &str, body: &str) {
    let (summary, body) = (summary.to_string(), body.to_string());
    let _ = std::thread::Builder::new()
        .name("vramdeck-notify".into())
        .spawn(move || imp::show(&summary, &body));
}

/// Why desktop notifications cannot be shown here, if they cannot (looked up once).
pub fn unavailable() -> Option<&'static str> {
    static WHY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    WHY.get_or_init(imp::unavailable).as_deref()
}

#[cfg(unix)]
mod imp {
    /// notify-send on the PATH, or why not.
    pub fn unavailable() -> Option<String> {
        let found = std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join("notify-send").is_file())
        });
        (!found).then(|| crate::t!("alerts-no-notifier"))
    }

    pub fn show(summary: &str, body: &str) {
        let _ = std::process::Command::new("notify-send")
            .args(["--app-name=vramdeck", "--icon=vramdeck", summary, body])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[cfg(windows)]
mod imp {
    /// Toasts are part of Windows.
    pub fn unavailable() -> Option<String> {
        None
    }

    pub fn show(summary: &str, body: &str) {
        let _ = tauri_winrt_notification::Toast::new(super::super::window::APP_USER_MODEL_ID)
            .title(summary)
            .text1(body)
            .show();
    }
}
