//! Making room before a job, with real agent processes: one app asks (`agent.need`), the
//! release worker frees the others by the user's policy and answers it; the asking app and a
//! running job are never touched.

mod common;

use common::{ReservedByAgents, agent_dir, python_fixture_with, webui};
use std::path::Path;
use std::time::{Duration, Instant};
use vramdeck::release::arbiter::RoomPolicy;
use vramdeck::release::discovery::AgentDir;
use vramdeck::release::worker::{ReleaseWorker, WorkerCommand, WorkerEvent};

const GIB: u64 = 1 << 30;

/// The app about to run a job needing `gib` GiB; its answer lands in `result`.
fn asking_app(dir: &Path, gib: &str, result: &Path) -> (common::Process, u32) {
    let (p, pid) = python_fixture_with(
        "fake_webui.py",
        &["ltx-video", "--needs", gib],
        Some(dir),
        &[("NEED_RESULT", result.to_str().unwrap())],
    );
    (p, pid.parse().unwrap())
}

fn answer(result: &Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(result)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return v;
        }
        assert!(Instant::now() < deadline, "the app never got an answer");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn worker(dir: &Path, policy: RoomPolicy) -> ReleaseWorker {
    worker_keeping(dir, policy, &[])
}

/// A worker for the agents in `dir`, told nothing yet: it answers no request until it has a
/// policy.
fn bare_worker(dir: &Path) -> ReleaseWorker {
    ReleaseWorker::spawn(
        AgentDir::at(dir),
        "none".into(),
        Box::new(ReservedByAgents(dir.to_path_buf())),
        || {},
    )
}

fn worker_keeping(dir: &Path, policy: RoomPolicy, keep: &[&str]) -> ReleaseWorker {
    let w = bare_worker(dir);
    w.send(WorkerCommand::SetRoomKeep(
        keep.iter().map(|k| k.to_string()).collect(),
    ));
    w.send(WorkerCommand::SetRoomPolicy(policy));
    w.send(WorkerCommand::Refresh);
    w
}

fn room_made(w: &ReleaseWorker) -> Box<vramdeck::release::arbiter::RoomMade> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for e in w.poll() {
            if let WorkerEvent::RoomMade(made) = e {
                return made;
            }
        }
        assert!(Instant::now() < deadline, "no room was made");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_others_caches_make_room_and_the_asking_app_hears_who_gave_way() {
    let dir = agent_dir();
    // An idle WebUI: a 6 GiB model loaded and 10 GiB of cache.
    let (_idle, idle_pid) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    let (_asking, asking_pid) = asking_app(dir.path(), "12", &result);
    let w = worker(dir.path(), RoomPolicy::Caches);
    let made = room_made(&w);
    assert_eq!(made.pid, asking_pid);
    assert!(made.granted, "{}", made.message);
    let said = answer(&result);
    assert_eq!(said["granted"], true);
    let message = said["message"].as_str().unwrap();
    assert!(
        message.starts_with("made room for test job (12.0 GiB needed): freed 10.0 GiB"),
        "{message}"
    );
    assert!(
        message.contains(&format!("(pid {idle_pid}, Wan2.1 T2V 14B) 10.0 GiB")),
        "{message}"
    );
    // The asking app's own cache was left alone.
    assert_eq!(said["reserved_after"], 3 * GIB);
}

