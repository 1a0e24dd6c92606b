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

#[cfg(unix)]
mod imp {
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
    pub fn show(summary: &str, body: &str) {
        let _ = tauri_winrt_notification::Toast::new(super::super::window::APP_USER_MODEL_ID)
            .title(summary)
            .text1(body)
            .show();
    }
}
