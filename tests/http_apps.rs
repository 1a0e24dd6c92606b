//! Ollama and Stable Diffusion WebUI freed through their own HTTP APIs, against stand-ins that
//! mirror their source (tests/fixtures/fake_ollama.py, fake_a1111.py: versions and routes in
//! their headers): what each holds, unloading, never cutting a running generation, and the
//! hardening every local API client has (one deadline, a size cap).

mod common;

use common::events;

use common::{Process, python_fixture};
use std::path::Path;
use std::time::{Duration, Instant};
use vramdeck::release::FreeLevel;
use vramdeck::release::engines::{EngineHandle as HttpApp, EngineKind as AppKind};
use vramdeck::release::free::{self, Follow, FreeRequest, FreeTarget};
use vramdeck::units::Bytes;

const GIB: u64 = 1 << 30;

fn ollama(dir: &Path, args: &[&str]) -> (Process, HttpApp, std::path::PathBuf) {
    let log = dir.join("ollama.log");
    let mut all = vec![log.to_str().unwrap()];
    all.extend_from_slice(args);
    let (p, port) = python_fixture("fake_ollama.py", &all, None);
    let app = AppKind::Ollama.open(&format!("127.0.0.1:{port}")).unwrap();
    (p, app, log)
}

fn webui(dir: &Path, args: &[&str]) -> (Process, HttpApp, std::path::PathBuf) {
    let log = dir.join("a1111.log");
    let mut all = vec![log.to_str().unwrap()];
    all.extend_from_slice(args);
    let (p, port) = python_fixture("fake_a1111.py", &all, None);
    let app = AppKind::A1111.open(&format!("127.0.0.1:{port}")).unwrap();
    (p, app, log)
}

fn request(apps: Vec<HttpApp>, target: FreeTarget, level: FreeLevel, dir: &Path) -> FreeRequest {
    FreeRequest {
        target,
        level,
        agent_dir: vramdeck::release::discovery::AgentDir::at(&dir.join("agents")),
        comfyui: None,
        apps,
        keep: Vec::new(),
        only_pids: None,
    }
}

/// No NVML here: what the apps report is the result.
struct NoMeasurement;

impl free::UsedMemoryProbe for NoMeasurement {
    fn used_since(&mut self, _: std::time::SystemTime) -> Option<Bytes> {
        None
    }
}

