//! The live monitor as a user sees it, driven through egui_kittest (no display needed).

mod common;

use common::open_window;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::{Duration, Instant, SystemTime};
use vramdeck::settings::{self, PlotWindow, Settings, SettingsWriter};
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::{Sampler, SharedTelemetry, Telemetry, lock};
use vramdeck::telemetry::sim::SimulatedGpus;
use vramdeck::telemetry::{GpuSource, Snapshot};
use vramdeck::ui::VramDeckApp;
use vramdeck::units::{MemoryUnit, format_used_total};

const START: f64 = 1_800_000_000.0;

/// Telemetry holding `seconds` of demo readings at 1 Hz, ending at the I2V peak.
fn demo_telemetry(seconds: u64) -> SharedTelemetry {
    let mut sim = SimulatedGpus::demo("NVML not available: test machine");
    let mut telemetry =
        Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default());
    // The demo cycle is 120 s long; end at its I2V peak (96 s into a cycle).
    let end = 96 + 120 * 1_000;
    for s in end - seconds..=end {
        telemetry.record(Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(START + s as f64),
            gpus: sim.sample_at(Duration::from_secs(s)),
        });
    }
    telemetry.shared()
}

fn harness(app: VramDeckApp) -> Harness<'static, VramDeckApp> {
    open_window(app, 1200.0, 900.0)
}

fn app(telemetry: SharedTelemetry, settings: Settings) -> VramDeckApp {
    VramDeckApp::new(telemetry, None, settings, None, Vec::new())
}

#[test]
fn gpu_card_shows_the_simulated_values() {
    let telemetry = demo_telemetry(60);
    let latest = lock(&telemetry).latest.clone().unwrap();
    let mut h = harness(app(telemetry, Settings::default()));
    h.run();

    let gpu0 = &latest.gpus[0];
    h.get_by_label(&format!("GPU 0 · {}", gpu0.name));
    h.get_by_label(&format_used_total(
        gpu0.memory.used,
        gpu0.memory.total,
        MemoryUnit::MiB,
    ));
    assert!(
        gpu0.memory.used.mib() > 39_000.0,
        "the demo is at its I2V peak"
    );
    h.get_by_label(&gpu0.temperature.unwrap().to_string());
    h.get_by_label(&format!(
        "{} / {}",
        gpu0.power.unwrap(),
        gpu0.power_limit.unwrap()
    ));
    // Both simulated GPUs have a card, and the selected one's processes are listed.
    h.get_by_label(&format!("GPU 1 · {}", latest.gpus[1].name));
    h.get_by_label("python3 wan_i2v_webui.py");
    // Demo mode is impossible to miss, and says why.
    h.get_by_label("DEMO MODE");
    h.get_by_label_contains("NVML not available: test machine");
}

#[test]
fn switching_the_time_window_changes_the_plotted_range() {
    let telemetry = demo_telemetry(2 * 3_600);
    let mut h = harness(app(
        telemetry,
        Settings {
            plot_window: PlotWindow::OneMinute,
            ..Settings::default()
        },
    ));
    h.run();
    let span = |h: &Harness<'_, VramDeckApp>| {
        let plot = h.state().last_plot();
        let (first, last) = plot.plotted_span().expect("points were plotted");
        (plot.t1 - plot.t0, last - first)
    };
    let (window, plotted) = span(&h);
    assert_eq!(window, 60.0);
    assert!(
        (55.0..=60.0).contains(&plotted),
        "1 min window plotted {plotted} s"
    );

    h.get_by_label("1 h").click();
    h.run();
    assert_eq!(h.state().settings().plot_window, PlotWindow::OneHour);
    let (window, plotted) = span(&h);
    assert_eq!(window, 3_600.0);
    assert!(plotted > 3_500.0, "1 h window plotted {plotted} s");

    h.get_by_label("24 h").click();
    h.run();
    let (window, plotted) = span(&h);
    assert_eq!(window, 86_400.0);
    // Only two hours were recorded: the plot shows all of them, not more.
    assert!(
        (7_000.0..=7_200.0).contains(&plotted),
        "24 h window plotted {plotted} s"
    );
    // Decimation keeps the series near two points per pixel column.
    assert!(h.state().last_plot().vram.len() <= 1_200);
}

#[test]
fn panels_are_see_through_over_an_opaque_window_in_either_theme() {
    use eframe::App;
    for (theme, dark) in [
        (settings::Theme::Dark, true),
        (settings::Theme::Light, false),
    ] {
        let settings = Settings {
            theme,
            ..Settings::default()
        };
        let mut h = harness(app(demo_telemetry(10), settings));
        h.run();
        let visuals = h.ctx.global_style().visuals.clone();
        assert_eq!(visuals.dark_mode, dark);
        // Panels are not painted (the expensive full-window fill on a software renderer)...
        assert_eq!(visuals.panel_fill, egui::Color32::TRANSPARENT);
        // ...because the window is cleared to the theme's panel colour, fully opaque.
        let clear = h.state().clear_color(&visuals);
        let stock = if dark {
            egui::Visuals::dark().panel_fill
        } else {
            egui::Visuals::light().panel_fill
        };
        assert_eq!(clear, stock.to_normalized_gamma_f32(), "{theme:?}");
        assert_eq!(clear[3], 1.0);
    }
}

