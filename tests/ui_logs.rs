//! Logs in the window: an nvidia-smi CSV shown in the plots, a console log analysed for OOM,
//! recording from the top bar, and the compact always-on-top view.

mod common;

use common::{open_window, plain_app, until};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::path::Path;
use std::time::{Duration, SystemTime};
use vramdeck::logs::recorder::RecorderConfig;
use vramdeck::settings::Settings;
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::{Sampler, SharedTelemetry, Telemetry};
use vramdeck::telemetry::sim::SimulatedGpus;
use vramdeck::telemetry::{GpuSource, Snapshot};
use vramdeck::ui::VramDeckApp;

fn demo() -> SharedTelemetry {
    let mut sim = SimulatedGpus::demo("test");
    let mut t = Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default());
    t.record(Snapshot {
        time: SystemTime::now(),
        gpus: sim.sample_at(Duration::from_secs(30)),
    });
    t.shared()
}

fn window(app: VramDeckApp) -> Harness<'static, VramDeckApp> {
    open_window(app, 1480.0, 1100.0)
}

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

#[test]
fn an_nvidia_smi_log_is_shown_in_the_plots_until_back_to_live() {
    let mut h = window(plain_app(demo()));
    h.run();
    h.state_mut().open_log_file(fixture("csv/two_gpus_na.csv"));
    until(&mut h, "the imported log", |h| {
        h.state().imported_log().is_some()
    });
    h.get_by_label("Log");
    // The dates, so a day-long log does not read 00:00 … 00:00.
    let (t0, t1) = h.state().imported_log().unwrap().span;
    let dates = vramdeck::ui::logs_view::visible_range_text(t0, t1);
    assert!(dates.contains(" – "), "{dates}");
    h.get_by_label(&dates);
    // In the log's column and in the "Opened" toast.
    assert_eq!(
        h.query_all_by_label_contains("4 rows from 2 GPUs, 3 bad rows skipped")
            .count(),
        2
    );
    let plot = h.state().last_plot();
    assert_eq!(
        plot.vram.iter().map(|c| c.mean).collect::<Vec<_>>(),
        vec![7_987.0, 7_990.0]
    );
    // The second GPU of the log.
    h.get_by_label("GPU 1 · NVIDIA A100-SXM4-40GB").click();
    h.run_steps(2);
    let plot = h.state().last_plot();
    assert_eq!(
        plot.vram.iter().map(|c| c.mean).collect::<Vec<_>>(),
        vec![39_500.0, 2_000.0]
    );
    h.get_by_label("Back to live").click();
    h.run_steps(2);
    assert!(h.state().imported_log().is_none());
    h.get_by_label("History of GPU 0");
}

#[test]
fn a_console_log_opens_the_out_of_memory_analysis() {
    let mut h = window(plain_app(demo()));
    h.run();
    h.state_mut()
        .open_log_file(fixture("logs/comfyui_ddcolor_oom.log"));
    until(&mut h, "the analysis", |h| h.state().analysis().is_some());
    // A new egui window spends its first frame measuring itself.
    h.run_steps(3);
    h.get_by_label("2 events in 19 lines");
    h.get_by_label("- this process's own tensors held 9.8 GiB of the 12.0 GiB card: the job itself is too big for it");
    h.get_by_label("line 13: PyTorch CUDA out of memory");
    h.get_by_label("- DDColor (ComfyUI): use size 960 instead of 1280 (the largest safe size on a 12.0 GiB card)");
    // Esc closes it, as it closes the file chooser.
    h.key_press(egui::Key::Escape);
    h.run_steps(2);
    assert!(h.state().analysis().is_none());
    assert!(h.query_by_label("2 events in 19 lines").is_none());
}

#[test]
fn a_csv_log_that_cannot_be_imported_shows_the_real_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpu.csv");
    std::fs::write(
        &path,
        "timestamp, index, memory.used [MiB]\nyesterday, 0, 100\n",
    )
    .unwrap();
    let mut h = window(plain_app(demo()));
    h.run();
    h.state_mut().open_log_file(path);
    until(&mut h, "the warning", |h| !h.state().warnings().is_empty());
    h.run_steps(2);
    h.get_by_label_contains("Not a readable nvidia-smi CSV log");
    h.get_by_label_contains("line 2: unreadable timestamp \"yesterday\"");
    assert!(
        h.state().analysis().is_none(),
        "not passed off as an empty OOM analysis"
    );
}

