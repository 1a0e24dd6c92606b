//! "Busy but slow?" in the window: the new readings on the GPU card, the verdict under the
//! charts, a process's own VRAM history, and a GPU that sleeps.

mod common;

use common::open_window;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::{Duration, SystemTime};
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::{SharedTelemetry, Telemetry};
use vramdeck::telemetry::sim::{Scenario, SimulatedGpus};
use vramdeck::telemetry::{GpuSource, Snapshot};
use vramdeck::ui::VramDeckApp;

/// 30 s at 10 Hz of one scenario.
fn telemetry(scenario: Scenario) -> SharedTelemetry {
    let mut sim = SimulatedGpus::new(vec![scenario], "test");
    let mut t = Telemetry::new(
        sim.kind(),
        Duration::from_millis(100),
        HistoryConfig::default(),
    );
    let start = SystemTime::now() - Duration::from_secs(30);
    for i in 0..300u64 {
        t.record(Snapshot {
            time: start + Duration::from_millis(i * 100),
            gpus: sim.sample_at(Duration::from_millis(i * 100)),
        });
    }
    t.shared()
}

fn window(t: SharedTelemetry) -> Harness<'static, VramDeckApp> {
    let app = VramDeckApp::new(t, None, Default::default(), None, vec![]);
    let mut h = open_window(app, 1_920.0, 1_200.0);
    h.run_steps(3);
    h
}

#[test]
fn a_power_capped_gpu_says_so_on_its_card_and_under_the_charts() {
    let h = window(telemetry(Scenario::power_capped()));
    h.get_by_label("Clock held by");
    h.get_by_label("power cap");
    h.get_by_label(
        "GPU-bound, at its power limit: the GPU is the limit, and its power cap sets the clock",
    );
    h.get_by_label_contains("· SM clock 2,120 MHz while busy, 76 % of its 2,790 MHz maximum");
}

#[test]
fn starved_streaming_and_encoding_gpus_get_their_verdicts() {
    let h = window(telemetry(Scenario::facefusion_cpu_starved()));
    h.get_by_label("CPU/data-starved: the GPU waits for its input");
    h.get_by_label_contains("What to do: feed the GPU more per call");
    let h = window(telemetry(Scenario::comfyui_lowvram_offload()));
    h.get_by_label("PCIe-bound: the model streams over PCIe");
    h.get_by_label("11.2 GB/s / 450 MB/s");
    let h = window(telemetry(Scenario::nvenc_export()));
    h.get_by_label("encoder-bound: NVENC is saturated");
    h.get_by_label("96 % / 38 %");
}

#[test]
fn clicking_a_process_shows_its_vram_over_time_with_its_host_cost() {
    let mut h = window(telemetry(Scenario::facefusion_cpu_starved()));
    // SM, CPU and host memory columns.
    h.get_by_label("Host RAM");
    h.get_by_label("99 %");
    h.get_by_label("6,144 MiB");
    assert!(
        h.query_by_label_contains("VRAM of python3 facefusion.py")
            .is_none()
    );
    h.get_by_label("python3 facefusion.py").click();
    h.run_steps(2);
    h.get_by_label("VRAM of python3 facefusion.py (pid 4242)");
    h.get_by_label("python3 facefusion.py").click();
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("VRAM of python3 facefusion.py")
            .is_none()
    );
}

#[test]
fn a_sleeping_gpu_is_shown_asleep_not_as_empty_readings() {
    let mut sim = SimulatedGpus::demo("test");
    let mut t = Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default());
    let mut gpus = sim.sample_at(Duration::from_secs(30));
    gpus[1] = vramdeck::telemetry::GpuSample {
        index: 1,
        name: "NVIDIA GeForce RTX 4060 Laptop GPU".into(),
        asleep: true,
        ..Default::default()
    };
    t.record(Snapshot {
        time: SystemTime::now(),
        gpus,
    });
    let h = window(t.shared());
    h.get_by_label("GPU 1 · NVIDIA GeForce RTX 4060 Laptop GPU");
    h.get_by_label("Asleep (runtime power management)");
    assert!(h.query_by_label("0 % used").is_none());
}
