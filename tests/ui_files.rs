//! Files chosen in the window where no desktop file dialog exists (CI has neither a portal nor
//! zenity): the in-window chooser lists folders, opens a log, saves an export, and cancels.

mod common;

use common::{open_window, plain_app, until};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::Telemetry;
use vramdeck::telemetry::sim::SimulatedGpus;
use vramdeck::telemetry::{GpuSource, Snapshot};
use vramdeck::ui::VramDeckApp;
use vramdeck::ui::files::Chooser;

fn window_starting_in(dir: &Path) -> Harness<'static, VramDeckApp> {
    let mut sim = SimulatedGpus::demo("test");
    let mut t = Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default());
    for s in 0..5 {
        t.record(Snapshot {
            time: SystemTime::now() - Duration::from_secs(5 - s),
            gpus: sim.sample_at(Duration::from_secs(s)),
        });
    }
    let app = plain_app(t.shared()).with_file_chooser(Chooser::InWindow, Some(dir.to_path_buf()));
    let mut h = open_window(app, 1280.0, 720.0);
    h.run();
    h
}

/// Steps until the chooser is on screen (a new window takes a frame to size itself).
fn chooser_open(h: &mut Harness<'static, VramDeckApp>) {
    until(h, "the chooser", |h| {
        h.query_by_role_and_label(Role::TextInput, "File").is_some()
    });
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn open_log_lists_the_folder_and_opens_the_chosen_csv() {
    let mut h = window_starting_in(&fixtures());
    h.get_by_label("Open log...").click();
    until(&mut h, "the folder listing", |h| {
        h.query_by_label("csv/").is_some()
    });
    // Folders first; only logs (.csv, .log, .txt) unless all files are asked for.
    assert!(h.query_by_label("fake_webui.py").is_none());
    h.get_by_label("csv/").click();
    until(&mut h, "the csv folder", |h| {
        h.query_by_label("two_gpus_na.csv").is_some()
    });
    h.get_by_label("two_gpus_na.csv").click();
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, "Open").click();
    until(&mut h, "the imported log", |h| {
        h.state().imported_log().is_some()
    });
    assert!(
        h.query_by_label("Open a log").is_none(),
        "the chooser closed"
    );
}

#[test]
fn show_all_files_lists_every_file() {
    let mut h = window_starting_in(&fixtures());
    h.get_by_label("Open log...").click();
    until(&mut h, "the folder listing", |h| {
        h.query_by_label("csv/").is_some()
    });
    h.get_by_label("Show all files").click();
    until(&mut h, "every file", |h| {
        h.query_by_label("fake_webui.py").is_some()
    });
}

#[test]
fn export_saves_where_the_user_types_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = window_starting_in(dir.path());
    h.get_by_label("Export CSV...").click();
    chooser_open(&mut h);
    let field = h.get_by_role_and_label(Role::TextInput, "File");
    let suggested = field.value().unwrap_or_default();
    assert!(
        suggested.starts_with("vramdeck-") && suggested.ends_with(".csv"),
        "{suggested:?}"
    );
    h.get_by_role_and_label(Role::Button, "Save").click();
    let saved = dir.path().join(&suggested);
    until(&mut h, "the saved file", |_| saved.exists());
    until(&mut h, "the toast", |h| {
        h.query_by_label_contains("Saved ").is_some()
    });
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.starts_with("timestamp"), "{text}");
}

#[test]
fn a_typed_folder_is_entered_and_a_missing_file_is_a_warning() {
    let mut h = window_starting_in(Path::new("/"));
    h.get_by_label("Open log...").click();
    chooser_open(&mut h);
    let csv = fixtures().join("csv");
    h.get_by_role_and_label(Role::TextInput, "File").focus();
    h.get_by_role_and_label(Role::TextInput, "File")
        .type_text(csv.to_str().unwrap());
    h.get_by_role_and_label(Role::Button, "Open").click();
    until(&mut h, "the typed folder", |h| {
        h.query_by_label("two_gpus_na.csv").is_some()
    });
    h.get_by_role_and_label(Role::TextInput, "File").focus();
    h.get_by_role_and_label(Role::TextInput, "File")
        .type_text("no-such.csv");
    h.get_by_role_and_label(Role::Button, "Open").click();
    until(&mut h, "the warning", |h| {
        h.query_by_label_contains("no-such.csv").is_some()
            && h.query_by_label("Open a log").is_none()
    });
}

#[test]
fn cancel_closes_the_chooser_and_changes_nothing() {
    let mut h = window_starting_in(&fixtures());
    h.get_by_label("Open log...").click();
    chooser_open(&mut h);
    h.get_by_label("Open a log");
    h.get_by_role_and_label(Role::Button, "Cancel").click();
    h.run_steps(2);
    assert!(h.query_by_role_and_label(Role::TextInput, "File").is_none());
    assert!(h.state().imported_log().is_none());
    // A second request opens it again (nothing stays "busy").
    h.get_by_label("Open log...").click();
    chooser_open(&mut h);
    h.get_by_label("Open a log");
}

#[test]
fn an_export_over_an_existing_file_asks_first_and_is_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("mine.csv");
    std::fs::write(&existing, "keep me\n").unwrap();
    let mut h = window_starting_in(dir.path());
    h.get_by_label("Export CSV...").click();
    chooser_open(&mut h);
    until(&mut h, "the folder listing", |h| {
        h.query_by_label("mine.csv").is_some()
    });
    h.get_by_label("mine.csv").click();
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, "Save").click();
    h.run_steps(3);
    h.get_by_label("mine.csv already exists.");
    // "Keep it" leaves the file as it was, the chooser open.
    h.get_by_label("Keep it").click();
    h.run_steps(3);
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me\n");
    assert!(h.query_by_label("mine.csv already exists.").is_none());
    h.get_by_role_and_label(Role::Button, "Save").click();
    h.run_steps(3);
    h.get_by_label("Replace it").click();
    until(&mut h, "the replaced file", |_| {
        std::fs::read_to_string(&existing).is_ok_and(|t| t.starts_with("timestamp"))
    });
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&existing).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "an export is a document others may read");
    }
}