/// Follows a report's pending releases to their end (15 s at most).
fn follow_all(report: &free::FreeReport) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for p in &report.pending {
        while !p.finished().unwrap() {
            assert!(Instant::now() < deadline, "{} never happened", p.reason);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn ollamas_models_are_listed_with_vram_and_host_memory_and_unload_leaves_none() {
    let dir = tempfile::tempdir().unwrap();
    let (_o, app, log) = ollama(
        dir.path(),
        &[
            "--model",
            "llama3.1:8b:6:5",
            "--model",
            "qwen2.5:14b:9.5:9.5",
        ],
    );
    let status = app.status().unwrap();
    assert_eq!(status.kind, AppKind::Ollama);
    assert_eq!(status.holds.len(), 2);
    let llama = status
        .holds
        .iter()
        .find(|h| h.what == "llama3.1:8b")
        .unwrap();
    assert_eq!((llama.vram, llama.host), (5 * GIB, GIB));

    // The cache level leaves it alone, and says why.
    let report = free::perform(
        &request(
            vec![app.clone()],
            FreeTarget::All,
            FreeLevel::Cache,
            dir.path(),
        ),
        &mut NoMeasurement,
    );
    assert!(
        report.summary().contains("has no cache to empty"),
        "{}",
        report.summary()
    );
    assert_eq!(app.status().unwrap().holds.len(), 2);

    let report = free::perform(
        &request(
            vec![app.clone()],
            FreeTarget::App(AppKind::Ollama),
            FreeLevel::Unload,
            dir.path(),
        ),
        &mut NoMeasurement,
    );
    assert!(report.pending.is_empty());
    assert_eq!(report.reported_total(), Some(Bytes(5 * GIB + GIB * 19 / 2)));
    assert!(app.status().unwrap().holds.is_empty());
    // Each model by name, with keep_alive 0 and an empty prompt, as Ollama's unload is asked.
    let asked: Vec<_> = events(&log)
        .into_iter()
        .filter(|e| e["path"] == "/api/generate")
        .map(|e| (e["body"]["model"].clone(), e["body"]["keep_alive"].clone()))
        .collect();
    assert_eq!(asked.len(), 2);
    assert!(asked.iter().all(|(_, k)| k == 0));
}

#[test]
fn a_model_answering_a_request_is_unloaded_when_the_request_ends_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let (_o, app, log) = ollama(
        dir.path(),
        &["--model", "llama3.1:8b:6:5", "--busy", "llama3.1:8b:2"],
    );
    let started = Instant::now();
    let report = free::perform(
        &request(
            vec![app.clone()],
            FreeTarget::All,
            FreeLevel::Unload,
            dir.path(),
        ),
        &mut NoMeasurement,
    );
    assert_eq!(report.pending.len(), 1, "{}", report.summary());
    assert!(matches!(report.pending[0].follow, Follow::Engine { .. }));
    assert!(report.summary().contains("when the request using it ends"));
    follow_all(&report);
    assert!(started.elapsed() >= Duration::from_millis(1_500));
    let unloaded: Vec<_> = events(&log)
        .into_iter()
        .filter(|e| e.get("unloaded").is_some())
        .collect();
    assert_eq!(unloaded.len(), 1);
    assert_eq!(unloaded[0]["busy"], false, "cut a running request");
}

#[test]
fn the_webui_is_unloaded_only_between_jobs_and_reports_what_torch_gave_back() {
    let dir = tempfile::tempdir().unwrap();
    // Idle: unloaded at once; torch's own numbers say what came back.
    let (_w, app, _) = webui(dir.path(), &[]);
    let status = app.status().unwrap();
    assert_eq!(status.vram(), 5 * GIB);
    let report = free::perform(
        &request(vec![app], FreeTarget::All, FreeLevel::Unload, dir.path()),
        &mut NoMeasurement,
    );
    assert!(report.pending.is_empty());
    assert_eq!(report.reported_total(), Some(Bytes(5 * GIB - GIB / 4)));

    // Generating: vramdeck waits for the job to end, then unloads.
    let busy_dir = tempfile::tempdir().unwrap();
    let (_w, app, log) = webui(busy_dir.path(), &["--busy", "2"]);
    assert!(
        app.status()
            .unwrap()
            .busy
            .unwrap()
            .starts_with("txt2img (2 of 4)")
    );
    let report = free::perform(
        &request(
            vec![app],
            FreeTarget::All,
            FreeLevel::Unload,
            busy_dir.path(),
        ),
        &mut NoMeasurement,
    );
    assert_eq!(report.pending.len(), 1);
    assert!(
        report
            .summary()
            .contains("frees its memory once its work has ended (txt2img")
    );
    assert!(
        !events(&log).iter().any(|e| e.get("unloaded").is_some()),
        "unloaded during a job"
    );
    follow_all(&report);
    let unloads: Vec<_> = events(&log)
        .into_iter()
        .filter(|e| e.get("unloaded").is_some())
        .collect();
    assert_eq!(unloads.len(), 1);
    assert_eq!(unloads[0]["during_job"], false);
}

#[test]
fn a_webui_without_its_api_a_hanging_server_and_a_flood_are_sentences_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_w, app, _) = webui(dir.path(), &["--no-api"]);
    let said = app.status().unwrap_err().to_string();
    assert!(said.contains("404") || said.contains("--api"), "{said}");

    let (_h, hang, _) = ollama(dir.path(), &["--hang"]);
    let t = Instant::now();
    let said = hang.status().unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    assert!(said.contains("Ollama at 127.0.0.1"), "{said}");

    let (_f, flood, _) = ollama(dir.path(), &["--flood"]);
    let said = flood.status().unwrap_err().to_string();
    assert!(said.contains("larger than"), "{said}");
}

