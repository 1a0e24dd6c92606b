//! Free VRAM against ComfyUI's HTTP API and the vramdeck node, through
//! `tests/fixtures/fake_comfyui.py`, which mirrors ComfyUI 0.3.64's PromptQueue (one flag
//! store, one notify per flag), prompt worker and routes, and runs the real node against them
//! (the real ComfyUI is exercised by `tests/comfyui/real_comfyui_proof.py`, outside CI). The levels must mean what they say: `cache`
//! never unloads a model, `unload` happens between prompts, and a release ComfyUI defers is
//! followed to its end before it is measured.

mod common;

use common::events;

use common::{Process, python_fixture, webui_with};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use vramdeck::release::comfyui::ComfyUi;
use vramdeck::release::discovery::AgentDir;
use vramdeck::release::free::{
    self, FollowStep, Follower, FreeRequest, FreeTarget, Outcome, UsedMemoryProbe,
};
use vramdeck::release::{FreeLevel, ReleaseError};
use vramdeck::units::{Bytes, GIB};

fn comfyui(events: &Path) -> (Process, ComfyUi, u16) {
    let (process, port) = python_fixture("fake_comfyui.py", &[events.to_str().unwrap()], None);
    let port: u16 = port.parse().unwrap();
    (
        process,
        ComfyUi::parse(&format!("127.0.0.1:{port}")).unwrap(),
        port,
    )
}

fn named<'a>(events: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// "Measures" what ComfyUI's torch holds, as /system_stats says.
struct TorchReserved(ComfyUi);

impl UsedMemoryProbe for TorchReserved {
    fn used_since(&mut self, _: SystemTime) -> Option<Bytes> {
        let stats = self.0.system_stats(Duration::from_secs(2)).ok()?;
        Some(Bytes(stats.devices[0].torch_vram_total))
    }
}

