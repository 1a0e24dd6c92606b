//! The Free VRAM panel as a user sees it: a real Python agent, the real release worker thread,
//! and a click on "Free VRAM".

mod common;

use common::{ReservedByAgents, agent_dir, open_window, plain_app, until, webui};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::{Duration, SystemTime};
use vramdeck::release::worker::ReleaseWorker;
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::Telemetry;
use vramdeck::telemetry::sim::SimulatedGpus;
use vramdeck::telemetry::{GpuSource, Snapshot};
use vramdeck::ui::VramDeckApp;

/// Demo telemetry with one reading, 30 s into the demo.
fn demo_telemetry() -> Telemetry {
    let mut sim = SimulatedGpus::demo("test");
    let mut telemetry =
        Telemetry::new(sim.kind(), Duration::from_secs(1), HistoryConfig::default());
    telemetry.record(Snapshot {
        time: SystemTime::now(),
        gpus: sim.sample_at(Duration::from_secs(30)),
    });
    telemetry
}

/// The window with demo telemetry and a real release worker for `agent_dir` and `comfy_address`.
fn window(
    agent_dir: &std::path::Path,
    comfy_address: String,
    probe_dir: &std::path::Path,
) -> Harness<'static, VramDeckApp> {
    window_sized(agent_dir, comfy_address, probe_dir, 1300.0)
}

/// [`window`], `height` points tall (two apps listed push the panel's last rows down).
fn window_sized(
    agent_dir: &std::path::Path,
    comfy_address: String,
    probe_dir: &std::path::Path,
    height: f32,
) -> Harness<'static, VramDeckApp> {
    let telemetry = demo_telemetry();
    let worker = ReleaseWorker::spawn(
        vramdeck::release::discovery::AgentDir::at(agent_dir),
        comfy_address,
        Box::new(ReservedByAgents(probe_dir.to_path_buf())),
        || {},
    );
    let app = plain_app(telemetry.shared()).with_release_worker(worker);
    open_window(app, 1200.0, height)
}

#[test]
fn clicking_free_vram_releases_the_agents_cache_and_shows_the_result() {
    let dir = agent_dir();
    let (_webui, pid) = webui(dir.path(), &["Wan2.1 T2V 14B"]);

    // A closed port stands in for "ComfyUI is not running".
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut h = window(dir.path(), closed.to_string(), dir.path());

    until(&mut h, "the agent to be listed", |h| {
        h.query_by_label_contains(&format!("(pid {pid})")).is_some()
    });
    h.get_by_label_contains("torch holds 16,384 MiB");

    h.get_by_label("Free VRAM").click();
    h.run_steps(2);
    until(&mut h, "the result toast", |h| {
        h.query_by_label_contains("Released 10.0 GiB").is_some()
    });
    // The toast says both what the agent reported and what was measured.
    h.get_by_label_contains("reported by agents: 10.0 GiB");
    h.get_by_label_contains("NVML used 16,384 to 6,144 MiB");

    // A marker for the plot, and the list refreshed with what is left (the model stays loaded).
    assert_eq!(h.state().release_view().markers.len(), 1);
    assert_eq!(h.state().release_view().markers[0].label, "freed 10.0 GiB");
    until(&mut h, "the refreshed agent list", |h| {
        h.query_by_label_contains("torch holds 6,144 MiB").is_some()
    });
}

#[test]
fn the_panel_explains_how_to_add_an_agent_when_none_runs() {
    let dir = agent_dir();
    let mut h = window(
        &dir.path().join("agents"),
        "10.1.2.3:8188".into(),
        dir.path(),
    );
    until(&mut h, "the ComfyUI status", |h| {
        h.query_by_label_contains("not a loopback address")
            .is_some()
    });
    h.get_by_label_contains("No agent running");
}

/// What ComfyUI's torch holds, as /system_stats says: the "measurement" for these tests.
struct ComfyReserved(vramdeck::release::comfyui::ComfyUi);

impl vramdeck::release::free::UsedMemoryProbe for ComfyReserved {
    fn used_since(&mut self, _: SystemTime) -> Option<vramdeck::units::Bytes> {
        let stats = self.0.system_stats(Duration::from_secs(2)).ok()?;
        Some(vramdeck::units::Bytes(stats.devices[0].torch_vram_total))
    }
}

fn post(port: u16, path: &str, body: &str) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s.read_to_string(&mut String::new()).unwrap();
}

