//! Faults as a user meets them: the GPU falls off the bus mid-run; the window says so and keeps
//! the last good readings.

mod common;

use common::{open_window, until};
use egui_kittest::kittest::Queryable;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use vramdeck::settings::Settings;
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::Sampler;
use vramdeck::telemetry::sim::SimulatedGpus;
use vramdeck::telemetry::{GpuSample, GpuSource, SourceError, SourceKind};
use vramdeck::ui::VramDeckApp;

/// The demo GPUs until `lost` is set, then GPU 0 has fallen off the bus.
struct Flaky {
    sim: SimulatedGpus,
    lost: Arc<AtomicBool>,
}

impl GpuSource for Flaky {
    fn kind(&self) -> SourceKind {
        self.sim.kind()
    }
    fn sample(&mut self) -> Result<Vec<GpuSample>, SourceError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(SourceError::GpuLost {
                index: 0,
                detail: "the GPU has fallen off the bus or is otherwise inaccessible".into(),
            });
        }
        self.sim.sample()
    }
}

#[test]
fn a_gpu_lost_mid_run_is_shown_and_the_last_readings_stay() {
    let lost = Arc::new(AtomicBool::new(false));
    let source = Flaky {
        sim: SimulatedGpus::demo("test"),
        lost: Arc::clone(&lost),
    };
    let sampler = Sampler::spawn(
        Box::new(source),
        Duration::from_millis(100),
        HistoryConfig::default(),
        || {},
    );
    let app = VramDeckApp::new(
        sampler.telemetry(),
        Some(sampler),
        Settings::default(),
        None,
        vec![],
    );
    let mut h = open_window(app, 1480.0, 1000.0);
    until(&mut h, "the first reading", |h| {
        h.query_by_label("GPU 0 · Simulated 48 GB GPU").is_some()
    });

    lost.store(true, Ordering::SeqCst);
    until(&mut h, "the error banner", |h| {
        h.query_by_label_contains("Reading the GPU failed")
            .is_some()
    });
    h.get_by_label_contains("GPU 0 lost: the GPU has fallen off the bus");
    h.get_by_label("GPU 0 · Simulated 48 GB GPU");

    // It comes back (a driver reset): the banner goes away.
    lost.store(false, Ordering::SeqCst);
    until(&mut h, "recovery", |h| {
        h.query_by_label_contains("Reading the GPU failed")
            .is_none()
    });
}
