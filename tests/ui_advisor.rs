//! The "What fits now" panel as a user sees it.

use egui::accesskit::Role;
mod common;

use common::{open_window, plain_app};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::{Duration, SystemTime};
use vramdeck::settings::Settings;
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::{SharedTelemetry, Telemetry, lock};
use vramdeck::telemetry::sim::SimulatedGpus;
use vramdeck::telemetry::{GpuSource, Snapshot, SourceKind};
use vramdeck::ui::VramDeckApp;
use vramdeck::units::Bytes;
use vramdeck::workloads::calibration::key;

/// Telemetry with GPU 0 (48 GB) at `used_mib`, fed by hand from the simulation but standing in
/// for a real GPU (a run recorded in demo mode is not kept; see the demo test).
fn telemetry_at(used_mib: u64) -> SharedTelemetry {
    let real = SourceKind::Nvml {
        driver_version: "test".into(),
    };
    telemetry_of(real, used_mib)
}

fn telemetry_of(kind: SourceKind, used_mib: u64) -> SharedTelemetry {
    let mut sim = SimulatedGpus::demo("test");
    let t = Telemetry::new(kind, Duration::from_secs(1), HistoryConfig::default()).shared();
    set_used(&t, &mut sim, used_mib);
    t
}

fn set_used(t: &SharedTelemetry, sim: &mut SimulatedGpus, used_mib: u64) {
    let mut gpus = sim.sample_at(Duration::ZERO);
    let m = &mut gpus[0].memory;
    m.used = Bytes::from_mib(used_mib);
    m.free = m.total.saturating_sub(m.used);
    lock(t).record(Snapshot {
        time: SystemTime::now(),
        gpus,
    });
}

fn window(t: SharedTelemetry) -> Harness<'static, VramDeckApp> {
    let app = plain_app(t);
    open_window(app, 1700.0, 1400.0)
}

#[test]
fn presets_panel_updates_as_free_vram_changes() {
    let t = telemetry_at(2_000);
    let mut sim = SimulatedGpus::demo("test");
    let mut h = window(t.clone());
    h.run();
    h.get_by_label("What fits on GPU 0 now");
    // 47,152 MiB free − 12,288 margin: DDColor at its largest measured size, said so.
    h.get_by_label("largest safe size 1280 (building 1280, portrait 680)");
    // The caveat (1280 is the largest measured size) is on the line's hover, not a new row.
    h.get_by_label("instead: enable quant_linear=True (Wan2.1 T2V 1.3B 480p fits)");

    // The I2V job reaches its peak: DDColor comes down to an interpolated size.
    set_used(&t, &mut sim, 39_500);
    h.run();
    h.get_by_label("I'm running DDColor (ComfyUI) at size 832 now");
    // Another job on top: not even DDColor 480 fits with its margin.
    set_used(&t, &mut sim, 45_000);
    h.run();
    h.get_by_label("even the smallest measured size (480) has a 3,174 MiB peak");
    assert!(
        h.query_by_label("largest safe size 1280 (building 1280, portrait 680)")
            .is_none()
    );
}

#[test]
fn marking_a_run_records_its_peak_for_this_machine() {
    let t = telemetry_at(2_000);
    let mut sim = SimulatedGpus::demo("test");
    let mut h = window(t.clone());
    h.run();
    h.get_by_label("I'm running Wan2.1 T2V 1.3B 480p now")
        .click();
    h.run();
    for used in [9_000, 14_700, 6_000] {
        set_used(&t, &mut sim, used);
        h.run();
    }
    h.get_by_label_contains("Recording Wan2.1 T2V 1.3B 480p: peak so far 12,700 MiB");
    h.get_by_label("Done: keep this peak").click();
    h.run();
    assert_eq!(
        h.state()
            .calibration()
            .peak_mib(&key("wan21-t2v-1.3b-480p", None)),
        Some(12_700)
    );
    // The preset now plans with the measured value, and says so (the catalogue's is on hover).
    h.get_by_label("Wan2.1 T2V 1.3B 480p (measured here)");
    h.get_by_label_contains("(peak 12,700 MiB + 28 % + 512 MiB)");
}

#[test]
fn a_run_marked_in_demo_mode_is_not_kept_as_a_measurement() {
    let t = telemetry_of(SimulatedGpus::demo("test").kind(), 2_000);
    let mut sim = SimulatedGpus::demo("test");
    let mut h = window(t.clone());
    h.run();
    h.get_by_label("I'm running Wan2.1 T2V 1.3B 480p now")
        .click();
    h.run();
    set_used(&t, &mut sim, 14_700);
    h.run();
    h.get_by_label("Done: keep this peak").click();
    h.run();
    assert_eq!(
        h.state()
            .calibration()
            .peak_mib(&key("wan21-t2v-1.3b-480p", None)),
        None
    );
    h.get_by_label_contains("nothing was recorded (a simulated peak is not a measurement");
    assert!(
        h.query_by_label("Wan2.1 T2V 1.3B 480p (measured here)")
            .is_none()
    );
}