#[test]
fn idle_models_go_only_when_the_policy_allows_and_off_answers_at_once() {
    let dir = agent_dir();
    let (_idle, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    // 18 GiB needed, 4 GiB free: the 10 GiB cache is not enough.
    let result = dir.path().join("need.json");
    let (_asking, _) = asking_app(dir.path(), "18", &result);
    let w = worker(dir.path(), RoomPolicy::Caches);
    let made = room_made(&w);
    assert!(!made.granted);
    let said = answer(&result);
    assert_eq!(said["granted"], false);
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains("4.0 GiB still missing"),
        "{said}"
    );

    // Caches, then idle models: the WebUI's 6 GiB model goes too.
    let dir = agent_dir();
    let (_idle, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    let (_asking, _) = asking_app(dir.path(), "18", &result);
    let w = worker(dir.path(), RoomPolicy::Models);
    let made = room_made(&w);
    assert!(made.granted, "{}", made.message);
    assert_eq!(made.reports.len(), 2, "caches first, then models");
    assert_eq!(answer(&result)["granted"], true);

    // Off: told at once, nothing freed.
    let dir = agent_dir();
    let (_idle, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    let (_asking, _) = asking_app(dir.path(), "12", &result);
    let started = Instant::now();
    let w = worker(dir.path(), RoomPolicy::Off);
    let made = room_made(&w);
    assert!(made.reports.is_empty());
    let said = answer(&result);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        said["message"].as_str().unwrap().contains("switched off"),
        "{said}"
    );
}

#[test]
fn an_app_the_user_keeps_is_never_freed_for_another() {
    let dir = agent_dir();
    // The idle WebUI (labelled "Wan2.1 T2V 14B") is on the user's "never free for others" list.
    let (_idle, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    let (_asking, _) = asking_app(dir.path(), "12", &result);
    let w = worker_keeping(dir.path(), RoomPolicy::Models, &["Wan2.1 T2V 14B"]);
    let made = room_made(&w);
    assert!(!made.granted);
    let said = answer(&result);
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains("nobody gave anything back"),
        "{said}"
    );
    // Its cache and model are where they were: asked for its memory, it still has 16 GiB.
    let still =
        vramdeck::release::discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
    let kept = still
        .agents
        .iter()
        .find(|a| a.info.label.as_deref() == Some("Wan2.1 T2V 14B"))
        .unwrap();
    assert_eq!(kept.info.reserved, Some(16 * GIB));
}

fn room_asked(w: &ReleaseWorker) -> Box<vramdeck::release::arbiter::RoomAsk> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for e in w.poll() {
            match e {
                WorkerEvent::RoomAsked(ask) => return ask,
                WorkerEvent::RoomMade(made) => panic!("made room without asking: {made:?}"),
                _ => {}
            }
        }
        assert!(Instant::now() < deadline, "the user was never asked");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ask_me_frees_nothing_until_the_user_answers_and_not_now_declines() {
    let dir = agent_dir();
    let (_idle, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    let (_asking, asking_pid) = asking_app(dir.path(), "12", &result);
    let w = worker(dir.path(), RoomPolicy::Ask);
    let ask = room_asked(&w);
    assert_eq!(ask.pid, asking_pid);
    assert_eq!(ask.who, "test job");
    assert_eq!(ask.need.bytes, 12 * GIB);
    // While the question is open nothing is freed and the app is still waiting.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!result.exists(), "the app was answered before the user");
    assert!(
        w.poll()
            .iter()
            .all(|e| !matches!(e, WorkerEvent::RoomMade(_) | WorkerEvent::RoomAsked(_))),
        "asked twice, or answered alone"
    );
    w.send(WorkerCommand::AnswerRoom {
        pid: ask.pid,
        need: ask.need.id,
        policy: RoomPolicy::Caches,
    });
    let made = room_made(&w);
    assert!(made.granted, "{}", made.message);
    assert_eq!(answer(&result)["granted"], true);

    // "Not now": the app hears so, and nothing is freed.
    let dir = agent_dir();
    let (_idle, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    let (_asking, _) = asking_app(dir.path(), "12", &result);
    let w = worker(dir.path(), RoomPolicy::Ask);
    let ask = room_asked(&w);
    w.send(WorkerCommand::AnswerRoom {
        pid: ask.pid,
        need: ask.need.id,
        policy: RoomPolicy::Off,
    });
    let made = room_made(&w);
    assert!(!made.granted);
    assert!(made.reports.is_empty());
    let said = answer(&result);
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains("you chose not to free the others"),
        "{said}"
    );
    // An answer for a request that is no longer there does nothing.
    w.send(WorkerCommand::AnswerRoom {
        pid: ask.pid,
        need: ask.need.id + 100,
        policy: RoomPolicy::Models,
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        w.poll()
            .iter()
            .all(|e| !matches!(e, WorkerEvent::RoomMade(_))),
        "a stale answer freed something"
    );
}

/// POSTs a prompt in ComfyUI's API format to the stand-in ComfyUI.
fn post_json(port: u16, path: &str, body: &str) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.contains(" 200 "), "{reply}");
}

fn events_named(log: &Path, name: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("\"event\": \"{name}\"")))
        .count()
}

