//! Property-based fuzzing of everything that reads outside input: the agent protocol decoder,
//! the CSV importer, the OOM analyser, the settings and presets loaders, and history queries.
//! Failures are kept by proptest in tests/fuzz.proptest-regressions and replayed first.

use proptest::prelude::*;
use vramdeck::logs::import::import_csv;
use vramdeck::logs::oom::analyze;
use vramdeck::release::protocol::decode_reply;
use vramdeck::settings::Settings;
use vramdeck::telemetry::history::{History, Metric, Values};
use vramdeck::workloads::calibration::Calibration;
use vramdeck::workloads::catalogue::{Catalogue, parse};

/// Lines that look almost like the real thing: the parsers' interesting cases.
fn log_line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9/:. ]{0,30}, [0-9]{0,3}, [A-Za-z0-9 ]{0,20}, [0-9]{0,6} MiB, [0-9]{0,6}( MiB)?, [0-9]{0,3} ?%?, [0-9\\[\\]NA/]{0,5}",
        Just("timestamp, index, name, memory.used [MiB], memory.total [MiB]".to_string()),
        "CUDA out of memory\\. Tried to allocate [0-9.]{0,8} ?(GiB|MiB|B|xB)? \\(GPU [0-9]{0,12}; [0-9.]{0,8} GiB total capacity[;,] [0-9.]{0,8} GiB already allocated",
        "torch.OutOfMemoryError: GPU [0-9]{0,3} has a total capacity of [0-9.]{0,9} GiB of which [0-9.]{0,9} MiB is free\\.",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn protocol_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2_000), id in any::<u64>()) {
        let _ = decode_reply(&bytes, id);
    }

    #[test]
    fn protocol_decoder_accepts_only_its_own_version(v in any::<u32>(), id in any::<u64>()) {
        let line = format!(r#"{{"v":{v},"id":{id},"ok":true}}"#);
        prop_assert_eq!(decode_reply(line.as_bytes(), id).is_ok(), v == 1);
    }

    #[test]
    fn csv_importer_never_panics_and_counts_every_row(lines in proptest::collection::vec(log_line(), 0..60)) {
        let text = lines.join("\n");
        if let Ok(log) = import_csv(&text, "fuzz") {
            prop_assert!(log.rows + log.bad_rows <= lines.len());
        }
    }

    #[test]
    fn oom_analyser_never_panics(lines in proptest::collection::vec(log_line(), 0..60)) {
        let _ = analyze(&lines.join("\n"), &Catalogue::load(None), &Calibration::default());
    }

    #[test]
    fn oom_analyser_reads_back_the_numbers_pytorch_printed(
        requested in 1u32..100_000, total in 1u32..200_000, free in 0u32..100_000, gpu in 0u32..16,
    ) {
        // Values in hundredths of a GiB, printed the way PyTorch 2.3 prints them.
        let gib = |x: u32| format!("{}.{:02} GiB", x / 100, x % 100);
        let text = format!(
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {}. GPU {gpu} has a total capacity of {} of which {} is free.",
            gib(requested), gib(total), gib(free)
        );
        let a = analyze(&text, &Catalogue::load(None), &Calibration::default());
        prop_assert_eq!(a.events.len(), 1);
        let e = &a.events[0];
        let bytes = |x: u32| (x as f64 / 100.0 * (1u64 << 30) as f64) as u64;
        prop_assert_eq!(e.requested.map(|b| b.0), Some(bytes(requested)));
        prop_assert_eq!(e.total.map(|b| b.0), Some(bytes(total)));
        prop_assert_eq!(e.free.map(|b| b.0), Some(bytes(free)));
        prop_assert_eq!(e.gpu, Some(gpu));
    }

    #[test]
    fn settings_loader_never_panics(text in any::<String>()) {
        if let Ok(s) = Settings::from_toml(&text) {
            prop_assert!((100..=5_000).contains(&s.sample_interval_ms));
        }
    }

    #[test]
    fn presets_loader_never_panics(text in any::<String>(), tail in "[a-z_ =\\[\\]\"0-9\n]{0,200}") {
        let _ = parse(&text, "fuzz");
        let _ = parse(&format!("[[workload]]\n{tail}"), "fuzz");
    }

    #[test]
    fn history_queries_stay_inside_their_window(
        pushes in proptest::collection::vec((0.0f64..10_000.0, any::<f32>()), 0..400),
        t0 in -100.0f64..10_100.0, span in -10.0f64..10_000.0, columns in 0usize..3_000,
    ) {
        let mut h = History::default();
        for (t, v) in &pushes {
            h.push_values(0, *t, Values([*v, *v, *v, *v, *v]));
        }
        let t1 = t0 + span;
        let points = h.series(0, Metric::VramUsedMib, t0, t1, columns);
        prop_assert!(points.len() <= 2 * columns.max(1));
        for p in &points {
            prop_assert!(p[0] >= t0 && p[0] <= t1, "{} outside [{t0}, {t1}]", p[0]);
        }
        let _ = h.stats(0, Metric::Power, t0, t1);
        let _ = h.readings(0, t0, t1);
    }
}