#[test]
fn a_user_preset_added_in_the_window_is_advised_like_the_others() {
    let mut h = window(telemetry_at(2_000));
    h.run();
    h.get_by_label("Your own presets").click();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Name").focus();
    h.get_by_role_and_label(Role::TextInput, "Name")
        .type_text("SDXL 1024 batch 4");
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Peak MiB").focus();
    h.get_by_role_and_label(Role::TextInput, "Peak MiB")
        .type_text("40000");
    h.run();
    h.get_by_label("Add preset").click();
    h.run();
    let added = h
        .state()
        .catalogue()
        .find("SDXL 1024 batch 4")
        .expect("added");
    assert_eq!(added.reference_peak_mib(), 40_000);
    h.get_by_label("SDXL 1024 batch 4");
    // 40,000 MiB is more than the 34,864 MiB planned with, but inside the free memory.
    h.get_by_label("instead: close other programs using the GPU, or free cached VRAM");

    // Edit: the form fills in; a new peak under the same name replaces the preset.
    h.get_by_label("Edit").click();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Peak MiB").focus();
    h.key_press(egui::Key::End);
    h.get_by_role_and_label(Role::TextInput, "Peak MiB")
        .type_text("0");
    h.run();
    // Editing shows Save changes and Cancel, not Add.
    assert!(h.query_by_label("Add preset").is_none());
    h.get_by_label("Save changes").click();
    h.run();
    let edited = h.state().catalogue().find("SDXL 1024 batch 4").unwrap();
    assert_eq!(edited.reference_peak_mib(), 400_000);
    assert_eq!(h.state().catalogue().user_ids.len(), 1);

    // Renamed in an edit: the old name goes, no copy is left behind.
    h.get_by_label("Edit").click();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Name").focus();
    h.key_press(egui::Key::End);
    h.get_by_role_and_label(Role::TextInput, "Name")
        .type_text(" v2");
    h.run();
    h.get_by_label("Save changes").click();
    h.run();
    assert!(h.state().catalogue().find("SDXL 1024 batch 4").is_none());
    assert!(h.state().catalogue().find("SDXL 1024 batch 4 v2").is_some());
    assert_eq!(h.state().catalogue().user_ids.len(), 1);
    // Cancel leaves it as it is.
    h.get_by_label("Edit").click();
    h.run();
    h.get_by_label("Cancel").click();
    h.run();
    h.get_by_label("Add preset");

    h.get_by_label("Remove").click();
    h.run();
    assert!(h.state().catalogue().find("SDXL 1024 batch 4 v2").is_none());
    // Removed by mistake: Undo puts it back.
    h.get_by_label("Removed SDXL 1024 batch 4 v2.");
    h.get_by_label("Undo").click();
    h.run();
    let back = h.state().catalogue().find("SDXL 1024 batch 4 v2").unwrap();
    assert_eq!(back.reference_peak_mib(), 400_000);
}

#[test]
fn user_presets_and_calibration_survive_a_restart() {
    use vramdeck::settings::SettingsWriter;
    use vramdeck::workloads::calibration::Calibration;
    use vramdeck::workloads::catalogue::Catalogue;
    let dir = tempfile::tempdir().unwrap();
    let presets = dir.path().join("config/presets.toml");
    let cal_path = dir.path().join("data/calibration.toml");
    let t = telemetry_at(2_000);
    let mut sim = SimulatedGpus::demo("test");
    let app = VramDeckApp::new(
        t.clone(),
        None,
        Settings::default(),
        Some(SettingsWriter::spawn(
            dir.path().join("config/settings.toml"),
        )),
        vec![],
    )
    .with_workloads(
        Catalogue::load(Some(&presets)),
        Calibration::default(),
        Some(cal_path.clone()),
        Some(presets.clone()),
    );
    let mut h = open_window(app, 1700.0, 1400.0);
    h.run();
    h.get_by_label("Your own presets").click();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Name").focus();
    h.get_by_role_and_label(Role::TextInput, "Name")
        .type_text("Flux dev fp8");
    h.get_by_role_and_label(Role::TextInput, "Peak MiB").focus();
    h.get_by_role_and_label(Role::TextInput, "Peak MiB")
        .type_text("16,500");
    h.run();
    h.get_by_label("Add preset").click();
    h.run();
    h.get_by_label("I'm running DDColor (ComfyUI) at size 1280 now")
        .click();
    h.run();
    set_used(&t, &mut sim, 10_000);
    h.run();
    h.get_by_label("Done: keep this peak").click();
    h.run();
    drop(h); // the writer finishes pending writes

    let reloaded = Catalogue::load(Some(&presets));
    assert!(reloaded.warnings.is_empty(), "{:?}", reloaded.warnings);
    assert_eq!(
        reloaded.find("Flux dev fp8").unwrap().reference_peak_mib(),
        16_500
    );
    let (cal, warning) = Calibration::load(&cal_path);
    assert!(warning.is_none());
    assert_eq!(cal.peak_mib(&key("ddcolor", Some(1280))), Some(8_000));
}

