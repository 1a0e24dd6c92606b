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

/// Opens a log file: see [`read_log`]. A FIFO or device is refused rather than waited on.
pub fn open_log(
    path: &Path,
    catalogue: &Catalogue,
    calibration: &Calibration,
) -> Result<OpenedLog, String> {
    let origin = crate::text::sanitized(&path.display().to_string());
    let file = crate::persist::open_regular(path).map_err(|e| {
        crate::t!(
            "cannot-read",
            path = origin.to_string(),
            error = e.to_string()
        )
    })?;
    read_log(file, &origin, catalogue, calibration)
}

/// Reads a log once, as a stream of bounded lines: CSV readings when its first line with text
/// is an nvidia-smi / vramdeck CSV header or row, otherwise an OOM analysis of its text. A CSV
/// log that yields no readings fails with the importer's reason (line numbers included), not
/// with an empty analysis. Memory stays bounded on any size.
pub fn read_log(
    source: impl std::io::Read + Send + 'static,
    origin: &str,
    catalogue: &Catalogue,
    calibration: &Calibration,
) -> Result<OpenedLog, String> {
    let failed = |e: std::io::Error| {
        crate::t!(
            "cannot-read",
            path = origin.to_string(),
            error = e.to_string()
        )
    };
    let mut lines = lines::LogLines::new(source).map_err(failed)?;
    let mut head = Vec::new();
    let is_csv = loop {
        match lines.next_line().map_err(failed)? {
            Some(line) if line.trim().is_empty() => head.push(line),
            Some(line) => {
                let csv = import::looks_like_csv(&line);
                head.push(line);
                break csv;
            }
            None => break false,
        }
    };
    if is_csv {
        let mut importer = import::CsvImporter::new(origin);
        for line in &head {
            importer.feed(line);
        }
        while let Some(line) = lines.next_line().map_err(failed)? {
            importer.feed(&line);
        }
        return importer
            .finish()
            .map(OpenedLog::Csv)
            .map_err(|e| crate::t!("not-a-csv-log", error = e));
    }
    let mut analyzer = oom::Analyzer::new(catalogue, calibration);
    for line in &head {
        analyzer.feed(line);
    }
    while let Some(line) = lines.next_line().map_err(failed)? {
        analyzer.feed(&line);
    }
    Ok(OpenedLog::Text {
        origin: origin.to_string(),
        analysis: analyzer.finish(lines.cut_lines),
    })
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
        out.push_str(&format!(
            "{}, {index}, {name}, {} MiB, {}, {}, {}, {}, {}\n",
            smi_csv::format_unix_seconds(t),
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
