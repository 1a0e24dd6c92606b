//! What the OS says of the processes NVML lists by pid: names, CPU time, resident memory, and
//! whether the pid is ours to see at all. Linux reads /proc; Windows asks for a process handle
//! with limited query rights (enough for another user's process, not for a protected one).

/// The name of a running process: the executable's file name from `cmdline`, falling back to
/// `comm` (which the kernel truncates to 15 bytes). `None` when the process is gone or hidden.
/// Any process, of any user, chooses its own name: it is sanitised for terminals and CSV.
pub fn process_name(pid: u32) -> Option<String> {
    raw_process_name(pid).map(|name| crate::text::sanitized(&name))
}

fn raw_process_name(pid: u32) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let from_cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .and_then(|raw| name_from_cmdline(&raw));
        from_cmdline.or_else(|| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()
                .map(|s| s.trim_end().to_string())
                .filter(|s| !s.is_empty())
        })
    }
    #[cfg(windows)]
    {
        windows::image_name(pid)
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = pid;
        None
    }
}

/// What a process costs the host: CPU time used so far and resident memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostUse {
    /// User + system CPU time since it started, seconds.
    pub cpu_seconds: f64,
    /// Resident memory.
    pub rss: crate::units::Bytes,
}

/// CPU time and resident memory of `pid` from `/proc/<pid>/stat` and `statm`; `None` when it
/// is gone or not in our pid namespace.
pub fn host_use(pid: u32) -> Option<HostUse> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
        parse_host_use(&stat, &statm, clock_ticks(), page_size())
    }
    #[cfg(windows)]
    {
        windows::host_use(pid)
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        let _ = pid;
        None
    }
}

/// True when `pid` is a process of this pid namespace. Inside a container the driver reports
/// host pids, which are not (or are another process) here. On Windows: a process that exists.
pub fn is_visible(pid: u32) -> bool {
    #[cfg(windows)]
    {
        crate::platform::process::alive(pid)
    }
    #[cfg(not(windows))]
    {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }
}

#[cfg(windows)]
mod windows {
    use super::HostUse;
    use crate::platform::process::{Handle, duration, zero};
    use windows_sys::Win32::System::ProcessStatus::{
        K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS,
    };
    use windows_sys::Win32::System::Threading::{
        GetProcessTimes, PROCESS_QUERY_LIMITED_INFORMATION, QueryFullProcessImageNameW,
    };

    /// The executable's file name ("python.exe").
    pub fn image_name(pid: u32) -> Option<String> {
        let h = Handle::open(pid, PROCESS_QUERY_LIMITED_INFORMATION)?;
        let mut buf = vec![0u16; 32_768];
        let mut len = buf.len() as u32;
        // SAFETY: a valid handle; `buf` holds `len` UTF-16 units.
        let ok = unsafe { QueryFullProcessImageNameW(h.0, 0, buf.as_mut_ptr(), &mut len) };
        if ok == 0 {
            return None;
        }
        let path = String::from_utf16_lossy(&buf[..len as usize]);
        let name = path.rsplit(['\\', '/']).next().unwrap_or(&path);
        (!name.is_empty()).then(|| name.to_string())
    }

    /// CPU time (kernel + user) and the working set.
    pub fn host_use(pid: u32) -> Option<HostUse> {
        let h = Handle::open(pid, PROCESS_QUERY_LIMITED_INFORMATION)?;
        let (mut a, mut b, mut kernel, mut user) = (zero(), zero(), zero(), zero());
        // SAFETY: a valid handle and out-pointers.
        if unsafe { GetProcessTimes(h.0, &mut a, &mut b, &mut kernel, &mut user) } == 0 {
            return None;
        }
        // SAFETY: all-zero is a valid PROCESS_MEMORY_COUNTERS; its size is passed.
        let mut counters: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
        // SAFETY: a valid handle and a buffer of `size` bytes.
        if unsafe { K32GetProcessMemoryInfo(h.0, &mut counters, size) } == 0 {
            return None;
        }
        Some(HostUse {
            cpu_seconds: (duration(kernel) + duration(user)).as_secs_f64(),
            rss: crate::units::Bytes(counters.WorkingSetSize as u64),
        })
    }
}

#[cfg(target_os = "linux")]
fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant of the running system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4_096 }
}

/// Reads utime + stime (fields 14 and 15 of `stat`; the name before them may hold spaces and
/// parentheses, so fields are counted from the last ')') and the resident pages of `statm`.
pub fn parse_host_use(stat: &str, statm: &str, ticks: f64, page: u64) -> Option<HostUse> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(HostUse {
        cpu_seconds: utime.saturating_add(stime) as f64 / ticks,
        rss: crate::units::Bytes(resident.saturating_mul(page)),
    })
}

/// "python3 app.py --port 7860" → "python3 app.py": the program, plus the script for interpreters,
/// since every WebUI is "python".
pub fn name_from_cmdline(raw: &[u8]) -> Option<String> {
    let mut args = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let program = args.next()?;
    let program = program.rsplit('/').next().unwrap_or(&program).to_string();
    let is_interpreter = program.starts_with("python") || program == "node" || program == "uv";
    if is_interpreter {
        let script = args.find(|a| !a.starts_with('-'));
        if let Some(script) = script {
            let script = script.rsplit('/').next().unwrap_or(&script);
            return Some(format!("{program} {script}"));
        }
    }
    Some(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreter_names_carry_their_script() {
        let raw = b"/usr/bin/python3\0-u\0/opt/ComfyUI/main.py\0--listen\0";
        assert_eq!(name_from_cmdline(raw).as_deref(), Some("python3 main.py"));
    }

    #[test]
    fn native_programs_keep_their_file_name() {
        assert_eq!(
            name_from_cmdline(b"/usr/lib/xorg/Xorg\0:0\0").as_deref(),
            Some("Xorg")
        );
        assert_eq!(name_from_cmdline(b"").as_deref(), None);
    }

    #[test]
    fn a_hostile_process_name_is_escaped() {
        let raw = "/tmp/\u{1b}]0;owned\u{7}x\0".as_bytes();
        let name = name_from_cmdline(raw).unwrap();
        assert_eq!(crate::text::sanitized(&name), "\\u{1b}]0;owned\\u{7}x");
    }

    #[test]
    fn host_use_is_read_past_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (python3 (a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
        let u = parse_host_use(stat, "123456 2048 500 1 0 900 0", 100.0, 4_096).unwrap();
        assert_eq!(u.cpu_seconds, 3.0);
        assert_eq!(u.rss, crate::units::Bytes(2_048 * 4_096));
        assert_eq!(parse_host_use("garbage", "1 2", 100.0, 4_096), None);
    }

    #[test]
    fn this_process_is_visible_with_its_host_use() {
        assert!(is_visible(std::process::id()));
        assert!(!is_visible(u32::MAX - 1));
        let u = host_use(std::process::id()).unwrap();
        assert!(u.rss.0 > 0);
    }

    #[test]
    fn this_process_has_a_name() {
        assert!(process_name(std::process::id()).is_some());
    }
}