#[test]
fn the_advisor_speaks_the_unit_the_user_chose() {
    let mut h = window(telemetry_at(2_000));
    h.run();
    h.get_by_label_contains("needs 16,128 MiB (peak 12,200 MiB + 28 % + 512 MiB)");
    h.get_by_label("GiB").click();
    h.run();
    h.get_by_label_contains("needs 15.8 GiB (peak 11.9 GiB + 28 % + 512 MiB)");
    assert!(h.query_by_label_contains("needs 16,128 MiB").is_none());
}

#[test]
fn a_run_marked_mid_way_counts_from_its_start_and_a_tiny_peak_asks_before_it_is_kept() {
    // The job was already running when the user clicked: 2,000 MiB idle, then 14,000.
    let t = telemetry_at(2_000);
    let mut sim = SimulatedGpus::demo("test");
    set_used(&t, &mut sim, 14_000);
    let mut h = window(t.clone());
    h.run();
    h.get_by_label("I'm running Wan2.1 T2V 1.3B 480p now")
        .click();
    h.run();
    h.get_by_label_contains("Recording Wan2.1 T2V 1.3B 480p: peak so far 12,000 MiB");
    h.get_by_label_contains("2,000 MiB in use then");
    h.get_by_label("Done: keep this peak").click();
    h.run();
    assert_eq!(
        h.state()
            .calibration()
            .peak_mib(&key("wan21-t2v-1.3b-480p", None)),
        Some(12_000)
    );

    // Clicked long after the job began (no idle reading in the look-back): the rise is tiny,
    // and it is not kept without the user saying so.
    let t = telemetry_at(14_000);
    let mut h = window(t.clone());
    h.run();
    h.get_by_label("I'm running Wan2.1 T2V 1.3B 480p now")
        .click();
    h.run();
    h.get_by_label("Done: keep this peak").click();
    h.run();
    h.get_by_label_contains("is less than half of the");
    assert_eq!(
        h.state()
            .calibration()
            .peak_mib(&key("wan21-t2v-1.3b-480p", None)),
        None
    );
    h.get_by_label("Discard").click();
    h.run();
    assert!(h.query_by_label_contains("Recording Wan2.1").is_none());
    assert_eq!(
        h.state()
            .calibration()
            .peak_mib(&key("wan21-t2v-1.3b-480p", None)),
        None
    );
    // Asked again, "Save anyway" keeps it.
    h.get_by_label("I'm running Wan2.1 T2V 1.3B 480p now")
        .click();
    h.run();
    h.get_by_label("Done: keep this peak").click();
    h.run();
    h.get_by_label("Save anyway").click();
    h.run();
    assert_eq!(
        h.state()
            .calibration()
            .peak_mib(&key("wan21-t2v-1.3b-480p", None)),
        Some(0)
    );
}

#[test]
fn what_fits_holds_steady_while_a_job_wobbles_and_can_plan_for_an_idle_card() {
    let t = telemetry_at(30_000);
    let mut sim = SimulatedGpus::demo("test");
    let mut h = window(t.clone());
    h.run();
    h.get_by_label_contains("19,152 MiB free.");
    // The job dips for a reading: the plan keeps the high-water mark of the last seconds.
    set_used(&t, &mut sim, 20_000);
    h.run();
    h.get_by_label_contains("19,152 MiB free.");
    assert!(h.query_by_label_contains("29,152 MiB free.").is_none());
    // The card with nothing running: its total less what the driver keeps.
    h.get_by_label("Idle card").click();
    h.run();
    h.get_by_label("What fits on GPU 0 when idle");
    let reserved = lock(&t).latest.as_ref().unwrap().gpus[0].memory.reserved;
    let idle = 49_152 - reserved.whole_mib();
    h.get_by_label_contains(&format!(
        "{} MiB free.",
        vramdeck::units::group_thousands(idle)
    ));
    assert_eq!(
        h.state().settings().fit_basis,
        vramdeck::settings::FitBasis::Idle
    );
}
