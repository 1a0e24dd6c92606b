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

/// Windows: vramdeck.exe is a GUI program (no console window opens beside it from Explorer or
/// the Start menu), so a command typed in cmd or PowerShell has no console of its own to print
/// to: it attaches to the one it was started from. Output that was redirected (to a file or a
/// pipe) keeps its handles. Elsewhere nothing to do.
pub fn attach_to_parent_console() {
    #[cfg(windows)]
    imp::attach();
}

#[cfg(windows)]
mod imp {
    use windows_sys::Win32::Foundation::{
        GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
    };
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
    };
    use windows_sys::Win32::System::Console::{
        ATTACH_PARENT_PROCESS, AttachConsole, GetStdHandle, STD_ERROR_HANDLE, STD_OUTPUT_HANDLE,
        SetStdHandle,
    };

    fn usable(h: HANDLE) -> bool {
        !h.is_null() && h != INVALID_HANDLE_VALUE
    }

    pub fn attach() {
        // SAFETY: plain Win32 calls on this process's standard handles, at start-up.
        unsafe {
            let out = GetStdHandle(STD_OUTPUT_HANDLE);
            let err = GetStdHandle(STD_ERROR_HANDLE);
            if usable(out) && usable(err) {
                return; // redirected: the handles the parent gave are the right ones
            }
            if AttachConsole(ATTACH_PARENT_PROCESS) == 0 {
                return; // started from Explorer: no console, nothing to print to
            }
            let name: Vec<u16> = "CONOUT$\0".encode_utf16().collect();
            let console = CreateFileW(
                name.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                std::ptr::null(),
                OPEN_EXISTING,
                0,
                std::ptr::null_mut(),
            );
            if !usable(console) {
                return;
            }
            if !usable(out) {
                SetStdHandle(STD_OUTPUT_HANDLE, console);
            }
            if !usable(err) {
                SetStdHandle(STD_ERROR_HANDLE, console);
            }
        }
    }
}