#[test]
fn a_missing_file_is_a_warning_not_a_crash() {
    let mut h = window(plain_app(demo()));
    h.run();
    h.state_mut().open_log_file("/nonexistent/log.csv".into());
    until(&mut h, "the warning", |h| !h.state().warnings().is_empty());
    h.get_by_label_contains("Cannot read /nonexistent/log.csv");
}

#[test]
fn mini_view_shows_bars_and_free_and_goes_back() {
    let mut h = window(plain_app(demo()));
    h.run();
    h.get_by_label("Mini view").click();
    h.run_steps(2);
    assert!(h.state().settings().mini_view);
    h.get_by_label("Full view");
    h.get_by_label("Free VRAM");
    assert!(h.query_by_label("History of GPU 0").is_none());
    h.get_by_label("Full view").click();
    h.run_steps(2);
    assert!(!h.state().settings().mini_view);
    h.get_by_label("History of GPU 0");
}

#[test]
fn record_to_csv_from_the_top_bar() {
    let dir = tempfile::tempdir().unwrap();
    let recording = vramdeck::logs::recorder::Recording::default();
    let sampler = Sampler::spawn_with(
        Box::new(SimulatedGpus::demo("test")),
        Duration::from_millis(100),
        HistoryConfig::default(),
        vec![recording.observer()],
        || {},
    );
    let t = sampler.telemetry();
    let app = VramDeckApp::new(t.clone(), Some(sampler), Settings::default(), None, vec![])
        .with_recording(
            recording.clone(),
            RecorderConfig {
                dir: dir.path().to_path_buf(),
                max_file_bytes: 1 << 20,
                keep_files: 3,
            },
        );
    let mut h = window(app);
    until(&mut h, "the first reading", |h| {
        h.query_by_label("Record to CSV").is_some()
    });
    h.get_by_label("Record to CSV").click();
    until(&mut h, "recording", |_| recording.status().bytes > 2_000);
    h.get_by_label_contains("recording to ");
    h.get_by_label("Recording").click();
    until(&mut h, "the stop", |_| !recording.status().active);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
}

#[test]
fn the_mouse_wheel_zooms_a_logs_chart_as_its_hint_says() {
    let mut h = window(plain_app(demo()));
    h.run();
    h.state_mut().open_log_file(fixture("csv/two_gpus_na.csv"));
    until(&mut h, "the imported log", |h| {
        h.state().imported_log().is_some()
    });
    h.run_steps(3);
    use egui_kittest::kittest::NodeT;
    let (t0, t1) = h.state().imported_log().unwrap().span;
    let whole = vramdeck::ui::logs_view::visible_range_text(t0, t1);
    h.get_by_label(&whole);
    assert!(h.get_by_label("Whole log").accesskit_node().is_disabled());
    // Over the VRAM chart (right of the log's column, under the header), a plain wheel turn.
    h.event(egui::Event::PointerMoved(egui::pos2(900.0, 300.0)));
    h.run_steps(2);
    for _ in 0..4 {
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, 120.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
        h.run_steps(2);
    }
    h.run_steps(4);
    // Zoomed in: "Whole log" can go back.
    assert!(
        !h.get_by_label("Whole log").accesskit_node().is_disabled(),
        "the wheel did not zoom"
    );
    h.get_by_label("Whole log").click();
    h.run_steps(4);
    h.get_by_label(&whole);
}

#[test]
fn a_message_pasted_with_ctrl_v_or_the_paste_button_is_analysed() {
    let mut h = window(plain_app(demo()));
    h.run();
    let message =
        std::fs::read_to_string(fixture("logs/llamacpp_server_cuda_kv_cache.log")).unwrap();
    // Ctrl+V outside any text field: egui turns it into a Paste event.
    h.event(egui::Event::Paste(message.clone()));
    until(&mut h, "the analysis", |h| h.state().analysis().is_some());
    h.run_steps(3);
    h.get_by_label("Pasted text (14 lines)");
    h.get_by_label("line 9: ggml buffer allocation failed (llama.cpp / Ollama)");
    h.key_press(egui::Key::Escape);
    h.run_steps(2);
    assert!(h.state().analysis().is_none());
    // The Paste button asks for the clipboard; what comes back is analysed the same way.
    h.get_by_label("Paste log").click();
    h.run_steps(1);
    let mps = std::fs::read_to_string(fixture("logs/mps_high_watermark.log")).unwrap();
    h.event(egui::Event::Paste(mps));
    until(&mut h, "the second analysis", |h| {
        h.state().analysis().is_some()
    });
    h.run_steps(3);
    h.get_by_label("line 3: PyTorch MPS out of memory (Apple)");
}
