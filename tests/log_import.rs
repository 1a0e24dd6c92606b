//! Importing nvidia-smi CSV logs in the forms people actually have (tests/fixtures/csv).

use vramdeck::logs::import::import_csv;
use vramdeck::telemetry::history::Metric;

fn read(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/csv")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn nvidia_smi_default_query_with_units() {
    let log = import_csv(&read("smi_default.csv"), "smi_default.csv").unwrap();
    assert_eq!((log.rows, log.bad_rows), (3, 0));
    assert_eq!(log.gpus[0].name, "NVIDIA H100 80GB HBM3");
    assert_eq!(log.gpus[0].total_mib, Some(81_559.0));
    let (t0, t1) = log.span;
    assert!((t1 - t0 - 2.002).abs() < 1e-6, "{}", t1 - t0);
    let used = log.history.series(0, Metric::VramUsedMib, t0, t1, 100);
    assert_eq!(
        used.iter().map(|p| p[1]).collect::<Vec<_>>(),
        vec![10_859.0, 10_859.0, 618.0]
    );
    let temp = log.history.stats(0, Metric::Temperature, t0, t1).unwrap();
    assert_eq!((temp.min, temp.max), (42.0, 43.0));
}

#[test]
fn the_seed_scripts_loop_output_with_repeated_headers_and_nounits() {
    let log = import_csv(&read("seed_loop_nounits.csv"), "seed").unwrap();
    assert_eq!((log.rows, log.bad_rows), (4, 0));
    assert_eq!(log.gpus.len(), 1);
    assert_eq!(log.gpus[0].total_mib, Some(12_288.0));
    let (t0, t1) = log.span;
    let peak = log
        .history
        .stats(0, Metric::VramUsedMib, t0, t1)
        .unwrap()
        .max;
    assert_eq!(peak, 12_005.0);
}

#[test]
fn interleaved_gpus_not_available_cells_and_bad_rows() {
    let log = import_csv(&read("two_gpus_na.csv"), "two").unwrap();
    assert_eq!(log.gpus.len(), 2);
    assert_eq!(log.gpus[1].name, "NVIDIA A100-SXM4-40GB");
    assert_eq!(log.rows, 4);
    // The shell noise, the unreadable memory value and the short row.
    assert_eq!(log.bad_rows, 3);
    assert!(
        log.problems[0].starts_with("line 6: "),
        "{:?}",
        log.problems
    );
    assert!(log.problems[1].contains("unreadable memory.used \"lots\""));
    assert!(
        log.summary().contains("3 bad rows skipped"),
        "{}",
        log.summary()
    );
    let (t0, t1) = log.span;
    // [Not Supported] utilisation is a gap, not a zero.
    let util = log.history.series(0, Metric::GpuUtil, t0, t1, 100);
    assert_eq!(util.len(), 1);
    let power = log.history.stats(1, Metric::Power, t0, t1).unwrap();
    assert!((power.max - 388.1).abs() < 0.01);
}

#[test]
fn a_file_without_header_gets_the_default_columns_and_says_so() {
    let log = import_csv(&read("noheader_default.csv"), "nh").unwrap();
    assert_eq!(log.rows, 2);
    assert!(
        log.assumed_columns
            .unwrap()
            .starts_with("timestamp, index, name")
    );
}

#[test]
fn vramdecks_own_log_reads_back() {
    use std::time::{Duration, SystemTime};
    use vramdeck::logs::smi_csv;
    use vramdeck::telemetry::Snapshot;
    use vramdeck::telemetry::sim::SimulatedGpus;
    let mut sim = SimulatedGpus::demo("test");
    let mut text = format!("{}\n", smi_csv::GPU_HEADER);
    for s in 0..5 {
        let snapshot = Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s),
            gpus: sim.sample_at(Duration::from_secs(90 + s)),
        };
        text.push_str(&smi_csv::gpu_rows(&snapshot));
        text.push('\n');
    }
    let log = import_csv(&text, "ours").unwrap();
    assert_eq!((log.rows, log.bad_rows, log.gpus.len()), (15, 0, 3));
}

