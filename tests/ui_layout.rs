//! The window at the sizes people use, from the declared minimum to a full-HD monitor: every
//! size shows the charts and a process table whose VRAM column is whole, narrower windows move
//! panels into tabs, and readings never move what is on screen.

mod common;

use common::open_window;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::{Duration, SystemTime};
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::{SharedTelemetry, Telemetry, lock};
use vramdeck::telemetry::sim::SimulatedGpus;
use vramdeck::telemetry::{GpuSource, Snapshot};
use vramdeck::ui::VramDeckApp;

const START: f64 = 1_800_000_000.0;

/// Two minutes of demo readings at 1 Hz (one full demo cycle: both peaks and the release).
fn demo() -> (SharedTelemetry, SimulatedGpus) {
    let mut sim = SimulatedGpus::demo("test");
    let mut t = Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default());
    for s in 0..120 {
        t.record(Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(START + s as f64),
            gpus: sim.sample_at(Duration::from_secs(s)),
        });
    }
    (t.shared(), sim)
}

fn window(width: f32, height: f32) -> Harness<'static, VramDeckApp> {
    let (t, _) = demo();
    // A real-world command line: long enough to push any column after it off screen.
    if let Some(latest) = lock(&t).latest.as_mut() {
        latest.gpus[0].processes[0].name = format!(
            "python3 wan_i2v_webui.py --listen 0.0.0.0 --port 7860 --model {} --offload",
            "/home/user/models/Wan2.2-I2V-A14B/".repeat(4)
        );
    }
    let app = VramDeckApp::new(t, None, Default::default(), None, vec![]);
    let mut h = open_window(app, width, height);
    h.run_steps(3);
    h
}

/// The demo window with the system's CJK font installed, as the app does at start-up: the View
/// menu names Chinese in Chinese.
fn window_with_fonts(width: f32, height: f32) -> Harness<'static, VramDeckApp> {
    let (t, _) = demo();
    let app = VramDeckApp::new(t, None, Default::default(), None, vec![]);
    let mut h = Harness::builder()
        .with_size(egui::vec2(width, height))
        .with_context_setup(|ctx| {
            vramdeck::ui::fonts::install(ctx);
        })
        .build_ui_state(|ui, app: &mut VramDeckApp| app.show(ui), app);
    h.run_steps(3);
    h
}

/// The process table on screen without scrolling: its last row ends above the status bar.
fn assert_table_visible(h: &Harness<'static, VramDeckApp>, height: f32) {
    let row = h
        .get_by_label_contains("python3 wan_i2v_webui.py --listen")
        .rect();
    assert!(
        row.max.y <= height - 20.0,
        "the process row ends at {} of {height}",
        row.max.y
    );
}

/// The process table's VRAM cell for the demo's Wan I2V process, whole inside the window.
fn assert_vram_column_whole(h: &Harness<'static, VramDeckApp>, width: f32) {
    let header = h.get_by_label("VRAM").rect();
    assert!(
        header.max.x <= width,
        "VRAM header ends at {} of {width}",
        header.max.x
    );
    let row = h
        .get_by_label_contains("python3 wan_i2v_webui.py --listen")
        .rect();
    assert!(row.min.x < width, "the process name starts on screen");
}

#[test]
fn full_hd_shows_three_columns_without_tabs() {
    let h = window(1_920.0, 1_080.0);
    h.get_by_label("GPU 0 · Simulated 48 GB GPU");
    h.get_by_label("History of GPU 0");
    h.get_by_label("What fits on GPU 0 now");
    assert!(h.query_by_label("What fits").is_none(), "no tabs");
    assert_vram_column_whole(&h, 1_920.0);
    assert_table_visible(&h, 1_080.0);
    assert!(!h.state().last_plot().vram.is_empty());
}

/// The top bar is one row: its last button sits level with its first.
fn assert_bar_is_one_row(h: &Harness<'static, VramDeckApp>, first: &str, last: &str) {
    let (a, b) = (h.get_by_label(first).rect(), h.get_by_label(last).rect());
    assert!(
        (a.center().y - b.center().y).abs() < 2.0,
        "{last:?} wrapped to another row: {a:?} vs {b:?}"
    );
}

#[test]
fn a_laptop_screen_keeps_the_gpus_beside_history_and_what_fits_tabs() {
    let mut h = window(1_280.0, 720.0);
    assert_bar_is_one_row(&h, "Record to CSV", "Hosts...");
    h.get_by_label("GPU 0 · Simulated 48 GB GPU");
    h.get_by_label("History of GPU 0");
    assert!(h.query_by_label("What fits on GPU 0 now").is_none());
    assert!(
        h.query_by_label("GPUs").is_none(),
        "the GPUs have their column"
    );
    assert_vram_column_whole(&h, 1_280.0);
    assert_table_visible(&h, 720.0);
    h.get_by_label("What fits").click();
    h.run_steps(2);
    h.get_by_label("What fits on GPU 0 now");
    assert!(h.query_by_label("History of GPU 0").is_none());
}

#[test]
fn at_1024_by_640_the_process_table_keeps_its_vram_column() {
    let h = window(1_024.0, 640.0);
    assert_vram_column_whole(&h, 1_024.0);
}