#[test]
fn the_terminal_lists_what_each_app_holds_and_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_o, app, _) = ollama(dir.path(), &["--model", "llama3.1:8b:6:5"]);
    assert_eq!(app.kind(), AppKind::Ollama);
    let address = app.target().rsplit(' ').next().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vramdeck"))
            .args(args)
            .args(["--comfyui", "none", "--a1111", "none", "--ollama", &address])
            .args(["--engines", "none"])
            .env("VRAMDECK_AGENT_DIR", dir.path().join("agents"))
            .env("VRAMDECK_CONFIG_DIR", dir.path().join("config"))
            .env("VRAMDECK_DATA_DIR", dir.path().join("data"))
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = run(&["agents"]);
    assert!(
        listed.contains("llama3.1:8b: 5,120 MiB in VRAM, 1,024 MiB in host memory"),
        "{listed}"
    );
    let freed = run(&["free", "--level", "unload"]);
    assert!(
        freed.contains(&format!("Ollama at {address}: released 5,120 MiB")),
        "{freed}"
    );
    assert!(app.status().unwrap().holds.is_empty());
}

#[test]
fn a_model_with_a_long_or_escaped_name_is_unloaded_by_the_name_ollama_wrote() {
    // The third review: the unload sent the cleaned, 200-character display name back, so such a
    // model never unloaded and the panel waited 15 minutes.
    let dir = tempfile::tempdir().unwrap();
    let long = format!(
        "hf.co/someone/{}:Q4_K_M\u{1b}]0;x\u{7}",
        "very-long-model-".repeat(20)
    );
    let spec = format!("{long}:6:5");
    let (_o, app, log) = ollama(dir.path(), &["--model", &spec]);
    let status = app.status().unwrap();
    let shown = &status.holds[0].what;
    assert!(
        shown.chars().count() <= 200 && !shown.contains('\u{1b}'),
        "{shown:?}"
    );
    assert_eq!(status.holds[0].id, long);
    let report = free::perform(
        &request(
            vec![app.clone()],
            FreeTarget::All,
            FreeLevel::Unload,
            dir.path(),
        ),
        &mut NoMeasurement,
    );
    follow_all(&report);
    assert!(
        app.status().unwrap().holds.is_empty(),
        "{}",
        report.summary()
    );
    let unloaded: Vec<serde_json::Value> = common::events(&log)
        .into_iter()
        .filter(|e| e.get("unloaded").is_some())
        .collect();
    assert_eq!(unloaded.len(), 1);
    assert_eq!(unloaded[0]["unloaded"], serde_json::Value::String(long));
}

// -- the other engines: one stand-in each (tests/fixtures/engines/, sources in their headers) --

/// Starts the stand-in `script` (tests/fixtures/engines/) and opens `kind` at its port.
fn engine(
    kind: AppKind,
    script: &str,
    dir: &Path,
    args: &[&str],
) -> (Process, HttpApp, std::path::PathBuf) {
    let log = dir.join(format!("{script}.log"));
    let mut all = vec![log.to_str().unwrap()];
    all.extend_from_slice(args);
    let (p, port) = python_fixture(&format!("engines/{script}.py"), &all, None);
    (p, kind.open(&format!("127.0.0.1:{port}")).unwrap(), log)
}

/// The actions a stand-in logged (releases and wakes), each with whether work was running.
fn actions(log: &Path) -> Vec<serde_json::Value> {
    events(log)
        .into_iter()
        .filter(|e| e.get("action").is_some())
        .collect()
}