fn post_prompt(port: u16, seconds: f64) {
    use std::io::{Read, Write};
    let body = format!(r#"{{"prompt": {{"seconds": {seconds}}}}}"#);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /prompt HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn request(comfy: &ComfyUi, dir: &Path, level: FreeLevel) -> FreeRequest {
    FreeRequest {
        target: FreeTarget::ComfyUi,
        level,
        agent_dir: AgentDir::at(&dir.join("no-agents")),
        comfyui: Some(comfy.clone()),
        apps: Vec::new(),
        keep: Vec::new(),
        only_pids: None,
    }
}

#[test]
fn unload_asks_only_for_unload_models_and_keeps_the_node_cache() {
    let dir = common::agent_dir();
    let log = dir.path().join("events.jsonl");
    let (_server, comfy, port) = comfyui(&log);
    post_prompt(port, 0.0);
    wait_until("the first prompt", || {
        named(&events(&log), "prompt_end").len() == 1
    });
    let mut probe = TorchReserved(comfy.clone());
    // The model; the worker's gc after the first prompt emptied torch's cache.
    assert_eq!(probe.used_since(SystemTime::now()), Some(Bytes(6 * GIB)));

    let report = free::perform(&request(&comfy, dir.path(), FreeLevel::Unload), &mut probe);
    assert!(report.results[0].outcome.is_ok(), "{report:?}");
    assert!(report.pending.is_empty());
    let seen = events(&log);
    assert_eq!(
        named(&seen, "free_request")[0]["body"],
        serde_json::json!({"unload_models": true})
    );
    assert_eq!(named(&seen, "unload_models").len(), 1);
    assert!(
        named(&seen, "node_cache_reset").is_empty(),
        "the node cache stays"
    );
    assert_eq!(report.used_after, Some(Bytes(0)));
    assert_eq!(report.outcome(), Outcome::Released);
}

#[test]
fn cache_level_never_reaches_comfyuis_free_route() {
    let dir = common::agent_dir();
    let log = dir.path().join("events.jsonl");
    let (_server, comfy, port) = comfyui(&log);
    post_prompt(port, 0.0);
    wait_until("the first prompt", || {
        named(&events(&log), "prompt_end").len() == 1
    });
    let mut probe = TorchReserved(comfy.clone());
    let report = free::perform(&request(&comfy, dir.path(), FreeLevel::Cache), &mut probe);
    let seen = events(&log);
    assert!(named(&seen, "free_request").is_empty(), "{seen:?}");
    assert!(named(&seen, "unload_models").is_empty());
    assert!(
        report
            .summary()
            .contains("cannot empty the cache without unloading"),
        "{}",
        report.summary()
    );
    assert_eq!(report.outcome(), Outcome::Nothing);
}

#[test]
fn what_the_old_request_did_unloads_everything() {
    // The fake's premise, as ComfyUI 0.3.64 behaves: "free_memory" alone unloads every model
    // and drops the node cache. (vramdeck used to send this for "empty cache".)
    let dir = common::agent_dir();
    let log = dir.path().join("events.jsonl");
    let (_server, _comfy, port) = comfyui(&log);
    post_prompt(port, 0.0);
    wait_until("the first prompt", || {
        named(&events(&log), "prompt_end").len() == 1
    });
    use std::io::{Read, Write};
    let body = r#"{"unload_models": false, "free_memory": true}"#;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /free HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s.read_to_string(&mut String::new()).unwrap();
    wait_until("the unload", || {
        named(&events(&log), "node_cache_reset").len() == 1
    });
    assert_eq!(named(&events(&log), "unload_models").len(), 1);
}

#[test]
fn an_unload_during_a_running_prompt_is_pending_then_followed_and_measured() {
    let dir = common::agent_dir();
    let log = dir.path().join("events.jsonl");
    let (_server, comfy, port) = comfyui(&log);
    post_prompt(port, 0.0);
    wait_until("the first prompt", || {
        named(&events(&log), "prompt_end").len() == 1
    });
    post_prompt(port, 2.0);
    wait_until("the second prompt to run", || {
        named(&events(&log), "prompt_start").len() == 2
    });

    let mut probe = TorchReserved(comfy.clone());
    let report = free::perform(&request(&comfy, dir.path(), FreeLevel::Unload), &mut probe);
    assert_eq!(report.outcome(), Outcome::Pending);
    assert!(
        report
            .summary()
            .starts_with("Waiting: ComfyUI will unload its models after the current prompt"),
        "{}",
        report.summary()
    );
    assert!(
        named(&events(&log), "unload_models").is_empty(),
        "not inside the prompt"
    );

    let mut follower = Follower::new(report, Duration::from_secs(30));
    let done = loop {
        match follower.step(&mut probe) {
            FollowStep::Done(done) => break done,
            FollowStep::Waiting => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let seen = events(&log);
    let ended = named(&seen, "prompt_end")[1]["t"].as_f64().unwrap();
    let unloaded = named(&seen, "unload_models")[0]["t"].as_f64().unwrap();
    assert!(unloaded >= ended, "the unload came after the prompt ended");
    // Measured only once it happened: before = the last reading while the prompt held its
    // memory: its 6 GiB model, or 8 GiB when the reading fell after the prompt's last step
    // left 2 GiB cached and before ComfyUI marked it done.
    let before = done.used_before.expect("a reading before");
    assert!(
        before == Bytes(6 * GIB) || before == Bytes(8 * GIB),
        "{before:?}"
    );
    assert_eq!(done.used_after, Some(Bytes(0)));
    let released = format!("Released {}.0 GiB", before.0 / GIB);
    assert!(done.summary().starts_with(&released), "{}", done.summary());
}

#[test]
fn a_prompt_that_runs_on_is_given_up_on_with_a_clear_message() {
    let dir = common::agent_dir();
    let log = dir.path().join("events.jsonl");
    let (_server, comfy, port) = comfyui(&log);
    post_prompt(port, 30.0);
    wait_until("the prompt to run", || {
        named(&events(&log), "prompt_start").len() == 1
    });
    let mut probe = TorchReserved(comfy.clone());
    let report = free::perform(&request(&comfy, dir.path(), FreeLevel::Unload), &mut probe);
    let mut follower = Follower::new(report, Duration::from_millis(600));
    let done = loop {
        match follower.step(&mut probe) {
            FollowStep::Done(done) => break done,
            FollowStep::Waiting => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let summary = done.summary();
    assert!(summary.contains("stopped waiting"), "{summary}");
    assert!(
        summary.contains("it still will, when the running job ends"),
        "{summary}"
    );
    assert_eq!(done.outcome(), Outcome::Failed);
}

#[test]
fn comfyui_with_the_vramdeck_node_is_one_entry_freed_through_its_agent() {
    let dir = common::agent_dir();
    let log = dir.path().join("events.jsonl");
    let (_server, comfy, port) = comfyui(&log);
    let agents = dir.path().join("agents");
    let (_webui, pid) = webui_with(
        &agents,
        &["ComfyUI"],
        &[("FAKE_COMFY_PORT", &port.to_string())],
    );
    let mut probe = common::ReservedByAgents(agents.clone());
    let report = free::perform(
        &FreeRequest {
            target: FreeTarget::All,
            level: FreeLevel::Cache,
            agent_dir: AgentDir::at(&agents),
            comfyui: Some(comfy.clone()),
            apps: Vec::new(),
            keep: Vec::new(),
            only_pids: None,
        },
        &mut probe,
    );
    assert_eq!(report.results.len(), 1, "{report:?}");
    assert!(report.results[0].target.contains(&format!("pid {pid}")));
    assert!(
        named(&events(&log), "free_request").is_empty(),
        "not freed twice"
    );
}

#[test]
fn localhost_finds_comfyui_on_whichever_loopback_it_listens() {
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(listener) = std::net::TcpListener::bind(bind) else {
            continue; // no IPv6 on this machine
        };
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            // The first connection only finds the listener (and its owner); the request comes
            // on the next one.
            for s in listener.incoming() {
                let mut s = s.unwrap();
                let mut buf = [0u8; 1024];
                if matches!(s.read(&mut buf), Ok(0) | Err(_)) {
                    continue;
                }
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{\"devices\":[]}")
                    .unwrap();
                return;
            }
        });
        let comfy = ComfyUi::parse(&format!("localhost:{port}")).unwrap();
        assert!(comfy.system_stats(Duration::from_secs(2)).is_ok(), "{bind}");
        server.join().unwrap();
    }
}

#[test]
fn a_server_dripping_bytes_cannot_stall_the_exchange() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        for s in listener.incoming() {
            let mut s = s.unwrap();
            std::thread::spawn(move || {
                for b in b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                    .iter()
                    .cycle()
                {
                    if s.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            });
        }
    });
    let comfy = ComfyUi::parse(&format!("127.0.0.1:{port}")).unwrap();
    let started = Instant::now();
    let err = comfy.system_stats(Duration::from_secs(1)).unwrap_err();
    assert!(matches!(err, ReleaseError::Timeout { .. }), "{err}");
    // One deadline for the whole exchange: it ends near 1 s, not after the whole drip.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// The stand-in ComfyUI with the real vramdeck node loaded into it, its agent in `agents`.
fn comfyui_with_node(
    log: &Path,
    agents: &Path,
    port: u16,
    unload_seconds: f64,
) -> (Process, ComfyUi) {
    let (process, port) = common::python_fixture_with(
        "fake_comfyui.py",
        &[
            log.to_str().unwrap(),
            "--node",
            "--port",
            &port.to_string(),
            "--unload-seconds",
            &unload_seconds.to_string(),
        ],
        Some(agents),
        &[],
    );
    let port: u16 = port.parse().unwrap();
    (
        process,
        ComfyUi::parse(&format!("127.0.0.1:{port}")).unwrap(),
    )
}

fn fake_state(comfy: &ComfyUi) -> serde_json::Value {
    let port = comfy.found_at().rsplit(':').next().unwrap().to_string();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "GET /fake/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    serde_json::from_str(reply.split_once("\r\n\r\n").unwrap().1).unwrap()
}

#[test]
fn vramdeck_free_at_the_default_address_frees_comfyui_once_through_its_node() {
    // The real-ComfyUI finding: with `localhost` (ports 8188 and 8000 tried) the node's agent
    // was not recognised as ComfyUI's before ComfyUI had answered once, so `vramdeck free`
    // also sent POST /free: ComfyUI listed twice, a second flag, "left alone" at cache.
    if std::net::TcpListener::bind("127.0.0.1:8188").is_err() {
        eprintln!("skipped: port 8188 is taken on this machine (CI has it free)");
        return;
    }
    let dir = common::agent_dir();
    let log = dir.path().join("events.jsonl");
    let agents = dir.path().join("agents");
    let (_comfy, comfy) = comfyui_with_node(&log, &agents, 8188, 0.2);
    post_prompt(8188, 0.0);
    wait_until("a model loaded", || fake_state(&comfy)["model"] != 0);
    let run = |level: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vramdeck"))
            .args(["free", "--demo", "--level", level, "--wait", "30"])
            .env("VRAMDECK_AGENT_DIR", &agents)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        text
    };
    let cache = run("cache");
    assert!(!cache.contains("left alone"), "{cache}");
    assert_eq!(cache.matches("ComfyUI").count(), 1, "{cache}");
    let started = Instant::now();
    let unload = run("unload");
    assert!(started.elapsed() < Duration::from_secs(20), "{unload}");
    assert_eq!(unload.matches("ComfyUI").count(), 1, "{unload}");
    let seen = events(&log);
    let posts: Vec<_> = seen
        .iter()
        .filter(|e| e["event"] == "request" && e["method"] == "POST" && e["path"] == "/free")
        .collect();
    assert!(posts.is_empty(), "POST /free was sent: {posts:?}");
    assert_eq!(named(&seen, "set_flag").len(), 1, "{seen:?}");
    assert_eq!(named(&seen, "unload_models").len(), 1);
    assert_eq!(fake_state(&comfy)["flags"], serde_json::json!({}));
}

