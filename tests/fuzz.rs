//! Property-based fuzzing of everything that reads outside input: the agent protocol decoder,
//! the CSV importer, the OOM analyser, the settings and presets loaders, and history queries.
//! Two kinds of input: generated from scratch, and mutations of a kept corpus of real inputs
//! (tests/fixtures/{csv,logs}, tests/fuzz-corpus/, assets/presets.toml) — truncated, bytes
//! flipped, ranges deleted, duplicated or spliced with garbage — which reach the deep paths a
//! random string never does. Failures are kept by proptest in tests/fuzz.proptest-regressions
//! and replayed first; an input worth keeping goes into the corpus folders.

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
        // Full-range numbers: a log may say anything (these overflowed before).
        "CUDA out of memory\\. Tried to allocate [0-9.]{0,30} ?(GiB|MiB|B|xB)? \\(GPU [0-9]{0,12}; [0-9.]{0,30} GiB total capacity[;,] [0-9.]{0,30} GiB already allocated; [0-9.]{0,30} GiB reserved in total by PyTorch\\)",
        "[0-9.]{0,30} GiB is allocated by PyTorch, and [0-9.]{0,30} GiB is reserved by PyTorch but unallocated",
        "torch.OutOfMemoryError: GPU [0-9]{0,3} has a total capacity of [0-9.]{0,9} GiB of which [0-9.]{0,9} MiB is free\\.",
    ]
}

proptest! {
    // 256 cases in every test run; PROPTEST_CASES=N for a longer hunt.
    #![proptest_config(ProptestConfig::default())]

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
        prop_assert_eq!(e.numbers.requested.map(|b| b.0), Some(bytes(requested)));
        prop_assert_eq!(e.numbers.total.map(|b| b.0), Some(bytes(total)));
        prop_assert_eq!(e.numbers.free.map(|b| b.0), Some(bytes(free)));
        prop_assert_eq!(e.numbers.gpu, Some(gpu));
    }

    #[test]
    fn preset_numbers_of_any_size_neither_wrap_nor_panic(
        base in 0u64..=i64::MAX as u64, per in 0u64..=i64::MAX as u64,
        reference in any::<u32>(), max_batch in prop_oneof![0u32..=4_096, any::<u32>()], free in any::<u32>(), total in any::<u32>(),
    ) {
        let text = format!(
            "[[workload]]\nid = \"x\"\nname = \"X\"\nkind = \"batched\"\nbase_mib = {base}\n\
             per_item_mib = {per}\nreference_batch = {reference}\nmax_batch = {max_batch}\n\
             measured_on = \"a\"\nsource = \"b\"\n"
        );
        let presets = match parse(&text, "fuzz") {
            Ok(p) => p,
            // Batches past the cap are refused with a sentence, never parsed into work.
            Err(e) => {
                prop_assert!(max_batch > vramdeck::workloads::catalogue::MAX_BATCH, "{}", e);
                return Ok(());
            }
        };
        let _ = presets[0].reference_peak_mib();
        let mut catalogue = Catalogue::load(None);
        catalogue.merge_user(presets);
        let budget = vramdeck::workloads::advisor::Budget::new(
            vramdeck::units::Bytes::from_mib(u64::from(free)),
            vramdeck::units::Bytes::from_mib(u64::from(total)),
            25.0,
        );
        let _ = vramdeck::workloads::advisor::advise(&catalogue, &budget, &Calibration::default());
        let _ = vramdeck::workloads::advisor::templates(&catalogue, &Calibration::default());
    }

    #[test]
    fn agent_reported_bytes_of_any_size_sum_without_wrapping(
        reported in proptest::collection::vec(any::<u64>(), 0..6),
        before in any::<u64>(), after in any::<u64>(),
    ) {
        use vramdeck::release::free::{FreeReport, TargetFreed, TargetResult};
        let report = FreeReport {
            at: std::time::SystemTime::UNIX_EPOCH,
            level: vramdeck::release::FreeLevel::Cache,
            results: reported.iter().map(|b| TargetResult {
                target: "agent".into(),
                outcome: Ok(TargetFreed { reported: Some(vramdeck::units::Bytes(*b)), ..TargetFreed::default() }),
            }).collect(),
            used_before: Some(vramdeck::units::Bytes(before)),
            used_after: Some(vramdeck::units::Bytes(after)),
            elapsed: std::time::Duration::ZERO,
            pending: Vec::new(),
            gave_up: None,
            comfy_configured: false,
            slept: Vec::new(),
        };
        let _ = report.summary();
        let _ = report.outcome();
        if let Some(total) = report.reported_total() {
            prop_assert!(total.0 >= reported.iter().copied().max().unwrap_or(0));
        }
    }

    #[test]
    fn agent_replies_with_any_numbers_decode_or_fail_cleanly(
        released in any::<u64>(), reserved in any::<u64>(), pid in any::<u64>(), float in any::<f64>(),
    ) {
        let line = format!(
            r#"{{"v":1,"id":1,"ok":true,"agent":{{"pid":{pid},"reserved":{reserved},"allocated":{float}}},"freed":{{"released_bytes":{released},"duration_ms":{float}}}}}"#
        );
        let _ = decode_reply(line.as_bytes(), 1);
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

/// One edit of a corpus file; positions are taken modulo its length.
#[derive(Clone, Debug)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..16),
                // Tokens the parsers branch on.
                prop::sample::select(vec![
                    b",".to_vec(),
                    b"\n".to_vec(),
                    b" MiB".to_vec(),
                    b"[N/A]".to_vec(),
                    b"GiB".to_vec(),
                    b"\"".to_vec(),
                    b"{".to_vec(),
                    b"}".to_vec(),
                    b"=".to_vec(),
                    b"[[workload]]\n".to_vec(),
                    b"-1".to_vec(),
                    b"1e400".to_vec(),
                    b"NaN".to_vec(),
                    "\u{00e9}".as_bytes().to_vec(),
                    vec![0xff, 0xfe],
                ]),
            ]
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 0usize..64).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), 0usize..200, any::<usize>())
            .prop_map(|(from, len, to)| Mutation::Duplicate(from, len, to)),
    ]
}

