//! Writes readings in exactly the shape of
//! `nvidia-smi --query-gpu=timestamp,index,name,memory.used,memory.total,utilization.gpu,temperature.gpu --format=csv`,
//! so scripts and spreadsheets built for nvidia-smi logs read ours unchanged.

use crate::telemetry::Snapshot;
use chrono::{DateTime, Local};
use std::fmt::Write as _;

/// The header line nvidia-smi prints for the GPU query.
pub const GPU_HEADER: &str = "timestamp, index, name, memory.used [MiB], memory.total [MiB], utilization.gpu [%], temperature.gpu";

/// The header for per-process rows, in the style of `nvidia-smi --query-compute-apps`.
/// nvidia-smi's compute-apps columns, then the shared GPU memory (system memory) Windows
/// counts for the process, `[N/A]` where the OS does not say.
pub const PROCESS_HEADER: &str =
    "timestamp, index, pid, process_name, type, used_memory [MiB], shared_memory [MiB]";

/// What nvidia-smi prints for a field the GPU does not report.
const NOT_AVAILABLE: &str = "[N/A]";

/// nvidia-smi's timestamp format: `2026/11/22 16:07:41.123`, local time.
pub fn format_timestamp(time: std::time::SystemTime) -> String {
    let local: DateTime<Local> = time.into();
    local.format("%Y/%m/%d %H:%M:%S%.3f").to_string()
}

/// [`format_timestamp`] of a time in UNIX seconds, rounded to the millisecond it was logged
/// with (a float of seconds since 1970 cannot hold every millisecond exactly: truncating
/// would shift every timestamp written back by a millisecond).
pub fn format_unix_seconds(t: f64) -> String {
    let millis = (t.max(0.0) * 1_000.0).round() as u64;
    format_timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis))
}

/// One line per GPU, no trailing newline on the last.
pub fn gpu_rows(snapshot: &Snapshot) -> String {
    let timestamp = format_timestamp(snapshot.time);
    let mut out = String::new();
    for (i, g) in snapshot.gpus.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let util = g
            .gpu_util
            .map(|p| format!("{:.0} %", p.0))
            .unwrap_or_else(|| NOT_AVAILABLE.into());
        let temp = g
            .temperature
            .map(|c| format!("{:.0}", c.0))
            .unwrap_or_else(|| NOT_AVAILABLE.into());
        let _ = write!(
            out,
            "{timestamp}, {}, {}, {} MiB, {} MiB, {util}, {temp}",
            g.index,
            g.name,
            g.memory.used.whole_mib(),
            g.memory.total.whole_mib(),
        );
    }
    out
}

/// One line per process per GPU (possibly none), no trailing newline on the last.
pub fn process_rows(snapshot: &Snapshot) -> String {
    let timestamp = format_timestamp(snapshot.time);
    let mut lines = Vec::new();
    for g in &snapshot.gpus {
        for p in &g.processes {
            let mib = |value: Option<crate::units::Bytes>| {
                value
                    .map(|b| format!("{} MiB", b.whole_mib()))
                    .unwrap_or_else(|| NOT_AVAILABLE.into())
            };
            let (used, shared) = (mib(p.used), mib(p.shared));
            // Commas would break the columns; nvidia-smi has the same problem and no answer.
            let name = p.name.replace(',', " ");
            lines.push(format!(
                "{timestamp}, {}, {}, {name}, {}, {used}, {shared}",
                g.index,
                p.pid,
                p.kind.letters()
            ));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::sim::SimulatedGpus;
    use std::time::{Duration, SystemTime};

    fn snapshot() -> Snapshot {
        let mut gpus = SimulatedGpus::demo("test").sample_at(Duration::from_secs(96));
        gpus[1].temperature = None;
        Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_763_827_661_123),
            gpus,
        }
    }

    #[test]
    fn timestamp_matches_nvidia_smi_layout() {
        let ts = format_timestamp(SystemTime::now());
        // "2026/11/22 16:07:41.123"
        assert_eq!(ts.len(), 23, "{ts}");
        assert_eq!(&ts[4..5], "/");
        assert_eq!(&ts[10..11], " ");
        assert_eq!(&ts[19..20], ".");
    }

    #[test]
    fn a_logged_millisecond_survives_the_round_trip_through_seconds() {
        // 2026/11/20 14:05:10.201 local time, read back as seconds since 1970.
        let t = 1_795_658_710.201_f64;
        assert!(
            format_unix_seconds(t).ends_with(".201"),
            "{}",
            format_unix_seconds(t)
        );
    }

    #[test]
    fn gpu_rows_have_nvidia_smi_columns_and_units() {
        let rows = gpu_rows(&snapshot());
        let lines: Vec<&str> = rows.lines().collect();
        assert_eq!(lines.len(), 3);
        let cols: Vec<&str> = lines[0].split(", ").collect();
        assert_eq!(cols.len(), GPU_HEADER.split(", ").count());
        assert_eq!(cols[1], "0");
        assert_eq!(cols[2], "Simulated 48 GB GPU");
        assert!(cols[3].ends_with(" MiB") && cols[3][..cols[3].len() - 4].parse::<u64>().is_ok());
        assert_eq!(cols[4], "49152 MiB");
        assert!(cols[5].ends_with(" %"));
        assert!(cols[6].parse::<u32>().is_ok());
        assert!(lines[1].ends_with(", [N/A]"), "{}", lines[1]);
    }

    #[test]
    fn process_rows_list_every_process() {
        let rows = process_rows(&snapshot());
        let lines: Vec<&str> = rows.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].contains(", 0, 4242, python3 wan_i2v_webui.py, C, "),
            "{}",
            lines[0]
        );
        assert_eq!(
            lines[0].split(", ").count(),
            PROCESS_HEADER.split(", ").count()
        );
        assert!(lines[0].ends_with(", [N/A]"), "no shared memory on Linux");
        // The Windows card: shared GPU memory in MiB.
        assert!(lines[2].contains("python.exe"), "{}", lines[2]);
        assert!(lines[2].ends_with(" MiB"), "{}", lines[2]);
    }
}