#[test]
fn a_second_unload_during_comfyuis_unload_joins_it_and_leaves_no_flag_behind() {
    // ComfyUI wakes its worker once per flag: a flag set while the worker unloads wakes nobody
    // and stayed set for up to 1,000 s; the node reported "pending" all along and the flag
    // later unloaded the models of the user's next prompt.
    let dir = common::agent_dir();
    let log = dir.path().join("events.jsonl");
    let agents = dir.path().join("agents");
    let (_comfy, comfy) = comfyui_with_node(&log, &agents, 0, 2.0);
    let port: u16 = comfy
        .found_at()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    post_prompt(port, 0.0);
    wait_until("a model loaded", || fake_state(&comfy)["model"] != 0);
    let free = |agents: std::path::PathBuf| {
        std::thread::spawn(move || {
            let mut probe = common::ReservedByAgents(agents.clone());
            let request = FreeRequest {
                target: FreeTarget::All,
                level: FreeLevel::Unload,
                agent_dir: AgentDir::at(&agents),
                comfyui: None,
                apps: Vec::new(),
                keep: Vec::new(),
                only_pids: None,
            };
            let started = Instant::now();
            let report = free::perform(&request, &mut probe);
            (report, started.elapsed())
        })
    };
    let first = free(agents.clone());
    wait_until("the worker unloading", || {
        !named(&events(&log), "set_flag").is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    let second = free(agents.clone());
    for (report, took) in [first.join().unwrap(), second.join().unwrap()] {
        assert!(report.pending.is_empty(), "{}", report.summary());
        assert!(took < Duration::from_secs(15), "{took:?}");
    }
    assert_eq!(named(&events(&log), "set_flag").len(), 1);
    // Another client's own POST /free during an unload leaves ComfyUI's flag set, and it
    // would unload the next prompt's models; the node clears it.
    assert_eq!(fake_state(&comfy)["flags"], serde_json::json!({}));
    post_prompt(port, 0.0);
    wait_until("a model loaded again", || fake_state(&comfy)["model"] != 0);
    let unloads_before = named(&events(&log), "unload_models").len();
    let third = free(agents.clone());
    wait_until("the worker unloading again", || {
        named(&events(&log), "set_flag").len() == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    use std::io::{Read, Write};
    let body = r#"{"unload_models": true}"#;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /free HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s.read_to_string(&mut String::new()).unwrap();
    assert!(third.join().unwrap().0.pending.is_empty());
    // That POST's flag woke nobody (the worker was unloading); the node saw its own unload
    // done and dropped the flag, whose work was done too.
    assert_eq!(named(&events(&log), "set_flag").len(), 3);
    assert_eq!(fake_state(&comfy)["flags"], serde_json::json!({}));
    // Nothing loaded now: done at once (after the agent's spacing between frees, ≤ 5 s).
    let (report, took) = free(agents.clone()).join().unwrap();
    assert!(
        report.pending.is_empty() && took < Duration::from_secs(10),
        "{took:?}"
    );
    post_prompt(port, 0.0);
    wait_until("the next prompt", || {
        named(&events(&log), "prompt_end").len() == 3
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        named(&events(&log), "unload_models").len(),
        unloads_before + 1,
        "the leftover flag never unloaded the next prompt's models"
    );
}
