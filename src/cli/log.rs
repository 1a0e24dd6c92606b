//! `vramdeck log`: readings as nvidia-smi compatible CSV, to stdout or appended to a file.

use super::LogArgs;
use crate::logs::smi_csv;
use crate::telemetry::{GpuSource, Snapshot};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Runs `vramdeck log` against `source`, writing to `out`. Returns when `count` readings are
/// written or the reader goes away (`vramdeck log | head` ends quietly).
pub fn run_log(
    args: &LogArgs,
    source: &mut dyn GpuSource,
    out: &mut dyn Write,
    write_header: bool,
) -> anyhow::Result<()> {
    let interval =
        crate::telemetry::sampler::clamp_interval(Duration::from_millis(args.interval_ms));
    let header = header_of(args);
    let mut written = 0u64;
    let result = (|| -> std::io::Result<()> {
        if write_header && !args.no_header {
            out.write_all(format!("{header}\n").as_bytes())?;
        }
        loop {
            let started = Instant::now();
            let gpus = source.sample().map_err(std::io::Error::other)?;
            let snapshot = Snapshot {
                time: SystemTime::now(),
                gpus,
            };
            let mut rows = if args.processes {
                smi_csv::process_rows(&snapshot)
            } else {
                smi_csv::gpu_rows(&snapshot)
            };
            if !rows.is_empty() {
                // One write per reading, newline included: a kill can cut a reading short
                // but never glue the next one onto it.
                rows.push('\n');
                out.write_all(rows.as_bytes())?;
            }
            // Flushed every reading, so a crash or Ctrl-C loses nothing already read.
            out.flush()?;
            written += 1;
            if args.count != 0 && written >= args.count {
                return Ok(());
            }
            std::thread::sleep(interval.saturating_sub(started.elapsed()));
        }
    })();
    match result {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(()),
    }
}

fn header_of(args: &LogArgs) -> &'static str {
    if args.processes {
        smi_csv::PROCESS_HEADER
    } else {
        smi_csv::GPU_HEADER
    }
}

/// Opens `path` for appending readings of `header`'s kind. A file that holds another kind of
/// log is refused (appending would mix two schemas); one whose last row was cut short by a
/// kill gets a newline first, so the next row starts on a line of its own. Returns the file
/// and whether it is new (then it gets the header).
fn open_for_append(path: &Path, header: &str) -> anyhow::Result<(std::fs::File, bool)> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            anyhow::anyhow!(crate::t!(
                "log-cannot-open-for-writing",
                path = path.display().to_string(),
                error = e.to_string()
            ))
        })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Ok((file, true));
    }
    let mut first = vec![0u8; header.len().min(len as usize)];
    file.read_exact(&mut first).map_err(|e| {
        anyhow::anyhow!(crate::t!(
            "cannot-read",
            path = path.display().to_string(),
            error = e.to_string()
        ))
    })?;
    if first != header.as_bytes() {
        anyhow::bail!(crate::t!(
            "log-other-kind",
            path = path.display().to_string(),
            header = header
        ));
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))
        .and_then(|_| file.read_exact(&mut last))
        .map_err(|e| {
            anyhow::anyhow!(crate::t!(
                "cannot-read",
                path = path.display().to_string(),
                error = e.to_string()
            ))
        })?;
    if last[0] != b'\n' {
        file.write_all(b"\n").map_err(|e| {
            anyhow::anyhow!(crate::t!(
                "cannot-write",
                path = path.display().to_string(),
                error = e.to_string()
            ))
        })?;
    }
    Ok((file, false))
}

/// `vramdeck log` with its output target opened.
pub fn log_command(args: &LogArgs, demo: bool) -> anyhow::Result<()> {
    let mut source = crate::telemetry::open_source(demo);
    if let crate::telemetry::SourceKind::Simulated { reason } = source.kind() {
        eprintln!(
            "{}",
            crate::t!("log-demo-simulated", reason = reason.clone())
        );
    }
    // Read what the log prints and no more: the window's extras (PCIe, video engines, clock
    // events, per-process SM and CPU) made `log` cost five times nvidia-smi -lms on an H100.
    source.set_detail(crate::telemetry::Detail::Basics {
        processes: args.processes,
    });
    if args.processes {
        // A process log is about processes: read them fresh every time.
        source.set_process_refresh(std::time::Duration::ZERO);
    }
    match &args.output {
        None => {
            let stdout = std::io::stdout();
            run_log(args, source.as_mut(), &mut stdout.lock(), true)
        }
        Some(path) => {
            let (mut file, is_new) = open_for_append(path, header_of(args))?;
            run_log(args, source.as_mut(), &mut file, is_new).map_err(|e| {
                anyhow::anyhow!(crate::t!(
                    "log-writing-failed",
                    path = path.display().to_string(),
                    error = e.to_string()
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::sim::SimulatedGpus;

    fn args(count: u64) -> LogArgs {
        LogArgs {
            interval_ms: 100,
            count,
            output: None,
            processes: false,
            no_header: false,
            demo: Default::default(),
        }
    }

    #[test]
    fn log_writes_header_then_one_row_per_gpu_per_reading() {
        let mut out = Vec::new();
        run_log(&args(3), &mut SimulatedGpus::demo("test"), &mut out, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], smi_csv::GPU_HEADER);
        assert_eq!(lines.len(), 1 + 3 * 3);
    }

    #[test]
    fn process_log_lists_processes() {
        let mut out = Vec::new();
        let a = LogArgs {
            processes: true,
            ..args(1)
        };
        run_log(&a, &mut SimulatedGpus::demo("test"), &mut out, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(smi_csv::PROCESS_HEADER));
        assert!(text.contains("python3 facefusion.py"));
    }

    /// Records every write call, to see how a reading reaches the file.
    struct Writes(Vec<Vec<u8>>);
    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_reading_reaches_the_file_in_one_write_with_its_newline() {
        let mut out = Writes(Vec::new());
        run_log(&args(2), &mut SimulatedGpus::demo("test"), &mut out, false).unwrap();
        assert_eq!(out.0.len(), 2, "one write per reading");
        for write in &out.0 {
            assert!(write.ends_with(b"\n"));
            assert_eq!(
                write.iter().filter(|b| **b == b'\n').count(),
                3,
                "three GPUs"
            );
        }
    }

    #[test]
    fn appending_mends_a_row_cut_short_and_refuses_another_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        std::fs::write(
            &path,
            format!(
                "{}\n2026/11/22 16:42:33.108, 0, GPU, 10",
                smi_csv::GPU_HEADER
            ),
        )
        .unwrap();
        let (mut file, is_new) = open_for_append(&path, smi_csv::GPU_HEADER).unwrap();
        assert!(!is_new);
        run_log(&args(1), &mut SimulatedGpus::demo("test"), &mut file, false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(
            lines[1].ends_with(", 10"),
            "the cut row stays on its own line"
        );
        let err = open_for_append(&path, smi_csv::PROCESS_HEADER).unwrap_err();
        assert!(err.to_string().contains("another kind of log"), "{err}");
    }

    #[test]
    fn a_full_disk_names_the_file() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        let a = LogArgs {
            output: Some("/dev/full".into()),
            ..args(1)
        };
        let err = log_command(&a, true).unwrap_err().to_string();
        assert!(err.contains("/dev/full"), "{err}");
    }

    struct ClosedPipe;
    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_the_log_quietly() {
        run_log(
            &args(0),
            &mut SimulatedGpus::demo("test"),
            &mut ClosedPipe,
            true,
        )
        .unwrap();
    }
}
