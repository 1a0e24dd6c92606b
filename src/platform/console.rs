//! The terminal a command prints to.

/// Lets a command whose output goes into a pipe that closed early (`vramdeck agents | head`)
/// end quietly instead of panicking on the failed write: on Unix the default SIGPIPE action
/// (Rust's runtime ignores the signal, so every print would fail with "Broken pipe"), which
/// ends the process as shells expect (status 141); elsewhere a panic hook that turns the
/// failed print into a quiet exit.
pub fn end_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default action of one signal at start-up, before other threads.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    #[cfg(not(unix))]
    {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .unwrap_or("");
            if text.starts_with("failed printing to std") {
                std::process::exit(0);
            }
            previous(info);
        }));
    }
}
