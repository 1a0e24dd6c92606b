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
use vramdeck::release::a1111::A1111;
use vramdeck::release::free::{self, Follow, FreeRequest, FreeTarget};
use vramdeck::release::http_apps::{AppKind, HttpApp};
use vramdeck::release::ollama::Ollama;
use vramdeck::units::Bytes;

const GIB: u64 = 1 << 30;

fn ollama(dir: &Path, args: &[&str]) -> (Process, HttpApp, std::path::PathBuf) {
    let log = dir.join("ollama.log");
    let mut all = vec![log.to_str().unwrap()];
    all.extend_from_slice(args);
    let (p, port) = python_fixture("fake_ollama.py", &all, None);
    let app = HttpApp::Ollama(Ollama::parse(&format!("127.0.0.1:{port}")).unwrap());
    (p, app, log)
}

fn webui(dir: &Path, args: &[&str]) -> (Process, HttpApp, std::path::PathBuf) {
    let log = dir.join("a1111.log");
    let mut all = vec![log.to_str().unwrap()];
    all.extend_from_slice(args);
    let (p, port) = python_fixture("fake_a1111.py", &all, None);
    let app = HttpApp::A1111(A1111::parse(&format!("127.0.0.1:{port}")).unwrap());
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
    assert!(matches!(
        report.pending[0].follow,
        Follow::OllamaModels { .. }
    ));
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
            .contains("unloads its checkpoint when txt2img")
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
    let HttpApp::Ollama(_) = &app else {
        unreachable!()
    };
    let address = app.target().rsplit(' ').next().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vramdeck"))
            .args(args)
            .args(["--comfyui", "none", "--a1111", "none", "--ollama", &address])
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