/// Every engine with one model and, when `busy`, a request or job at work for its first 8 s
/// (long enough for seven stand-ins to start on a loaded two-core machine).
fn all_engines(dir: &Path, busy: bool) -> Vec<(Process, HttpApp, std::path::PathBuf)> {
    let b: &[&str] = if busy { &["--busy", "8"] } else { &[] };
    let with = |extra: &[&'static str]| -> Vec<&str> {
        extra.iter().copied().chain(b.iter().copied()).collect()
    };
    vec![
        engine(
            AppKind::LlamaServer,
            "llama_server",
            dir,
            &with(&["--model", "qwen3-4b", "--model", "gemma-3-1b"]),
        ),
        engine(
            AppKind::LlamaSwap,
            "llama_swap",
            dir,
            &with(&["--model", "qwen3-8b"]),
        ),
        engine(
            AppKind::Vllm,
            "vllm",
            dir,
            &with(&["--model", "Qwen/Qwen3-0.6B", "--dev"]),
        ),
        engine(
            AppKind::Sglang,
            "sglang",
            dir,
            &with(&["--model", "Qwen/Qwen3-1.7B", "--memory-saver"]),
        ),
        engine(
            AppKind::InvokeAi,
            "invokeai",
            dir,
            &with(&["--model", "sdxl-base"]),
        ),
        engine(AppKind::SwarmUi, "swarmui", dir, &with(&[])),
        engine(
            AppKind::LmStudio,
            "lm_studio",
            dir,
            &with(&["--model", "qwen/qwen3-4b"]),
        ),
    ]
}

#[test]
fn each_engine_is_known_by_what_it_answers_never_by_its_port() {
    let dir = tempfile::tempdir().unwrap();
    let engines = all_engines(dir.path(), false);
    for (_, app, _) in &engines {
        let status = app
            .status()
            .unwrap_or_else(|e| panic!("{}: {e}", app.name()));
        assert_eq!(status.kind, app.kind());
        if app.kind() != AppKind::SwarmUi {
            assert!(!status.holds.is_empty(), "{}: {status:?}", app.name());
        }
        assert!(status.busy.is_none() && status.note.is_none(), "{status:?}");
    }
    // Every other engine asked at each stand-in's port hears another program.
    for (_, app, _) in &engines {
        let address = app.target().rsplit(' ').next().unwrap().to_string();
        for (_, other, _) in &engines {
            if other.kind() == app.kind() {
                continue;
            }
            let wrong = other.kind().open(&address).unwrap();
            let err = wrong.status().unwrap_err();
            assert!(
                vramdeck::release::engines::not_there(&err),
                "{} at {}'s port: {err}",
                other.name(),
                app.name()
            );
        }
    }
    // vLLM's and ComfyUI Desktop's default port: a ComfyUI answering there is not vLLM.
    let comfy_log = dir.path().join("comfy.log");
    let (_c, comfy_port) = python_fixture("fake_comfyui.py", &[comfy_log.to_str().unwrap()], None);
    let vllm = AppKind::Vllm
        .open(&format!("127.0.0.1:{comfy_port}"))
        .unwrap();
    let said = vllm.status().unwrap_err().to_string();
    assert!(said.contains("another program answers there"), "{said}");
}

#[test]
fn no_engine_is_freed_in_the_middle_of_a_request_or_job() {
    let dir = tempfile::tempdir().unwrap();
    let engines = all_engines(dir.path(), true);
    let apps: Vec<HttpApp> = engines.iter().map(|(_, a, _)| a.clone()).collect();
    for app in &apps {
        if app.kind() != AppKind::LmStudio {
            assert!(app.status().unwrap().busy.is_some(), "{}", app.name());
        }
    }
    let started = Instant::now();
    let report = free::perform(
        &request(apps.clone(), FreeTarget::All, FreeLevel::Unload, dir.path()),
        &mut NoMeasurement,
    );
    // Six wait for their work; LM Studio cannot say, so "free all" leaves it alone.
    assert_eq!(report.pending.len(), 6, "{}", report.summary());
    assert!(
        report.summary().contains("does not say whether"),
        "{}",
        report.summary()
    );
    for (_, app, log) in &engines {
        assert!(actions(log).is_empty(), "{} acted at once", app.name());
    }
    follow_all(&report);
    assert!(started.elapsed() >= Duration::from_millis(1_500));
    for (_, app, log) in &engines {
        let done = actions(log);
        if app.kind() == AppKind::LmStudio {
            assert!(done.is_empty(), "LM Studio was unloaded blind");
            continue;
        }
        assert!(!done.is_empty(), "{} never freed", app.name());
        assert!(
            done.iter().all(|a| a["busy"] == false),
            "{} cut running work: {done:?}",
            app.name()
        );
    }
    // The llama.cpp router was asked per model that ran, and only that one.
    let router = &engines[0].2;
    let unloads: Vec<_> = actions(router).iter().map(|a| a["model"].clone()).collect();
    assert_eq!(unloads, vec![serde_json::json!("qwen3-4b")]);
}

