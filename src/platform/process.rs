//! Other processes: whether one still runs, stopping one we started, this machine's name, and
//! CPU time spent (for `vramdeck bench`).

use std::time::Duration;

/// True while `pid` runs (on Linux a zombie, killed but not yet reaped, does not count).
pub fn alive(pid: u32) -> bool {
    pid != 0 && imp::alive(pid)
}

/// Asks a child process we started (ssh) to end: SIGTERM on Unix, so it can close its
/// connection; TerminateProcess on Windows.
pub fn terminate(pid: u32) {
    if pid != 0 {
        imp::terminate(pid)
    }
}

/// This machine's name, as the OS says it.
pub fn host_name() -> Option<String> {
    gethostname::gethostname()
        .into_string()
        .ok()
        .filter(|n| !n.is_empty())
}

/// CPU time this thread has used.
pub fn thread_cpu_time() -> Duration {
    imp::thread_cpu_time()
}

/// CPU time this whole process has used.
pub fn process_cpu_time() -> Duration {
    imp::process_cpu_time()
}

/// CPU time of the child processes that ended and were waited for (nvidia-smi in the bench).
pub fn children_cpu_time() -> Duration {
    imp::children_cpu_time()
}

#[cfg(unix)]
mod imp {
    use std::path::Path;
    use std::time::Duration;

    pub fn alive(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the parenthesised name, which may itself hold spaces or ')'.
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X"),
            Err(_) if Path::new("/proc/self/stat").exists() => false,
            // No /proc to read: ask the kernel whether the pid exists at all.
            Err(_) => {
                let Ok(pid) = libc::pid_t::try_from(pid) else {
                    return false;
                };
                // SAFETY: signal 0 only checks for existence and permission; it sends nothing.
                let rc = unsafe { libc::kill(pid, 0) };
                rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
            }
        }
    }

    pub fn terminate(pid: u32) {
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: signalling a pid we started; at worst it already exited.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }

    fn clock(id: libc::clockid_t) -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out-pointer; these clocks exist on every Unix we build for.
        unsafe { libc::clock_gettime(id, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    pub fn thread_cpu_time() -> Duration {
        clock(libc::CLOCK_THREAD_CPUTIME_ID)
    }

    pub fn process_cpu_time() -> Duration {
        clock(libc::CLOCK_PROCESS_CPUTIME_ID)
    }

    pub fn children_cpu_time() -> Duration {
        // SAFETY: all-zero is a valid `rusage`, and getrusage only writes into it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }
}

#[cfg(windows)]
mod imp {
    use std::time::Duration;
    use windows_sys::Win32::Foundation::{CloseHandle, FILETIME, HANDLE, STILL_ACTIVE};
    use windows_sys::Win32::System::Threading::{
        GetCurrentProcess, GetCurrentThread, GetExitCodeProcess, GetProcessTimes, GetThreadTimes,
        OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_TERMINATE, TerminateProcess,
    };

    /// A process handle closed when dropped.
    pub struct Handle(pub HANDLE);

    impl Handle {
        pub fn open(pid: u32, access: u32) -> Option<Handle> {
            // SAFETY: OpenProcess has no preconditions; a null handle means failure.
            let h = unsafe { OpenProcess(access, 0, pid) };
            (!h.is_null()).then_some(Handle(h))
        }
    }

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: a handle this type opened and owns.
            unsafe { CloseHandle(self.0) };
        }
    }

    pub fn alive(pid: u32) -> bool {
        let Some(h) = Handle::open(pid, PROCESS_QUERY_LIMITED_INFORMATION) else {
            return false;
        };
        let mut code = 0u32;
        // SAFETY: a valid handle and out-pointer.
        let ok = unsafe { GetExitCodeProcess(h.0, &mut code) };
        ok != 0 && code == STILL_ACTIVE as u32
    }

    pub fn terminate(pid: u32) {
        if let Some(h) = Handle::open(pid, PROCESS_TERMINATE) {
            // SAFETY: a valid handle with terminate access.
            unsafe { TerminateProcess(h.0, 1) };
        }
    }

    pub fn duration(t: FILETIME) -> Duration {
        let ticks = (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
        Duration::from_nanos(ticks.saturating_mul(100))
    }

    pub fn zero() -> FILETIME {
        FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        }
    }

    pub fn thread_cpu_time() -> Duration {
        let (mut a, mut b, mut kernel, mut user) = (zero(), zero(), zero(), zero());
        // SAFETY: the pseudo-handle of this thread and valid out-pointers.
        unsafe { GetThreadTimes(GetCurrentThread(), &mut a, &mut b, &mut kernel, &mut user) };
        duration(kernel) + duration(user)
    }

    pub fn process_cpu_time() -> Duration {
        let (mut a, mut b, mut kernel, mut user) = (zero(), zero(), zero(), zero());
        // SAFETY: the pseudo-handle of this process and valid out-pointers.
        unsafe { GetProcessTimes(GetCurrentProcess(), &mut a, &mut b, &mut kernel, &mut user) };
        duration(kernel) + duration(user)
    }

    pub fn children_cpu_time() -> Duration {
        // Windows keeps no total for ended children; the bench counts nvidia-smi's wall time.
        Duration::ZERO
    }
}

#[cfg(windows)]
pub(crate) use imp::{Handle, duration, zero};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_free_pid_is_not() {
        assert!(alive(std::process::id()));
        assert!(!alive(0));
        assert!(!alive(u32::MAX - 1));
    }

    #[test]
    fn this_machine_has_a_name() {
        assert!(host_name().is_some());
    }

    #[test]
    fn spinning_costs_cpu_time() {
        let before = thread_cpu_time();
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(30) {
            std::hint::black_box(0);
        }
        assert!(thread_cpu_time() > before);
        assert!(process_cpu_time() >= thread_cpu_time());
    }
}
