//! A presets file is text someone else wrote (shared on a forum, sent in a chat): the attack
//! review's findings, each reproduced. Escapes in it reached the terminal through `vramdeck
//! advise`, an imported preset with a built-in id silently replaced the measured one, and a
//! 1 MiB file of 6,911 batch presets kept `advise --templates` busy for over two minutes.

mod common;

use common::vramdeck_in;
use vramdeck::workloads::catalogue::{self, Catalogue, MAX_PRESETS_PER_FILE};

/// A preset whose every text carries a terminal or bidi attack.
const HOSTILE: &str = r#"
[[workload]]
id = "evil\u001b]0;pwned\u0007"
name = "Looks fine\u001b]8;;http://evil.example\u001b\\click\u001b]8;;\u001b\\\u001b[2J"
kind = "fixed"
peak_mib = 900000
settings = "\u009b31m red \u202etxt.exe"
measured_on = "\u001b[1A\u001b[2K"
source = "shared file"
fallback_advice = "run \u001b]0;rm -rf\u0007 now"
"#;

fn has_controls(text: &str) -> Option<char> {
    text.chars().find(|c| {
        (c.is_control() && *c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

#[test]
fn escapes_in_a_presets_file_never_reach_the_terminal_through_advise() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("presets.toml"), HOSTILE).unwrap();
    let (out, err, ok) = vramdeck_in(
        dir.path(),
        &["advise", "--free-mib", "1000", "--total-mib", "2000"],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("Looks fine"), "{out}");
    assert_eq!(has_controls(&out), None, "{out:?}");
    assert_eq!(has_controls(&err), None, "{err:?}");
    assert!(
        out.contains("\\u{1b}]0;rm -rf\\u{7}"),
        "shown, not acted on: {out}"
    );
}

#[test]
fn an_imported_file_is_stored_clean() {
    let imported = catalogue::parse(HOSTILE, "shared.toml").unwrap();
    let saved = catalogue::to_toml(&imported);
    // What "Import presets..." saves holds no control characters either.
    let reread = catalogue::parse(&saved, "presets.toml").unwrap();
    for w in &reread {
        for text in [&w.id, &w.name, &w.settings, &w.measured_on, &w.source] {
            assert_eq!(has_controls(text), None, "{text:?}");
        }
    }
}

#[test]
fn an_imported_preset_with_a_built_in_id_is_added_beside_it_not_over_it() {
    let mut c = Catalogue::load(None);
    let measured = c.get("ddcolor").unwrap().clone();
    let mut lower = measured.clone();
    // A lower peak under the built-in id would have turned "will not fit" into "fits".
    lower.shape = catalogue::Shape::Fixed {
        peak_mib: 100,
        phases: vec![],
    };
    let report = c.import(vec![lower]);
    assert_eq!(report.added, 1);
    assert_eq!(
        report.renamed,
        vec![("ddcolor".to_string(), "ddcolor-imported".to_string())]
    );
    assert_eq!(c.get("ddcolor"), Some(&measured));
    assert_eq!(c.get("ddcolor-imported").unwrap().reference_peak_mib(), 100);
    assert!(
        c.get("ddcolor-imported")
            .unwrap()
            .name
            .ends_with("(imported)")
    );
    // Importing the same file again adds a second copy under its own id, never over either.
    let mut again = measured.clone();
    again.name = "second".into();
    let report = c.import(vec![again]);
    assert_eq!(report.renamed[0].1, "ddcolor-imported-2");
}

fn batch_presets(n: usize, max_batch: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[workload]]\nid=\"b{i}\"\nname=\"Batch {i}\"\nkind=\"batched\"\nbase_mib=1\n\
                 per_item_mib=0\nreference_batch=1\nmax_batch={max_batch}\nmeasured_on=\"\"\n\
                 source=\"\"\n"
            )
        })
        .collect()
}

#[test]
fn a_file_asking_for_unbounded_work_is_refused_and_the_largest_allowed_stays_quick() {
    let dir = tempfile::tempdir().unwrap();
    // The review's file: 6,911 batch presets in 1 MiB.
    let review = batch_presets(6_911, 4_000_000);
    assert!(review.len() <= 1 << 20, "{}", review.len());
    std::fs::write(dir.path().join("presets.toml"), review).unwrap();
    let (out, err, ok) = vramdeck_in(dir.path(), &["advise", "--templates"], None);
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("at most {MAX_PRESETS_PER_FILE}")),
        "{err}"
    );
    assert!(out.contains("8 GB card"), "{out}");
    // The most a file may ask: 500 presets of 4,096-item batches, each of which fits.
    std::fs::write(
        dir.path().join("presets.toml"),
        batch_presets(MAX_PRESETS_PER_FILE, catalogue::MAX_BATCH),
    )
    .unwrap();
    let (out, err, ok) = vramdeck_in(dir.path(), &["advise", "--templates"], None);
    assert!(ok, "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(
        out.contains("Batch 0 4,096 frames at once"),
        "{}",
        &out[..300]
    );
    let too_big = batch_presets(1, catalogue::MAX_BATCH + 1);
    let e = catalogue::parse(&too_big, "f").unwrap_err();
    assert!(e.contains("at most 4096"), "{e}");
}