#[test]
fn the_declared_minimum_still_shows_charts_and_processes_through_tabs() {
    let mut h = window(640.0, 420.0);
    h.get_by_label("History of GPU 0");
    assert!(
        !h.state().last_plot().vram.is_empty(),
        "the charts are drawn"
    );
    assert_vram_column_whole(&h, 640.0);
    h.get_by_label("GPUs").click();
    h.run_steps(2);
    h.get_by_label("GPU 0 · Simulated 48 GB GPU");
    h.get_by_label("What fits").click();
    h.run_steps(2);
    h.get_by_label("What fits on GPU 0 now");
}

#[test]
fn readings_never_move_the_advisor_or_the_panels() {
    let (t, mut sim) = demo();
    let app = VramDeckApp::new(t.clone(), None, Default::default(), None, vec![]);
    let mut h = open_window(app, 1_920.0, 1_080.0);
    h.run_steps(3);
    let anchors = ["Your own presets", "History of GPU 0", "Alerts"];
    let before: Vec<_> = anchors.iter().map(|a| h.get_by_label(a).rect()).collect();
    // A whole demo cycle: free VRAM swings from 46 GB to 9 GB, verdicts and fallbacks change.
    for s in 120..240 {
        lock(&t).record(Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(START + s as f64),
            gpus: sim.sample_at(Duration::from_secs(s)),
        });
        h.run_steps(1);
        let now: Vec<_> = anchors.iter().map(|a| h.get_by_label(a).rect()).collect();
        assert_eq!(now, before, "after reading {s}");
    }
}

#[test]
fn every_choice_in_the_view_menu_can_be_made_at_any_width() {
    // A combo box inside a menu is a popup in a popup: clicking it closed the menu, so the
    // language, the theme and (in a narrow window) the interval could not be changed there.
    for (width, height) in [(1920.0, 1080.0), (1280.0, 720.0), (900.0, 600.0)] {
        let mut h = window_with_fonts(width, height);
        h.get_by_label("View").click();
        h.run_steps(2);
        h.get_by_label("Light").click();
        h.run_steps(2);
        assert_eq!(
            h.state().settings().theme,
            vramdeck::settings::Theme::Light,
            "theme at {width}"
        );
        // The language is chosen the same way (tests/ui_chinese.rs clicks it: this binary
        // stays in English).
        if h.query_by_label("Dark").is_none() {
            h.get_by_label("View").click();
            h.run_steps(2);
        }
        h.get_by_label("Dark").click();
        h.run_steps(2);
        assert_eq!(h.state().settings().theme, vramdeck::settings::Theme::Dark);
    }
    // Narrow: the interval lives in the menu too.
    let mut h = window_with_fonts(900.0, 600.0);
    h.get_by_label("View").click();
    h.run_steps(2);
    h.get_by_label("2 s").click();
    h.run_steps(2);
    assert_eq!(h.state().settings().sample_interval_ms, 2_000);
}

#[test]
fn the_view_menu_keeps_the_window_on_top_and_says_why_there_is_no_tray() {
    let mut h = window_with_fonts(1280.0, 720.0);
    h.get_by_label("View").click();
    h.run_steps(2);
    h.get_by_label("Always on top").click();
    h.run_steps(2);
    assert!(h.state().settings().always_on_top);
    if h.query_by_label("Start with the session (hidden)")
        .is_none()
    {
        h.get_by_label("View").click();
        h.run_steps(2);
    }
    // No tray in this harness: the choice is shown, greyed out (its reason on hover), so a
    // close can never hide the window with no way back.
    use egui_kittest::kittest::NodeT;
    let keep = h.get_by_label("Keep running in the tray when closed");
    assert!(keep.accesskit_node().is_disabled());
    let start = h.get_by_label("Start with the session (hidden)");
    assert!(!start.accesskit_node().is_disabled());
}

#[test]
fn free_vram_is_on_the_top_bar_at_every_width_and_shortcuts_switch_the_view() {
    for (width, height) in [
        (1920.0, 1080.0),
        (1280.0, 720.0),
        (1024.0, 768.0),
        (640.0, 420.0),
    ] {
        let (t, _) = demo();
        let agents = common::agent_dir();
        let worker = vramdeck::release::worker::ReleaseWorker::spawn(
            vramdeck::release::discovery::AgentDir::at(agents.path()),
            "none".into(),
            Box::new(common::ReservedByAgents(agents.path().to_path_buf())),
            || {},
        );
        let app =
            VramDeckApp::new(t, None, Default::default(), None, vec![]).with_release_worker(worker);
        let mut h = open_window(app, width, height);
        h.run_steps(3);
        let free = h.get_by_label("Free VRAM").rect();
        assert!(
            free.max.y < 80.0 && free.max.x <= width,
            "Free VRAM at {free:?} in a {width}x{height} window"
        );
    }
    let mut h = window(1280.0, 720.0);
    let shift = egui::Modifiers::COMMAND | egui::Modifiers::SHIFT;
    h.key_press_modifiers(shift, egui::Key::M);
    h.run_steps(2);
    assert!(h.state().settings().mini_view);
    h.get_by_label("Full view");
    h.key_press_modifiers(shift, egui::Key::M);
    h.run_steps(2);
    assert!(!h.state().settings().mini_view);
    h.get_by_label("History of GPU 0");
}