#[test]
fn a_comfyui_prompt_whose_weights_do_not_fit_waits_for_room_before_it_runs() {
    let dir = agent_dir();
    let (_idle, idle_pid) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    // A 12 GiB checkpoint (sparse: it takes no disk) where ComfyUI's loaders look.
    let models = tempfile::tempdir().unwrap();
    std::fs::create_dir(models.path().join("checkpoints")).unwrap();
    std::fs::File::create(models.path().join("checkpoints/big.safetensors"))
        .unwrap()
        .set_len(12 * GIB)
        .unwrap();
    let log = dir.path().join("comfy-events.jsonl");
    let (_comfy, port) = python_fixture_with(
        "fake_comfyui.py",
        &[log.to_str().unwrap(), "--node"],
        Some(dir.path()),
        &[("FAKE_COMFY_MODELS", models.path().to_str().unwrap())],
    );
    let port: u16 = port.parse().unwrap();
    let w = worker(dir.path(), RoomPolicy::Ask);
    post_json(
        port,
        "/prompt",
        r#"{"prompt": {"4": {"class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "big.safetensors"}}, "seconds": 0}}"#,
    );
    let ask = room_asked(&w);
    assert_eq!(
        ask.who,
        "ComfyUI prompt (1 model file, 12.0 GiB of weights)"
    );
    assert_eq!(ask.need.bytes, 12 * GIB);
    // The prompt was taken from the queue but does not run while the user decides.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        events_named(&log, "prompt_start"),
        0,
        "the prompt ran first"
    );
    w.send(WorkerCommand::AnswerRoom {
        pid: ask.pid,
        need: ask.need.id,
        policy: RoomPolicy::Models,
    });
    let made = room_made(&w);
    assert!(made.granted, "{}", made.message);
    assert!(
        made.message
            .contains(&format!("(pid {idle_pid}, Wan2.1 T2V 14B)")),
        "{}",
        made.message
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while events_named(&log, "prompt_start") == 0 {
        assert!(Instant::now() < deadline, "the prompt never ran");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A prompt naming no model file, or one ComfyUI has loaded, asks nothing.
    post_json(port, "/prompt", r#"{"prompt": {"seconds": 0}}"#);
    let deadline = Instant::now() + Duration::from_secs(15);
    while events_named(&log, "prompt_start") < 2 {
        assert!(Instant::now() < deadline, "the second prompt never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        w.poll()
            .iter()
            .all(|e| !matches!(e, WorkerEvent::RoomAsked(_))),
        "a prompt without model files asked for room"
    );
}

#[test]
fn an_app_asking_by_preset_gets_the_advisors_figure_and_an_unknown_preset_is_said() {
    use vramdeck::workloads::{calibration::Calibration, catalogue::Catalogue};
    let catalogue = Catalogue::load(None);
    let needs = vramdeck::release::arbiter::preset_needs(&catalogue, &Calibration::default(), 20.0);
    let dir = agent_dir();
    let (_idle, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    // Asks for a preset by its name (no bytes); 4 GiB free as its torch counts it.
    let (_asking, _) = python_fixture_with(
        "fake_webui.py",
        &["Wan2.1 T2V 1.3B 480p", "--needs", "preset"],
        Some(dir.path()),
        &[("NEED_RESULT", result.to_str().unwrap())],
    );
    // The presets arrive before the policy, as the window sends them at its first frame.
    let w = bare_worker(dir.path());
    w.send(WorkerCommand::SetPresetNeeds(needs.clone()));
    w.send(WorkerCommand::SetRoomPolicy(RoomPolicy::Ask));
    let ask = room_asked(&w);
    let preset = catalogue.find("Wan2.1 T2V 1.3B 480p").unwrap();
    let expected = needs
        .iter()
        .find(|n| n.names.contains(&preset.id))
        .unwrap()
        .bytes;
    // Peak + 20 % + the advisor's fixed allowance.
    let peak = preset.reference_peak_mib() << 20;
    assert!(expected > peak + peak / 5, "{expected} vs {peak}");
    assert_eq!(ask.need.bytes, expected);
    assert_eq!(ask.need.preset.as_deref(), Some("Wan2.1 T2V 1.3B 480p"));
    w.send(WorkerCommand::AnswerRoom {
        pid: ask.pid,
        need: ask.need.id,
        policy: RoomPolicy::Off,
    });
    room_made(&w);
    answer(&result);

    // An unknown preset is answered at once, in words, and nothing is freed.
    let result = dir.path().join("need2.json");
    let (_asking, _) = python_fixture_with(
        "fake_webui.py",
        &["No Such Preset", "--needs", "preset"],
        Some(dir.path()),
        &[("NEED_RESULT", result.to_str().unwrap())],
    );
    let made = room_made(&w);
    assert!(made.reports.is_empty());
    let said = answer(&result);
    assert_eq!(said["granted"], false);
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains("the preset “No Such Preset”, which vramdeck does not know"),
        "{said}"
    );
}

#[test]
fn an_app_of_its_own_policy_is_answered_by_it_and_told_so() {
    // Making room is off, but when "ltx-video" asks, the others' caches may go.
    let dir = agent_dir();
    let (_idle, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    let (_asking, asking_pid) = asking_app(dir.path(), "12", &result);
    let w = bare_worker(dir.path());
    w.send(WorkerCommand::SetRoomPolicyByApp(
        [("ltx-video".to_string(), RoomPolicy::Caches)].into(),
    ));
    w.send(WorkerCommand::SetRoomPolicy(RoomPolicy::Off));
    let made = room_made(&w);
    assert_eq!(made.pid, asking_pid);
    assert!(made.granted, "{}", made.message);
    assert_eq!(answer(&result)["granted"], true);

    // The other way round: caches for everyone, but not when "ltx-video" asks.
    let dir = agent_dir();
    let (_idle, _) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    let (_asking, _) = asking_app(dir.path(), "12", &result);
    let w = bare_worker(dir.path());
    w.send(WorkerCommand::SetRoomPolicyByApp(
        [("ltx-video".to_string(), RoomPolicy::Off)].into(),
    ));
    w.send(WorkerCommand::SetRoomPolicy(RoomPolicy::Caches));
    let made = room_made(&w);
    assert!(made.reports.is_empty());
    assert!(made.message.contains("switched off"), "{}", made.message);
    // The idle app kept everything.
    let still =
        vramdeck::release::discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
    let idle = still
        .agents
        .iter()
        .find(|a| a.info.label.as_deref() == Some("Wan2.1 T2V 14B"))
        .unwrap();
    assert_eq!(idle.info.reserved, Some(16 * GIB));
}

/// What the agent of `pid` reports reserved now.
fn reserved_of(dir: &Path, pid: u32) -> Option<u64> {
    let found = vramdeck::release::discovery::discover(&AgentDir::at(dir), Duration::from_secs(2));
    found
        .agents
        .iter()
        .find(|a| a.endpoint.pid == pid)
        .and_then(|a| a.info.reserved)
}

/// [`asking_app`] with extra environment variables.
fn asking_app_with(
    dir: &Path,
    gib: &str,
    result: &Path,
    env: &[(&str, &str)],
) -> (common::Process, u32) {
    let mut all = vec![("NEED_RESULT", result.to_str().unwrap())];
    all.extend_from_slice(env);
    let (p, pid) = python_fixture_with(
        "fake_webui.py",
        &["ltx-video", "--needs", gib],
        Some(dir),
        &all,
    );
    (p, pid.parse().unwrap())
}

#[test]
fn a_need_larger_than_the_whole_card_is_refused_in_words_and_nobody_is_freed() {
    let dir = agent_dir();
    let (_idle, idle_pid) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    // 60 GiB on its 24 GiB card (the third review: such needs unloaded the others 11 times
    // in 30 s), and a million GiB (2^62 bytes the agent itself refuses, see test_agent.py).
    for gib in ["60", "1000000"] {
        let result = dir.path().join(format!("need-{gib}.json"));
        let (_asking, _) = asking_app(dir.path(), gib, &result);
        let w = worker(dir.path(), RoomPolicy::Models);
        let made = room_made(&w);
        assert!(!made.granted);
        assert!(
            made.reports.is_empty(),
            "nothing is freed: {:?}",
            made.reports
        );
        assert!(
            made.message.contains("more than its whole GPU (24.0 GiB)"),
            "{}",
            made.message
        );
        assert_eq!(answer(&result)["granted"], false);
    }
    assert_eq!(reserved_of(dir.path(), idle_pid), Some(16 * GIB));
}

#[test]
fn an_app_that_cannot_read_its_free_memory_gets_only_caches_emptied_never_models() {
    let dir = agent_dir();
    let (_idle, idle_pid) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    // The third review: an app without torch asking for 1 MiB caused unloads.
    let (_asking, _) = asking_app_with(dir.path(), "18", &result, &[("NEED_NO_FREE", "1")]);
    let w = worker(dir.path(), RoomPolicy::Models);
    let made = room_made(&w);
    assert!(
        made.message
            .contains("its free memory could not be read, so only caches were emptied"),
        "{}",
        made.message
    );
    assert_eq!(made.reports.len(), 1, "the cache level only");
    // Its 10 GiB of cache went; its 6 GiB model stayed.
    assert_eq!(reserved_of(dir.path(), idle_pid), Some(6 * GIB));
}

#[test]
fn a_need_repeated_within_the_cooldown_is_answered_from_the_last_result() {
    let dir = agent_dir();
    let (_idle, idle_pid) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let result = dir.path().join("need.json");
    // 18 GiB with 4 free: the first need empties the caches (and unloads the model); a loop
    // asking again at once is told the same, and nobody is freed again.
    let (_asking, _) = asking_app_with(dir.path(), "18", &result, &[("NEED_TIMES", "3")]);
    let w = worker(dir.path(), RoomPolicy::Caches);
    let first = room_made(&w);
    assert!(!first.reports.is_empty());
    let answers = answer(&result);
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 3);
    for again in &answers[1..] {
        let message = again["message"].as_str().unwrap();
        assert!(
            message.contains("answered again from") && message.contains("once every 30 s"),
            "{message}"
        );
    }
    let mut repeats = 0;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        for e in w.poll() {
            if let WorkerEvent::RoomMade(made) = e {
                assert!(made.reports.is_empty(), "freed again: {}", made.message);
                repeats += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(repeats <= 2);
    assert_eq!(reserved_of(dir.path(), idle_pid), Some(6 * GIB));
}

/// The asker's GPU as NVML would list it on a machine with several: only `holders` are on it.
struct OnOneGpu {
    dir: std::path::PathBuf,
    holders: Vec<u32>,
}

impl vramdeck::release::free::UsedMemoryProbe for OnOneGpu {
    fn used_since(&mut self, t: std::time::SystemTime) -> Option<vramdeck::units::Bytes> {
        ReservedByAgents(self.dir.clone()).used_since(t)
    }

    fn gpu_of(&mut self, _pid: u32) -> vramdeck::release::free::GpuOf {
        vramdeck::release::free::GpuOf::Found {
            index: 1,
            total: 24 * GIB,
            holders: Some(self.holders.clone()),
        }
    }
}

#[test]
fn only_apps_on_the_askers_gpu_give_way() {
    let dir = agent_dir();
    let (_same, same_pid) = webui(dir.path(), &["Wan2.1 T2V 14B"]);
    let (_other, other_pid) = webui(dir.path(), &["FaceFusion"]);
    let result = dir.path().join("need.json");
    let (_asking, asking_pid) = asking_app(dir.path(), "12", &result);
    let w = ReleaseWorker::spawn(
        AgentDir::at(dir.path()),
        "none".into(),
        Box::new(OnOneGpu {
            dir: dir.path().to_path_buf(),
            holders: vec![asking_pid, same_pid],
        }),
        || {},
    );
    w.send(WorkerCommand::SetRoomPolicy(RoomPolicy::Caches));
    let made = room_made(&w);
    assert!(made.granted, "{}", made.message);
    assert!(
        made.message.contains("only apps on its GPU 1 were asked"),
        "{}",
        made.message
    );
    assert_eq!(reserved_of(dir.path(), same_pid), Some(6 * GIB));
    assert_eq!(
        reserved_of(dir.path(), other_pid),
        Some(16 * GIB),
        "the app on another GPU keeps its cache"
    );
}

/// ComfyUI on a 16 GiB card with `free` GiB free, the node in it, a model file of `weights`
/// GiB, and an idle app; the prompt is queued. Returns the event log and the idle app's pid.
fn comfy_on_a_card(
    dir: &Path,
    models: &Path,
    free: &str,
    weights: u64,
) -> (Vec<common::Process>, std::path::PathBuf, u32) {
    let (idle, idle_pid) = webui(dir, &["Wan2.1 T2V 14B"]);
    std::fs::create_dir(models.join("checkpoints")).unwrap();
    std::fs::File::create(models.join("checkpoints/flux.safetensors"))
        .unwrap()
        .set_len(weights * GIB)
        .unwrap();
    let log = dir.join("comfy-events.jsonl");
    let card = format!("{free},16");
    let (comfy, port) = python_fixture_with(
        "fake_comfyui.py",
        &[log.to_str().unwrap(), "--node"],
        Some(dir),
        &[
            ("FAKE_COMFY_MODELS", models.to_str().unwrap()),
            ("FAKE_COMFY_CARD", &card),
        ],
    );
    post_json(
        port.parse().unwrap(),
        "/prompt",
        r#"{"prompt": {"4": {"class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "flux.safetensors"}}, "seconds": 0}}"#,
    );
    (vec![idle, comfy], log, idle_pid)
}

#[test]
fn a_workflow_heavier_than_the_card_asks_only_for_comfyuis_working_room() {
    // The third review: a Flux or Wan workflow naming more weights than a 16-24 GB card asked
    // for all of them and unloaded every other app before every prompt. 40 GiB of weights on
    // a 16 GiB card are partly offloaded by ComfyUI whatever is freed.
    let dir = agent_dir();
    let models = tempfile::tempdir().unwrap();
    // 0.5 GiB free: short of ComfyUI's working room (1.2 GiB), so room is made for that only.
    let (_running, log, idle_pid) = comfy_on_a_card(dir.path(), models.path(), "0.5", 40);
    let w = worker(dir.path(), RoomPolicy::Models);
    let made = room_made(&w);
    assert!(made.granted, "{}", made.message);
    assert!(
        made.message
            .contains("of working room, the rest offloaded by ComfyUI"),
        "{}",
        made.message
    );
    assert!(made.need.bytes < 2 * GIB, "{}", made.need.bytes);
    // Its caches were enough: the idle app keeps its model.
    assert_eq!(reserved_of(dir.path(), idle_pid), Some(6 * GIB));
    let deadline = Instant::now() + Duration::from_secs(15);
    while events_named(&log, "prompt_start") == 0 {
        assert!(Instant::now() < deadline, "the prompt never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_workflow_heavier_than_the_card_with_its_working_room_free_asks_nothing() {
    let dir = agent_dir();
    let models = tempfile::tempdir().unwrap();
    let (_running, log, idle_pid) = comfy_on_a_card(dir.path(), models.path(), "2", 40);
    let w = worker(dir.path(), RoomPolicy::Models);
    let deadline = Instant::now() + Duration::from_secs(15);
    while events_named(&log, "prompt_start") == 0 {
        assert!(Instant::now() < deadline, "the prompt never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    for e in w.poll() {
        assert!(
            !matches!(e, WorkerEvent::RoomMade(_)),
            "room was made: {e:?}"
        );
    }
    assert_eq!(reserved_of(dir.path(), idle_pid), Some(16 * GIB));
}

/// An idle WebUI (6 GiB model, 10 GiB cache), a vLLM stand-in in sleep mode, and an app whose
/// job needs 18 GiB, runs `job_seconds` and then says done; a worker making room with idle
/// models, handing back or not. The processes stay alive as long as the first value.
struct SleepScene {
    _processes: Vec<common::Process>,
    asking_pid: String,
    vllm_log: std::path::PathBuf,
    result: std::path::PathBuf,
    worker: ReleaseWorker,
}

fn sleep_scene(dir: &Path, job_seconds: &str, hand_back: bool) -> SleepScene {
    let (idle, _) = webui(dir, &["Wan2.1 T2V 14B"]);
    let vllm_log = dir.join("vllm.log");
    let (vllm, port) = common::python_fixture(
        "engines/vllm.py",
        &[
            vllm_log.to_str().unwrap(),
            "--model",
            "Qwen/Qwen3-8B",
            "--dev",
        ],
        None,
    );
    let result = dir.join("need.json");
    let (asking, asking_pid) = python_fixture_with(
        "fake_webui.py",
        &["ltx-video", "--needs", "18"],
        Some(dir),
        &[
            ("NEED_RESULT", result.to_str().unwrap()),
            ("NEED_JOB_S", job_seconds),
        ],
    );
    let worker = bare_worker(dir);
    worker.send(WorkerCommand::SetHandBack(hand_back));
    worker.send(WorkerCommand::SetAppAddresses {
        ollama: "none".into(),
        a1111: "none".into(),
        engines: format!("vllm=127.0.0.1:{port}"),
    });
    worker.send(WorkerCommand::SetRoomPolicy(RoomPolicy::Models));
    worker.send(WorkerCommand::Refresh);
    SleepScene {
        _processes: vec![idle, vllm, asking],
        asking_pid,
        vllm_log,
        result,
        worker,
    }
}

#[test]
fn an_engine_put_to_sleep_for_a_job_wakes_when_the_job_says_it_is_done() {
    let dir = agent_dir();
    let SleepScene {
        _processes,
        asking_pid,
        vllm_log,
        result,
        worker: w,
    } = sleep_scene(dir.path(), "2", true);
    let made = room_made(&w);
    assert_eq!(made.pid.to_string(), asking_pid);
    let slept: Vec<_> = made.reports.iter().flat_map(|r| r.slept.iter()).collect();
    assert_eq!(slept.len(), 1, "{}", made.message);
    let acted = |what: &str| {
        common::events(&vllm_log)
            .into_iter()
            .filter(|e| e["action"] == what)
            .count()
    };
    assert_eq!(acted("sleep"), 1);
    // While the job runs, vLLM stays asleep; once it says done, the next look wakes it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let back = loop {
        w.send(WorkerCommand::Refresh);
        if let Some(back) = w.poll().into_iter().find_map(|e| match e {
            WorkerEvent::HandedBack(b) => Some(b),
            _ => None,
        }) {
            break back;
        }
        assert!(
            acted("wake") == 0,
            "woken before the job ended (no HandedBack event)"
        );
        assert!(Instant::now() < deadline, "never handed back");
        std::thread::sleep(Duration::from_millis(200));
    };
    let done_at: f64 = std::fs::read_to_string(result.with_extension("json.done"))
        .expect("the job said done before vramdeck woke vLLM")
        .parse()
        .unwrap();
    let woke_at = common::events(&vllm_log)
        .into_iter()
        .find(|e| e["action"] == "wake")
        .unwrap()["t"]
        .as_f64()
        .unwrap();
    assert!(
        woke_at >= done_at,
        "woke at {woke_at}, job done at {done_at}"
    );
    assert_eq!(back.woke.len(), 1);
    assert!(back.woke[0].1.is_ok(), "{:?}", back.woke);
    assert!(back.summary().contains("woke vLLM"), "{}", back.summary());
}

#[test]
fn with_handing_back_off_an_engine_stays_asleep_after_the_job() {
    let dir = agent_dir();
    let SleepScene {
        _processes,
        vllm_log,
        result,
        worker: w,
        ..
    } = sleep_scene(dir.path(), "0.5", false);
    room_made(&w);
    let done = result.with_extension("json.done");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done.exists() {
        assert!(Instant::now() < deadline, "the job never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..6 {
        w.send(WorkerCommand::Refresh);
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            !w.poll()
                .iter()
                .any(|e| matches!(e, WorkerEvent::HandedBack(_))),
            "handed back although switched off"
        );
    }
    let woke = common::events(&vllm_log)
        .iter()
        .filter(|e| e["action"] == "wake")
        .count();
    assert_eq!(woke, 0);
}
