//! Alerts as a user sees them: a banner while VRAM stays high, a toast, and rules they can change.

mod common;

use common::{open_window, plain_app};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::{Duration, SystemTime};
use vramdeck::alerts::SharedAlerts;
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::{SharedTelemetry, Telemetry, lock};
use vramdeck::telemetry::sim::SimulatedGpus;
use vramdeck::telemetry::{GpuSource, Snapshot};
use vramdeck::ui::VramDeckApp;
use vramdeck::units::Bytes;

/// One reading, as the sampler thread hands it on: into telemetry and through the alerts.
fn record(
    t: &SharedTelemetry,
    alerts: &SharedAlerts,
    sim: &mut SimulatedGpus,
    second: u64,
    used_mib: u64,
) {
    let mut gpus = sim.sample_at(Duration::from_secs(second));
    // The demo's third card spills and raises alerts of its own; these tests are about GPU 0.
    gpus.truncate(2);
    gpus[0].memory.used = Bytes::from_mib(used_mib);
    let snapshot = Snapshot {
        time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + second),
        gpus,
    };
    alerts.lock().observe(&snapshot);
    lock(t).record(snapshot);
}

fn window(t: SharedTelemetry, alerts: &SharedAlerts) -> Harness<'static, VramDeckApp> {
    let app = plain_app(t).with_alerts(alerts.clone());
    open_window(app, 1400.0, 1300.0)
}

#[test]
fn vram_staying_high_shows_in_the_status_bar_without_moving_the_window() {
    let mut sim = SimulatedGpus::demo("test");
    let t = Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default()).shared();
    let alerts = SharedAlerts::default();
    record(&t, &alerts, &mut sim, 0, 2_000);
    let mut h = window(t.clone(), &alerts);
    h.run_steps(2);
    assert!(h.query_by_label_contains("ALERT").is_none());
    let alerts_header = h.get_by_label("Alerts").rect();
    let history = h.get_by_label("History of GPU 0").rect();

    for s in 1..=12 {
        record(&t, &alerts, &mut sim, s, 47_000); // 95.6 % of 48 GiB
        h.run_steps(1);
    }
    h.run_steps(2);
    let message = "GPU 0: VRAM above 90 % for 10 s (47,000 MiB of 49,152 MiB)";
    h.get_by_label(&format!("ALERT: {message}"));
    // And once as the toast.
    h.get_by_label(message);
    // Nothing above the status bar moved: a click aimed at a button still lands on it.
    assert_eq!(h.get_by_label("Alerts").rect(), alerts_header);
    assert_eq!(h.get_by_label("History of GPU 0").rect(), history);

    // In GiB when the user reads GiB.
    h.get_by_label("GiB").click();
    h.run_steps(2);
    h.get_by_label("ALERT: GPU 0: VRAM above 90 % for 10 s (45.9 GiB of 48.0 GiB)");

    for s in 13..=15 {
        record(&t, &alerts, &mut sim, s, 3_000);
    }
    h.run_steps(2);
    assert!(h.query_by_label_contains("ALERT").is_none());
    assert_eq!(h.get_by_label("Alerts").rect(), alerts_header);
}

#[test]
fn turning_alerts_off_in_the_window_reaches_the_sampler_side() {
    let mut sim = SimulatedGpus::demo("test");
    let t = Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default()).shared();
    let alerts = SharedAlerts::default();
    record(&t, &alerts, &mut sim, 0, 2_000);
    let mut h = window(t.clone(), &alerts);
    h.run_steps(2);
    h.get_by_label("Alerts").click();
    h.run_steps(2);
    h.get_by_label("Alerts on").click();
    h.run_steps(2);
    assert!(!h.state().settings().alerts.enabled);
    assert!(!alerts.lock().rules.enabled);
    for s in 1..=20 {
        record(&t, &alerts, &mut sim, s, 48_000);
    }
    h.run_steps(2);
    assert!(h.query_by_label_contains("ALERT").is_none());
}

#[test]
fn the_mini_view_shows_a_firing_alert_and_its_current_numbers() {
    let mut sim = SimulatedGpus::demo("test");
    let t = Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default()).shared();
    let alerts = SharedAlerts::default();
    record(&t, &alerts, &mut sim, 0, 2_000);
    let settings = vramdeck::settings::Settings {
        mini_view: true,
        ..Default::default()
    };
    let app = VramDeckApp::new(t.clone(), None, settings, None, vec![]).with_alerts(alerts.clone());
    let size = vramdeck::ui::mini_view::size(2);
    let mut h = open_window(app, size.x, size.y);
    h.run_steps(2);
    assert!(h.query_by_label_contains("Alert:").is_none());
    for s in 1..=12 {
        record(&t, &alerts, &mut sim, s, 47_000);
    }
    h.run_steps(2);
    h.get_by_label("Alert: GPU 0: VRAM above 90 % for 10 s (47,000 MiB of 49,152 MiB)");
    record(&t, &alerts, &mut sim, 13, 48_000);
    h.run_steps(2);
    h.get_by_label("Alert: GPU 0: VRAM above 90 % for 10 s (48,000 MiB of 49,152 MiB)");
}

#[test]
fn desktop_notifications_say_when_this_desktop_cannot_show_them() {
    let mut sim = SimulatedGpus::demo("test");
    let t = Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default()).shared();
    let alerts = SharedAlerts::default();
    record(&t, &alerts, &mut sim, 0, 2_000);
    let mut h = window(t, &alerts);
    h.run_steps(2);
    h.get_by_label("Alerts").click();
    h.run_steps(2);
    let missing = std::env::var_os("PATH")
        .is_none_or(|path| !std::env::split_paths(&path).any(|d| d.join("notify-send").is_file()));
    let warning = h.query_by_label_contains("Desktop notifications need notify-send");
    if cfg!(unix) && missing {
        assert!(warning.is_some(), "a missing notify-send is not silent");
    } else {
        assert!(warning.is_none());
    }
    // Demo readings: a notification would say they are simulated.
    assert!(alerts.lock().demo);
}
