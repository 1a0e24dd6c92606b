//! Logs in and out: nvidia-smi compatible CSV (recording, import, export) and OOM analysis.

pub mod import;
pub mod lines;
pub mod oom;
pub mod recorder;
pub mod smi_csv;

use crate::telemetry::history::{History, Metric};
use crate::workloads::calibration::Calibration;
use crate::workloads::catalogue::Catalogue;
use std::path::Path;

/// A log file as opened: readings to plot, or a text log to analyse.
#[derive(Clone, Debug)]
pub enum OpenedLog {
    /// An nvidia-smi / vramdeck CSV log.
    Csv(import::ImportedLog),
    /// Any other log, read for out-of-memory events.
    Text {
        /// The file.
        origin: String,
        /// What was found.
        analysis: oom::Analysis,
    },
}

/// Opens a log: CSV readings when it starts like one, otherwise an OOM analysis of its text.
/// Both read the file as a stream of bounded lines, so memory stays bounded on any size;
/// a FIFO or device is refused rather than waited on.
pub fn open_log(
    path: &Path,
    catalogue: &Catalogue,
    calibration: &Calibration,
) -> Result<OpenedLog, String> {
    let origin = path.display().to_string();
    let open =
        || crate::persist::open_regular(path).map_err(|e| format!("Cannot read {origin}: {e}"));
    if starts_like_csv(open()?) {
        match import::import_reader(open()?, &origin) {
            // Mostly good rows: a CSV log. A text log with a stray CSV-like line is not one.
            Ok(log) if log.rows >= log.bad_rows => return Ok(OpenedLog::Csv(log)),
            _ => {}
        }
    }
    let analysis = oom::analyze_reader(open()?, catalogue, calibration)
        .map_err(|e| format!("Cannot read {origin}: {e}"))?;
    Ok(OpenedLog::Text { origin, analysis })
}

/// True when the first line with text looks like an nvidia-smi / vramdeck CSV log.
fn starts_like_csv(file: std::fs::File) -> bool {
    let Ok(mut lines) = lines::LogLines::new(file) else {
        return false;
    };
    for _ in 0..50 {
        match lines.next_line() {
            Ok(Some(line)) if line.trim().is_empty() => continue,
            Ok(Some(line)) => return import::looks_like_csv(&line),
            _ => return false,
        }
    }
    false
}

/// The readings of GPU `slot` in `[t0, t1]` as a CSV in the recording format.
pub fn window_csv(
    history: &History,
    slot: usize,
    t0: f64,
    t1: f64,
    index: u32,
    name: &str,
    total_mib: Option<f64>,
) -> String {
    let na = |v: f32, unit: &str| {
        if v.is_nan() {
            "[N/A]".to_string()
        } else {
            format!("{v:.0}{unit}")
        }
    };
    let mut out = format!("{}\n", recorder::RECORDING_HEADER);
    for (t, v) in history.readings(slot, t0, t1) {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0));
        out.push_str(&format!(
            "{}, {index}, {name}, {} MiB, {}, {}, {}, {}, {}\n",
            smi_csv::format_timestamp(time),
            v.get(Metric::VramUsedMib).round(),
            total_mib
                .map(|m| format!("{m:.0} MiB"))
                .unwrap_or_else(|| "[N/A]".into()),
            na(v.get(Metric::GpuUtil), " %"),
            na(v.get(Metric::Temperature), ""),
            if v.get(Metric::Power).is_nan() {
                "[N/A]".to_string()
            } else {
                format!("{:.2} W", v.get(Metric::Power))
            },
            na(v.get(Metric::MemoryUtil), " %"),
        ));
    }
    out
}