fn apply(mut data: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = data.len();
        let at = |i: usize| if n == 0 { 0 } else { i % (n + 1) };
        match m {
            Mutation::Truncate(i) => data.truncate(at(*i)),
            Mutation::Flip(i, bits) if n > 0 => data[i % n] ^= bits,
            Mutation::Flip(..) => {}
            Mutation::Insert(i, bytes) => {
                let i = at(*i);
                data.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(i, len) => {
                let i = at(*i);
                data.drain(i..(i + len).min(n));
            }
            Mutation::Duplicate(from, len, to) => {
                let from = at(*from);
                let piece = data[from..(from + len).min(n)].to_vec();
                let to = at(*to);
                data.splice(to..to, piece);
            }
        }
    }
    data
}

/// Every file of the kept corpus for one input kind.
fn corpus(folders: &[&str], files: &[&str]) -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(root.join(f)).expect("corpus file"))
        .collect();
    for folder in folders {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(folder))
            .expect("corpus folder")
            .map(|e| e.expect("corpus entry").path())
            .collect();
        entries.sort();
        out.extend(
            entries
                .iter()
                .map(|p| std::fs::read(p).expect("corpus file")),
        );
    }
    assert!(!out.is_empty(), "empty corpus {folders:?} {files:?}");
    out
}

