//! Process names from /proc, because NVML only gives pids.

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
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
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
    fn this_process_has_a_name() {
        assert!(process_name(std::process::id()).is_some());
    }
}
