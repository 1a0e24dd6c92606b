//! Remote hosts in the window, as a user adds one: the Hosts window (a bad address refused
//! with a sentence, a real `vramdeck serve` added with its token), the host's cards beside
//! this machine's, Free VRAM on the host, and removing it again.

mod common;

use common::{open_window, plain_app, until};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use std::time::Duration;
use vramdeck::remote::fleet::{Fleet, FleetSource};
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::Sampler;
use vramdeck::telemetry::sim::SimulatedGpus;

#[test]
fn a_user_adds_a_serve_host_frees_its_vram_and_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _serve = common::demo_serve(dir.path(), port);
    let token = std::fs::read_to_string(dir.path().join("token")).unwrap();

    let fleet = Fleet::default();
    let source = FleetSource::new(
        Some(Box::new(SimulatedGpus::demo("test"))),
        "",
        fleet.clone(),
    );
    let sampler = Sampler::spawn(
        Box::new(source),
        Duration::from_millis(200),
        HistoryConfig::default(),
        || {},
    );
    let app = plain_app(sampler.telemetry()).with_fleet(fleet.clone());
    // Tall enough for six cards and the Free VRAM sections without scrolling.
    let mut h = open_window(app, 1600.0, 2400.0);
    until(&mut h, "the local cards", |h| {
        h.query_by_label_contains("GPU 1 · Simulated").is_some()
    });

    h.get_by_label("Hosts...").click();
    h.run_steps(2);
    h.get_by_label_contains("No remote host yet.");
    h.get_by_role_and_label(Role::TextInput, "Address").focus();
    h.get_by_role_and_label(Role::TextInput, "Address")
        .type_text("gpu-box:9401");
    h.run_steps(2);
    h.get_by_label("Add host").click();
    h.run_steps(2);
    h.get_by_label_contains("use http://host:9401 (vramdeck serve) or ssh user@host");

    let address = format!("http://127.0.0.1:{port}");
    h.get_by_role_and_label(Role::TextInput, "Address").focus();
    h.get_by_role_and_label(Role::TextInput, "Address")
        .set_text_value_accesskit(&address);
    h.get_by_role_and_label(Role::PasswordInput, "Token")
        .focus();
    h.get_by_role_and_label(Role::PasswordInput, "Token")
        .type_text(token.trim());
    h.run_steps(2);
    h.get_by_label("Add host").click();
    h.run_steps(2);
    assert_eq!(h.state().settings().remote_hosts.len(), 1);
    assert_eq!(h.state().settings().remote_hosts[0].address, address);
    // Live in the hosts window's list, and on its line above the cards (always there, so a
    // missed reading never moves the cards).
    until(&mut h, "the host live in the list", |h| {
        h.query_all_by_label_contains("live · 3 GPUs").count() == 2
    });
    // A box running demo GPUs says so wherever it is named.
    let status = format!("{address}: live · 3 GPUs · gpu-box runs demo GPUs");
    let line = h.get_by_label_contains(&status).rect();
    until(&mut h, "the host's cards", |h| {
        h.query_by_label_contains("gpu-box · GPU 0 · Simulated 48 GB GPU")
            .is_some()
            && h.query_by_label_contains("gpu-box · GPU 1 · Simulated")
                .is_some()
    });

    // Close the window, select the remote GPU: its host's Free VRAM appears, and answers.
    h.get_by_label("Close window").click();
    h.run_steps(2);
    assert_eq!(h.get_by_label_contains(&status).rect(), line);
    h.get_by_label_contains("gpu-box · GPU 0 · Simulated")
        .click();
    h.run_steps(2);
    h.get_by_label("Free VRAM on gpu-box (empty cache)").click();
    h.run_steps(2);
    until(&mut h, "the host's answer", |h| {
        h.query_by_label_contains("Nothing to free: no vramdeck agent is running")
            .is_some()
    });

    h.get_by_label("Hosts...").click();
    h.run_steps(2);
    h.get_by_label("Remove").click();
    h.run_steps(2);
    assert!(h.state().settings().remote_hosts.is_empty());
    until(&mut h, "the host's cards to go", |h| {
        h.query_all_by_label_contains("gpu-box · GPU").count() == 0
    });
    drop(h);
    drop(sampler);
}