#[test]
fn an_engine_that_cannot_say_whether_it_works_is_freed_only_when_asked_for_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (_l, lm, lm_log) = engine(
        AppKind::LmStudio,
        "lm_studio",
        dir.path(),
        &["--model", "qwen/qwen3-4b"],
    );
    let (_s, swap, swap_log) = engine(
        AppKind::LlamaSwap,
        "llama_swap",
        dir.path(),
        &["--model", "whisper", "--upstream-without-slots"],
    );
    assert!(swap.status().unwrap().busy_unknown && lm.status().unwrap().busy_unknown);
    let apps = vec![lm.clone(), swap.clone()];
    let report = free::perform(
        &request(
            apps.clone(),
            FreeTarget::AllBut(std::process::id()),
            FreeLevel::Unload,
            dir.path(),
        ),
        &mut NoMeasurement,
    );
    assert!(
        actions(&lm_log).is_empty() && actions(&swap_log).is_empty(),
        "{}",
        report.summary()
    );
    let report = free::perform(
        &request(
            apps,
            FreeTarget::App(AppKind::LmStudio),
            FreeLevel::Unload,
            dir.path(),
        ),
        &mut NoMeasurement,
    );
    assert_eq!(
        report.reported_total(),
        Some(Bytes(4 * GIB)),
        "{}",
        report.summary()
    );
    let unloaded = actions(&lm_log);
    assert_eq!(unloaded.len(), 1);
    assert_eq!(unloaded[0]["model"], "qwen/qwen3-4b");
    assert!(lm.status().unwrap().holds.is_empty());
}

#[test]
fn an_engine_that_cannot_free_says_what_would() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            AppKind::LlamaServer,
            "llama_server",
            vec!["--model", "qwen3-4b", "--single"],
            "router mode",
        ),
        (
            AppKind::Vllm,
            "vllm",
            vec!["--model", "Qwen/Qwen3-0.6B"],
            "VLLM_SERVER_DEV_MODE=1",
        ),
        (
            AppKind::Sglang,
            "sglang",
            vec!["--model", "Qwen/Qwen3-1.7B"],
            "--enable-memory-saver",
        ),
        (
            AppKind::LmStudio,
            "lm_studio",
            vec!["--model", "qwen/qwen3-4b", "--old"],
            "update it",
        ),
    ];
    for (kind, script, args, words) in cases {
        let (_p, app, log) = engine(kind, script, dir.path(), &args);
        let status = app.status().unwrap();
        assert!(!status.holds.is_empty(), "{status:?}");
        assert!(
            status.note.as_deref().unwrap_or("").contains(words),
            "{status:?}"
        );
        let report = free::perform(
            &request(
                vec![app.clone()],
                FreeTarget::App(kind),
                FreeLevel::Unload,
                dir.path(),
            ),
            &mut NoMeasurement,
        );
        assert!(report.summary().contains(words), "{}", report.summary());
        assert!(
            actions(&log).is_empty(),
            "{}: {:?}",
            app.name(),
            actions(&log)
        );
    }
}