#[test]
fn something_that_is_not_a_csv_log_is_refused_with_a_reason() {
    let err = import_csv("hello\nworld\n", "notes.txt").unwrap_err();
    assert!(
        err.starts_with("notes.txt: no readable rows (2 bad; line 1: "),
        "{err}"
    );
}

#[test]
fn two_gpus_without_an_index_are_told_apart_by_their_place_in_each_pass() {
    // nvidia-smi stamps the GPUs of one pass milliseconds apart, passes a second apart.
    for name in [
        "smi_two_gpus_no_index.csv",
        "smi_two_gpus_noheader_nounits.csv",
    ] {
        let log = import_csv(&read(name), name).unwrap();
        assert_eq!(
            (log.rows, log.bad_rows, log.gpus.len()),
            (12, 0, 2),
            "{name}"
        );
        assert!(
            log.summary().contains("2 GPUs per pass"),
            "{}",
            log.summary()
        );
        assert_eq!(log.gpus[1].index, 1);
        let (peak0, _) = log.stats(0, Metric::VramUsedMib).unwrap();
        let (peak1, _) = log.stats(1, Metric::VramUsedMib).unwrap();
        assert_eq!(
            (peak0, peak1),
            (39_500.0, 71_230.0),
            "{name}: not merged into one GPU"
        );
    }
}

#[test]
fn gpus_named_only_by_bus_id_keep_apart_and_are_numbered() {
    let log = import_csv(&read("smi_bus_id_only.csv"), "bus").unwrap();
    assert_eq!(log.gpus.len(), 2);
    assert_eq!(
        log.gpus[0].label(),
        "GPU 0 · NVIDIA H200 (00000000:18:00.0)"
    );
    assert_eq!(
        log.gpus[1].label(),
        "GPU 1 · NVIDIA H200 (00000000:2A:00.0)"
    );
    assert_eq!(log.stats(1, Metric::VramUsedMib).unwrap().0, 50_002.0);
}

#[test]
fn a_unified_memory_device_keeps_its_other_series() {
    let log = import_csv(&read("smi_unified_memory_na.csv"), "gb10").unwrap();
    assert_eq!((log.rows, log.bad_rows), (5, 0));
    let gpu = &log.gpus[0];
    assert_eq!(
        (gpu.rows, gpu.rows_with_memory, gpu.total_mib),
        (5, 0, None)
    );
    assert_eq!(log.stats(0, Metric::VramUsedMib), None);
    assert_eq!(log.stats(0, Metric::GpuUtil).unwrap().0, 97.0);
}

#[test]
fn rows_of_different_gpus_are_never_one_gpu_without_ids_or_timestamps() {
    // Two models in one log, no index, uuid or timestamp, and one pass with a row missing:
    // the passes cannot be learnt, but a row's name and size still say which GPU it is.
    let name = "smi_two_models_missing_row.csv";
    let log = import_csv(&read(name), name).unwrap();
    assert_eq!((log.rows, log.gpus.len()), (7, 2), "{:?}", log.gpus);
    let names: Vec<&str> = log.gpus.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        ["NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3060"]
    );
    let (peak_4090, _) = log.stats(0, Metric::VramUsedMib).unwrap();
    let (peak_3060, _) = log.stats(1, Metric::VramUsedMib).unwrap();
    assert_eq!((peak_4090, peak_3060), (22_528.0, 1_200.0));
}

#[test]
fn two_rows_stamped_milliseconds_apart_are_two_gpus_of_one_pass() {
    let name = "seed_two_gpus_two_rows.csv";
    let log = import_csv(&read(name), name).unwrap();
    assert_eq!((log.rows, log.gpus.len()), (2, 2), "{:?}", log.gpus);
    let (busy, _) = log.stats(0, Metric::VramUsedMib).unwrap();
    let (idle, _) = log.stats(1, Metric::VramUsedMib).unwrap();
    assert_eq!((busy, idle), (23_012.0, 412.0));
}