#[test]
fn clicking_a_gpu_card_selects_that_gpu() {
    let telemetry = demo_telemetry(60);
    let mut h = harness(app(telemetry, Settings::default()));
    h.run();
    h.get_by_label("GPU 1 · Simulated RTX 3090 24 GB").click();
    h.run();
    assert_eq!(h.state().settings().selected_gpu, 1);
    h.get_by_label("Processes on GPU 1");
    h.get_by_label("python3 facefusion.py");
}

#[test]
fn choosing_gib_changes_every_memory_figure() {
    let telemetry = demo_telemetry(60);
    let latest = lock(&telemetry).latest.clone().unwrap();
    let mut h = harness(app(telemetry, Settings::default()));
    h.run();
    h.get_by_label("GiB").click();
    h.run();
    let m = latest.gpus[0].memory;
    h.get_by_label(&format_used_total(m.used, m.total, MemoryUnit::GiB));
}

#[test]
fn settings_changed_in_the_window_are_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.toml");
    let writer = SettingsWriter::spawn(path.clone());
    let app = VramDeckApp::new(
        demo_telemetry(60),
        None,
        Settings::default(),
        Some(writer),
        vec![],
    );
    let mut h = harness(app);
    h.run();
    h.get_by_label("24 h").click();
    h.run();
    drop(h); // the writer finishes its last save on drop
    assert_eq!(
        settings::load(&path).settings.plot_window,
        PlotWindow::OneDay
    );
}

#[test]
fn a_corrupt_settings_file_shows_a_warning_the_user_can_dismiss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.toml");
    std::fs::write(&path, "plot_window = 17\n").unwrap();
    let loaded = settings::load(&path);
    let app = VramDeckApp::new(
        demo_telemetry(60),
        None,
        loaded.settings,
        None,
        loaded.warning.into_iter().collect(),
    );
    let mut h = harness(app);
    h.run();
    h.get_by_label_contains("is damaged");
    h.get_by_label("Dismiss").click();
    h.run();
    assert!(h.state().warnings().is_empty());
    assert!(h.query_by_label_contains("is damaged").is_none());
}

#[test]
fn the_window_fills_in_from_a_running_sampler() {
    let sampler = Sampler::spawn(
        Box::new(SimulatedGpus::demo("NVML not available: test machine")),
        Duration::from_millis(100),
        HistoryConfig::default(),
        || {},
    );
    let telemetry = sampler.telemetry();
    let app = VramDeckApp::new(telemetry, Some(sampler), Settings::default(), None, vec![]);
    let mut h = harness(app);
    let deadline = Instant::now() + Duration::from_secs(10);
    while h
        .query_by_label("GPU 1 · Simulated RTX 3090 24 GB")
        .is_none()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
        // Step, not run: the "waiting for the first reading" spinner repaints on purpose.
        h.run_steps(2);
    }
    h.get_by_label("GPU 0 · Simulated 48 GB GPU");
    h.get_by_label("GPU 1 · Simulated RTX 3090 24 GB");
}

#[test]
fn a_card_spilling_into_system_memory_says_so_in_its_table_its_verdict_and_an_alert() {
    // The demo's GPU 2 opens its cycle on a full card whose job spills (Windows' sysmem
    // fallback): forty seconds of it, through the alert rules as the sampler would.
    let mut sim = SimulatedGpus::demo("NVML not available: test machine");
    let mut telemetry =
        Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default());
    let alerts = vramdeck::alerts::SharedAlerts::default();
    for s in 0..40 {
        let snapshot = Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(START + s as f64),
            gpus: sim.sample_at(Duration::from_secs(s)),
        };
        alerts.lock().observe(&snapshot);
        telemetry.record(snapshot);
    }
    let app = app(telemetry.shared(), Settings::default()).with_alerts(alerts);
    let mut h = open_window(app, 1200.0, 1300.0);
    h.run();
    h.get_by_label_contains("GPU 2 · Simulated RTX 4090 · Windows")
        .click();
    h.run();
    assert_eq!(h.state().settings().selected_gpu, 2);
    h.get_by_label("Processes on GPU 2");
    // Windows reports shared GPU memory per process: the table grows a column for it.
    h.get_by_label("Shared");
    h.get_by_label("spilling into system memory"); // the verdict
    h.get_by_label_contains("Prefer No Sysmem Fallback");
    // The status bar leads with the spill, the weightier of the card's two alerts.
    h.get_by_label_contains("ALERT: GPU 2: VRAM is full and a job is spilling into system memory");
    // The other cards report no shared memory: no column there.
    h.get_by_label("GPU 1 · Simulated RTX 3090 24 GB").click();
    h.run();
    assert!(h.query_by_label("Shared").is_none());
}