/// A corpus file with up to eight mutations applied.
fn mutated(files: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (0..files.len(), proptest::collection::vec(mutation(), 0..8))
        .prop_map(move |(i, edits)| apply(files[i].clone(), &edits))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_corpus_itself_parses() {
    // The unmutated seeds must exercise the happy paths, or mutating them finds little.
    for csv in corpus(&["tests/fixtures/csv"], &[]) {
        let log = import_csv(&text(&csv), "corpus").expect("corpus CSV imports");
        assert!(log.rows > 0);
    }
    let logs = corpus(&["tests/fixtures/logs"], &[]);
    let found: usize = logs
        .iter()
        .map(|l| {
            analyze(&text(l), &Catalogue::load(None), &Calibration::default())
                .events
                .len()
        })
        .sum();
    assert!(
        found >= logs.len() - 1,
        "{found} events in {} logs",
        logs.len()
    );
    for reply in corpus(&["tests/fuzz-corpus/protocol"], &[]) {
        let line = text(&reply);
        let id = 1;
        let decoded = decode_reply(line.trim_end().as_bytes(), id);
        assert!(decoded.is_ok(), "{line}: {decoded:?}");
    }
    for settings in corpus(&["tests/fuzz-corpus/settings"], &[]) {
        Settings::from_toml(&text(&settings)).expect("corpus settings load");
    }
    let presets = corpus(&[], &["assets/presets.toml"]);
    assert!(parse(&text(&presets[0]), "corpus").is_ok());
}

proptest! {
    // 256 cases in every test run; PROPTEST_CASES=N for a longer hunt.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn mutated_nvidia_smi_logs_import_or_fail_cleanly(
        csv in mutated(corpus(&["tests/fixtures/csv"], &[]))
    ) {
        let text = text(&csv);
        if let Ok(log) = import_csv(&text, "fuzz") {
            prop_assert!(log.rows + log.bad_rows <= text.lines().count());
        }
    }

    #[test]
    fn mutated_oom_logs_never_panic_the_analyser(
        log in mutated(corpus(&["tests/fixtures/logs"], &[]))
    ) {
        let _ = analyze(&text(&log), &Catalogue::load(None), &Calibration::default());
    }

    #[test]
    fn mutated_agent_replies_decode_or_fail_cleanly(
        reply in mutated(corpus(&["tests/fuzz-corpus/protocol"], &[])), id in 0u64..3
    ) {
        let _ = decode_reply(&reply, id);
    }

    #[test]
    fn settings_with_any_float_stay_within_limits(
        margin in any::<f32>(), percent in any::<f32>(), seconds in any::<f32>(), temperature in any::<f32>(),
    ) {
        // TOML spells NaN and the infinities `nan`, `inf` and `-inf`.
        let toml = |v: f32| if v.is_nan() { "nan".to_string() } else if v.is_infinite() {
            if v > 0.0 { "inf".into() } else { "-inf".into() }
        } else { format!("{v:e}") };
        let text = format!(
            "margin_percent = {}\n[alerts]\nvram_percent = {}\nvram_seconds = {}\ntemperature_c = {}\n",
            toml(margin), toml(percent), toml(seconds), toml(temperature)
        );
        let s = Settings::from_toml(&text).unwrap();
        prop_assert!((0.0..=100.0).contains(&s.margin_percent));
        prop_assert!((1.0..=100.0).contains(&s.alerts.vram_percent));
        prop_assert!((0.0..=3_600.0).contains(&s.alerts.vram_seconds));
        prop_assert!((30.0..=120.0).contains(&s.alerts.temperature_c));
    }

    #[test]
    fn mutated_settings_load_within_limits_or_are_refused(
        file in mutated(corpus(&["tests/fuzz-corpus/settings"], &[]))
    ) {
        if let Ok(s) = Settings::from_toml(&text(&file)) {
            prop_assert!((100..=5_000).contains(&s.sample_interval_ms));
            prop_assert!((0.0..=100.0).contains(&s.margin_percent));
        }
    }

    #[test]
    fn mutated_preset_files_parse_or_fail_cleanly(
        file in mutated(corpus(&[], &["assets/presets.toml"]))
    ) {
        let _ = parse(&text(&file), "fuzz");
    }
}
