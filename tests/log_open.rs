//! Opening files the way the window does: CSV logs become plots, anything else an OOM analysis;
//! exporting a window reads back.

mod common;
use common::vramdeck;
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
    // Timestamps come back to the millisecond (they used to shift by -1 ms).
    assert_eq!(log.span, (1_800_000_060.0, 1_800_000_119.0));
    assert_eq!(log.gpus[0].total_mib, Some(24_576.0));
    let (t0, t1) = log.span;
    let s = log.history.stats(0, Metric::VramUsedMib, t0, t1).unwrap();
    assert_eq!((s.min, s.max), (1_600.0, 2_190.0));
    assert!(
        log.history.stats(0, Metric::MemoryUtil, t0, t1).is_none(),
        "N/A stays N/A"
    );
}

#[test]
fn a_csv_log_that_yields_nothing_says_why_instead_of_reading_as_a_console_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.csv");
    std::fs::write(
        &path,
        "timestamp, index, name, memory.used [MiB]\n2026/11/22 16:42:33.108, 0, GPU\nlater garbage\n",
    )
    .unwrap();
    let err = open_log(&path, &Catalogue::load(None), &Calibration::default()).unwrap_err();
    assert!(
        err.starts_with("Not a readable nvidia-smi CSV log: "),
        "{err}"
    );
    assert!(
        err.contains("line 2: 3 cells where the header has 4"),
        "{err}"
    );
}

#[test]
fn analyze_summarises_each_gpu_of_a_csv_log_headless() {
    let (out, _, ok) = vramdeck(
        &["analyze", "tests/fixtures/csv/smi_two_gpus_no_index.csv"],
        None,
    );
    assert!(ok);
    assert!(out.contains("12 rows from 2 GPUs"), "{out}");
    assert!(
        out.contains(
            "GPU 1 · NVIDIA H200: 6 rows, 2026/11/20 14:05:10.204 to 2026/11/20 14:05:15.204 (5 s)"
        ),
        "{out}"
    );
    assert!(out.contains("memory.used peak 71,230 MiB"), "{out}");
    let (out, _, _) = vramdeck(&["analyze", "tests/fixtures/csv/two_gpus_na.csv"], None);
    assert!(
        out.contains("line 7: unreadable memory.used \"lots\""),
        "{out}"
    );
}

#[test]
fn analyze_json_follows_its_schema_for_both_kinds_of_log() {
    let (out, _, ok) = vramdeck(
        &[
            "analyze",
            "--json",
            "tests/fixtures/logs/torch211_other_process_listed_after.log",
        ],
        None,
    );
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "vramdeck.analyze/1");
    assert_eq!(v["kind"], "oom_log");
    let e = &v["events"][0];
    assert_eq!(e["cause"], "other_processes");
    assert_eq!(e["era"], "pytorch_2.1+");
    assert_eq!(e["numbers"]["other_processes"][0]["pid"], 547);
    assert!(e["advice"][0].as_str().unwrap().contains("pid 547"));
    let (out, _, _) = vramdeck(
        &[
            "analyze",
            "--json",
            "tests/fixtures/csv/smi_unified_memory_na.csv",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "nvidia_smi_csv");
    assert_eq!(v["gpus"][0]["memory_used_mib"], serde_json::Value::Null);
    assert_eq!(v["gpus"][0]["utilization_gpu_percent"]["peak"], 97.0);
}

#[test]
fn analyze_reads_standard_input_and_says_why_a_csv_fails() {
    let log = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/logs/pytorch1x_reserved.log"),
    )
    .unwrap();
    let (out, _, ok) = vramdeck(&["analyze", "-"], Some(&log));
    assert!(ok);
    assert!(
        out.starts_with("standard input: 1 event in 2 lines"),
        "{out}"
    );
    let (_, err, ok) = vramdeck(
        &["analyze", "-"],
        Some("timestamp, memory.used [MiB]\nyesterday, 10\n"),
    );
    assert!(!ok);
    assert!(
        err.contains("line 2: unreadable timestamp \"yesterday\""),
        "{err}"
    );
}