#[test]
fn comfyui_with_the_vramdeck_node_is_one_row() {
    let dir = agent_dir();
    let log = dir.path().join("events.jsonl");
    let (_comfy, port) = common::python_fixture("fake_comfyui.py", &[log.to_str().unwrap()], None);
    let (_webui, pid) = common::webui_with(dir.path(), &["ComfyUI"], &[("FAKE_COMFY_PORT", &port)]);
    let mut h = window(dir.path(), format!("127.0.0.1:{port}"), dir.path());
    // With its node, the panel says what each level does in the node's own words.
    until(&mut h, "ComfyUI to be seen with its node", |h| {
        h.query_by_label_contains("empty cache here: PyTorch returns the cache")
            .is_some()
    });
    h.get_by_label_contains(&format!("running at 127.0.0.1:{port}"));
    // The agent inside ComfyUI is not listed a second time.
    assert!(h.query_by_label_contains(&format!("(pid {pid})")).is_none());
}

#[test]
fn an_unload_while_comfyui_runs_a_prompt_shows_waiting_leaves_free_usable_then_the_result() {
    let dir = agent_dir();
    let log = dir.path().join("events.jsonl");
    let (_comfy, port) = common::python_fixture("fake_comfyui.py", &[log.to_str().unwrap()], None);
    let port_n: u16 = port.parse().unwrap();
    post(port_n, "/prompt", r#"{"prompt": {"seconds": 0}}"#);
    std::thread::sleep(Duration::from_millis(300));
    post(port_n, "/prompt", r#"{"prompt": {"seconds": 2.5}}"#);
    std::thread::sleep(Duration::from_millis(300));

    let comfy = vramdeck::release::comfyui::ComfyUi::parse(&format!("127.0.0.1:{port}")).unwrap();
    let telemetry = demo_telemetry();
    let worker = ReleaseWorker::spawn(
        vramdeck::release::discovery::AgentDir::at(&dir.path().join("none")),
        format!("127.0.0.1:{port}"),
        Box::new(ComfyReserved(comfy)),
        || {},
    );
    let settings = vramdeck::settings::Settings {
        free_level: vramdeck::release::FreeLevel::Unload,
        ..Default::default()
    };
    let app = VramDeckApp::new(telemetry.shared(), None, settings, None, vec![])
        .with_release_worker(worker);
    let mut h = open_window(app, 1200.0, 1300.0);
    until(&mut h, "ComfyUI", |h| {
        h.query_by_label_contains("no vramdeck node").is_some()
    });
    h.get_by_label("Free VRAM").click();
    h.run_steps(2);
    until(&mut h, "the waiting state", |h| {
        h.query_by_label_contains(
            "Waiting: ComfyUI will unload its models after the current prompt",
        )
        .is_some()
    });
    // The wait is shown, but Free VRAM stays usable meanwhile: one app that never ends its
    // job must not lock the panel for the follow's 15 minutes (the third review).
    assert!(!h.state().release_view().in_flight);
    assert!(h.state().release_view().waiting.is_some());
    use egui_kittest::kittest::NodeT;
    assert!(!h.get_by_label("Free VRAM").accesskit_node().is_disabled());
    // The 6 GiB model: ComfyUI's worker already emptied the 2 GiB cache after the first
    // prompt (its gc runs at once the first time), as the stand-in does.
    until(&mut h, "the measured result", |h| {
        h.query_by_label_contains("Released 6.0 GiB").is_some()
    });
    assert!(!h.state().release_view().in_flight);
    assert_eq!(h.state().release_view().markers.len(), 1);
}

#[test]
fn the_mini_view_says_demo_and_shows_the_result_inside_its_own_width() {
    let dir = agent_dir();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let telemetry = demo_telemetry();
    let worker = ReleaseWorker::spawn(
        vramdeck::release::discovery::AgentDir::at(&dir.path().join("agents")),
        closed.to_string(),
        Box::new(ReservedByAgents(dir.path().to_path_buf())),
        || {},
    );
    let settings = vramdeck::settings::Settings {
        mini_view: true,
        ..Default::default()
    };
    let app = VramDeckApp::new(telemetry.shared(), None, settings, None, vec![])
        .with_release_worker(worker);
    let size = vramdeck::ui::mini_view::size(3);
    let mut h = open_window(app, size.x, size.y);
    h.run_steps(2);
    h.get_by_label("DEMO · simulated GPUs");
    let buttons = h.get_by_label("Free VRAM").rect();
    h.get_by_label("Free VRAM").click();
    until(&mut h, "the result", |h| {
        h.query_by_label_contains("Nothing to free").is_some()
    });
    // Nothing happened: said in the neutral tone, not as a success.
    let toast = h.state().release_view().toast.as_ref().unwrap();
    assert_eq!(toast.tone, vramdeck::ui::release_panel::Tone::Neutral);
    // On a line of its own inside the window; nothing moved to make room for it.
    let line = h.get_by_label_contains("Nothing to free").rect();
    assert!(
        line.max.x <= size.x && line.max.y <= size.y,
        "{line:?} in {size:?}"
    );
    assert_eq!(h.get_by_label("Free VRAM").rect(), buttons);
}

#[test]
fn facefusion_is_listed_with_its_onnx_sessions_and_what_each_level_does_there() {
    let dir = agent_dir();
    let (_facefusion, pid) = common::facefusion(dir.path());
    let mut h = window(dir.path(), "none".into(), dir.path());
    until(&mut h, "FaceFusion to be listed", |h| {
        h.query_by_label_contains(&format!("FaceFusion (FP16) · python3 (pid {pid})"))
            .is_some()
    });
    // Not "torch not importable": what it holds is onnxruntime's.
    h.get_by_label_contains("onnxruntime 1.");
    h.get_by_label_contains(": 1 session");
    assert!(h.query_by_label_contains("torch not importable").is_none());
    h.get_by_label_contains("empty cache here: no onnxruntime GPU session to rebuild");

    h.get_by_label("unload models").click();
    h.run_steps(2);
    h.get_by_label_contains("unload here: FaceFusion empties its inference pools");
}

#[test]
fn ollama_is_listed_with_its_models_and_its_free_button_unloads_them() {
    let dir = agent_dir();
    let log = dir.path().join("ollama.log");
    let (_ollama, port) = common::python_fixture(
        "fake_ollama.py",
        &[log.to_str().unwrap(), "--model", "llama3.1:8b:6:5"],
        None,
    );
    let telemetry = demo_telemetry();
    let worker = ReleaseWorker::spawn(
        vramdeck::release::discovery::AgentDir::at(dir.path()),
        "none".into(),
        Box::new(ReservedByAgents(dir.path().to_path_buf())),
        || {},
    );
    worker.send(vramdeck::release::worker::WorkerCommand::SetAppAddresses {
        ollama: format!("127.0.0.1:{port}"),
        a1111: "none".into(),
        engines: "none".into(),
    });
    let app = plain_app(telemetry.shared()).with_release_worker(worker);
    let mut h = open_window(app, 1200.0, 1300.0);
    until(&mut h, "Ollama to be listed", |h| {
        h.query_by_label(&format!("Ollama at 127.0.0.1:{port}"))
            .is_some()
    });
    h.get_by_label("llama3.1:8b 5,120 MiB VRAM + 1,024 MiB RAM");
    // At the cache level there is nothing to empty in Ollama: its Free waits for "Unload".
    use egui_kittest::kittest::NodeT;
    assert!(h.get_by_label("Free").accesskit_node().is_disabled());
    h.get_by_label("unload models").click();
    h.run_steps(2);
    h.get_by_label("Free").click();
    until(&mut h, "the result", |h| {
        h.query_by_label_contains(&format!("Ollama at 127.0.0.1:{port}: released 5.0 GiB"))
            .is_some()
    });
    until(&mut h, "the model gone", |h| {
        h.query_by_label_contains("llama3.1:8b").is_none()
            || h.query_by_label("nothing loaded").is_some()
    });
}

#[test]
fn making_room_is_off_until_chosen_and_the_choice_is_kept() {
    let dir = agent_dir();
    let (_webui, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let mut h = window_sized(dir.path(), "none".into(), dir.path(), 1600.0);
    until(&mut h, "the panel", |h| {
        h.query_by_label("When an app asks for room before a job")
            .is_some()
    });
    assert_eq!(
        h.state().settings().make_room,
        vramdeck::release::arbiter::RoomPolicy::Off
    );
    h.get_by_label("Caches, then idle models").click();
    h.run_steps(2);
    assert_eq!(
        h.state().settings().make_room,
        vramdeck::release::arbiter::RoomPolicy::Models
    );
    // The apps running now can each be kept out of it.
    until(&mut h, "the agent listed", |h| {
        h.query_by_label("Never free for others:").is_some()
    });
    h.get_by_label("Wan2.1 T2V 14B").click();
    h.run_steps(2);
    assert_eq!(h.state().settings().room_keep, ["Wan2.1 T2V 14B"]);
    h.get_by_label("Wan2.1 T2V 14B").click();
    h.run_steps(2);
    assert!(h.state().settings().room_keep.is_empty());
}

#[test]
fn ask_me_puts_the_request_in_the_window_and_the_answer_frees_the_others() {
    let dir = agent_dir();
    let (_webui, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    let (_asking, _) = common::python_fixture_with(
        "fake_webui.py",
        &["ltx-video", "--needs", "12"],
        Some(dir.path()),
        &[("NEED_RESULT", result.to_str().unwrap())],
    );
    let mut h = window_sized(dir.path(), "none".into(), dir.path(), 1600.0);
    // Both apps listed first: their rows arriving would move the buttons under the click.
    until(&mut h, "both apps", |h| {
        h.query_all_by_label_contains("(pid ").count() >= 2
    });
    h.run_steps(2);
    h.get_by_label("Ask me").click();
    h.run_steps(2);
    assert_eq!(
        h.state().settings().make_room,
        vramdeck::release::arbiter::RoomPolicy::Ask
    );
    until(&mut h, "the question", |h| {
        h.query_by_label_contains("test job asks for 12.0 GiB of free VRAM")
            .is_some()
    });
    h.get_by_label("Not now");
    h.get_by_label("Free caches and idle models");
    h.get_by_label("Free their caches").click();
    h.run_steps(2);
    // The question leaves at once; the result comes as a toast and a chart mark.
    assert!(h.query_by_label("Free their caches").is_none());
    until(&mut h, "the result toast", |h| {
        h.query_by_label_contains("made room for test job")
            .is_some()
    });
    assert!(
        h.state()
            .release_view()
            .markers
            .iter()
            .any(|m| m.label.contains("10.0 GiB")),
        "{:?}",
        h.state().release_view().markers
    );
}

#[test]
fn each_app_that_can_ask_gets_its_own_choice_kept_in_settings() {
    let dir = agent_dir();
    let (_webui, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let mut h = window_sized(dir.path(), "none".into(), dir.path(), 1600.0);
    until(&mut h, "the app's row", |h| {
        h.query_by_label("When Wan2.1 T2V 14B asks:").is_some()
    });
    h.run_steps(2);
    // It follows the choice above until given its own.
    use egui_kittest::kittest::NodeT;
    let combo =
        h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "When Wan2.1 T2V 14B asks:");
    assert_eq!(
        combo.accesskit_node().value().as_deref(),
        Some("as above (Off)")
    );
    combo.click();
    h.run_steps(2);
    // The list offers every choice; the one picked is kept and shown.
    let options: Vec<_> = h.query_all_by_label("Caches, then idle models").collect();
    assert_eq!(options.len(), 2, "the policy row and the list");
    options.last().unwrap().click();
    h.run_steps(2);
    assert_eq!(
        h.state()
            .settings()
            .room_policy_by_app
            .get("Wan2.1 T2V 14B")
            .copied(),
        Some(vramdeck::release::arbiter::RoomPolicy::Models)
    );
    // With an app that may make room, the "never free for others" row appears.
    until(&mut h, "the keep row", |h| {
        h.query_by_label("Never free for others:").is_some()
    });
}

#[test]
fn vllm_put_to_sleep_from_the_panel_shows_asleep_and_its_wake_button_wakes_it() {
    let dir = agent_dir();
    let log = dir.path().join("vllm.log");
    let (_vllm, port) = common::python_fixture(
        "engines/vllm.py",
        &[log.to_str().unwrap(), "--model", "Qwen/Qwen3-8B", "--dev"],
        None,
    );
    let telemetry = demo_telemetry();
    let worker = ReleaseWorker::spawn(
        vramdeck::release::discovery::AgentDir::at(dir.path()),
        "none".into(),
        Box::new(ReservedByAgents(dir.path().to_path_buf())),
        || {},
    );
    worker.send(vramdeck::release::worker::WorkerCommand::SetAppAddresses {
        ollama: "none".into(),
        a1111: "none".into(),
        engines: format!("vllm=127.0.0.1:{port}"),
    });
    let app = plain_app(telemetry.shared()).with_release_worker(worker);
    let mut h = open_window(app, 1200.0, 1300.0);
    until(&mut h, "vLLM to be listed", |h| {
        h.query_by_label(&format!("vLLM at 127.0.0.1:{port}"))
            .is_some()
    });
    h.get_by_label("Qwen/Qwen3-8B");
    h.get_by_label("unload models").click();
    h.run_steps(2);
    h.get_by_label("Free").click();
    until(&mut h, "vLLM asleep", |h| {
        h.query_by_label("asleep").is_some()
    });
    let acted = |what: &str| {
        common::events(&log)
            .iter()
            .filter(|e| e["action"] == what)
            .count()
    };
    assert_eq!(acted("sleep"), 1);
    h.get_by_label("Wake").click();
    until(&mut h, "the wake said", |h| {
        h.query_by_label_contains("woke vLLM").is_some()
    });
    assert_eq!(acted("wake"), 1);
    until(&mut h, "vLLM awake", |h| {
        h.query_by_label("asleep").is_none()
    });
}
