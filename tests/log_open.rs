//! Opening files the way the window does: CSV logs become plots, anything else an OOM analysis;
//! exporting a window reads back.

use std::path::Path;
use vramdeck::logs::{OpenedLog, import::import_csv, open_log, window_csv};
use vramdeck::telemetry::history::{History, Metric, Values};
use vramdeck::workloads::calibration::Calibration;
use vramdeck::workloads::catalogue::Catalogue;

fn open(rel: &str) -> OpenedLog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    open_log(&path, &Catalogue::load(None), &Calibration::default()).unwrap()
}

#[test]
fn a_csv_log_opens_as_readings_and_a_console_log_as_an_analysis() {
    assert!(matches!(open("csv/two_gpus_na.csv"), OpenedLog::Csv(log) if log.gpus.len() == 2));
    match open("logs/comfyui_ddcolor_oom.log") {
        OpenedLog::Text { analysis, .. } => assert_eq!(analysis.events.len(), 2),
        OpenedLog::Csv(_) => panic!("a console log is not a CSV"),
    }
}

#[test]
fn a_missing_file_is_a_sentence() {
    let err = open_log(
        Path::new("/nonexistent/x.csv"),
        &Catalogue::load(None),
        &Calibration::default(),
    )
    .unwrap_err();
    assert!(err.starts_with("Cannot read /nonexistent/x.csv: "), "{err}");
}

#[test]
fn an_exported_window_reads_back_with_the_same_values() {
    let mut h = History::default();
    for i in 0..120 {
        let used = 1_000.0 + i as f32 * 10.0;
        h.push_values(
            0,
            1_800_000_000.0 + i as f64,
            Values([used, 50.0, f32::NAN, 60.0, 250.5]),
        );
    }
    let csv = window_csv(
        &h,
        0,
        1_800_000_060.0,
        1_800_000_119.0,
        0,
        "Test GPU",
        Some(24_576.0),
    );
    let log = import_csv(&csv, "export").unwrap();
    assert_eq!((log.rows, log.bad_rows), (60, 0));
    assert_eq!(log.gpus[0].total_mib, Some(24_576.0));
    let (t0, t1) = log.span;
    let s = log.history.stats(0, Metric::VramUsedMib, t0, t1).unwrap();
    assert_eq!((s.min, s.max), (1_600.0, 2_190.0));
    assert!(
        log.history.stats(0, Metric::MemoryUtil, t0, t1).is_none(),
        "N/A stays N/A"
    );
}