#[test]
fn engines_put_to_sleep_are_reported_and_wake_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (_v, vllm, vllm_log) = engine(
        AppKind::Vllm,
        "vllm",
        dir.path(),
        &["--model", "m", "--dev"],
    );
    let (_s, sglang, sglang_log) = engine(
        AppKind::Sglang,
        "sglang",
        dir.path(),
        &["--model", "m", "--memory-saver", "--old"],
    );
    let (_i, invoke, _) = engine(
        AppKind::InvokeAi,
        "invokeai",
        dir.path(),
        &["--model", "sdxl"],
    );
    let report = free::perform(
        &request(
            vec![vllm.clone(), sglang.clone(), invoke.clone()],
            FreeTarget::All,
            FreeLevel::Unload,
            dir.path(),
        ),
        &mut NoMeasurement,
    );
    let slept: Vec<_> = report.slept.iter().map(|e| e.kind()).collect();
    assert_eq!(
        slept,
        vec![AppKind::Vllm, AppKind::Sglang],
        "{}",
        report.summary()
    );
    assert!(vllm.status().unwrap().asleep && sglang.status().unwrap().asleep);
    assert_eq!(actions(&vllm_log)[0]["level"], 1);
    assert_eq!(actions(&sglang_log)[0]["freed"], true);
    // InvokeAI's cache empties (its models load again by themselves): not asleep.
    assert!(invoke.status().unwrap().holds.is_empty());
    // Asleep already: a second release does not ask again.
    let again = free::perform(
        &request(
            vec![vllm.clone()],
            FreeTarget::All,
            FreeLevel::Unload,
            dir.path(),
        ),
        &mut NoMeasurement,
    );
    assert!(again.slept.is_empty() && actions(&vllm_log).len() == 1);
    for e in &report.slept {
        assert!(e.wake().unwrap());
    }
    assert!(!vllm.status().unwrap().asleep && !sglang.status().unwrap().asleep);
    assert_eq!(actions(&vllm_log)[1]["action"], "wake");
    assert_eq!(actions(&sglang_log)[1]["action"], "resume");
}

#[test]
fn model_names_an_engine_wrote_are_shown_cleaned_and_sent_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let name = "evil/\u{1b}]0;owned\u{7}model name&x=1";
    let (_p, app, log) = engine(
        AppKind::LlamaServer,
        "llama_server",
        dir.path(),
        &["--model", name],
    );
    let status = app.status().unwrap();
    assert!(
        !status.holds[0].what.contains('\u{1b}'),
        "{:?}",
        status.holds[0].what
    );
    let report = free::perform(
        &request(vec![app], FreeTarget::All, FreeLevel::Unload, dir.path()),
        &mut NoMeasurement,
    );
    follow_all(&report);
    // The slots look asked for exactly that model, escaped in the query, never loading it.
    assert!(events(&log).iter().any(|e| {
        e["path"]
            .as_str()
            .is_some_and(|p| p.contains("%1B%5D0%3Bowned%07model%20name%26x%3D1&autoload=false"))
    }));
    assert_eq!(actions(&log)[0]["model"], name);
}

#[test]
#[cfg(unix)]
fn an_engine_port_held_by_another_user_is_refused() {
    if vramdeck::release::discovery::current_uid() != 0 {
        eprintln!("skipped: needs root to act as a second user (CI runs as root)");
        return;
    }
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let other = 61_500 + std::process::id() % 1_000;
    let mut child = std::process::Command::new("python3")
        .arg(common::fixture("engines/vllm.py"))
        .args([
            dir.path().join("v.log").to_str().unwrap(),
            "--model",
            "m",
            "--dev",
        ])
        .uid(other)
        .gid(other)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _kill = Process(child);
    let port = line.trim().strip_prefix("READY ").unwrap();
    let vllm = AppKind::Vllm.open(&format!("127.0.0.1:{port}")).unwrap();
    let said = vllm.status().unwrap_err().to_string();
    assert!(said.contains(&format!("uid {other}")), "{said}");
    let report = free::perform(
        &request(
            vec![vllm],
            FreeTarget::App(AppKind::Vllm),
            FreeLevel::Unload,
            dir.path(),
        ),
        &mut NoMeasurement,
    );
    assert!(
        report.summary().contains("another user"),
        "{}",
        report.summary()
    );
}
