//! `vramdeck serve` as a real process: scraped by a real Prometheus server, and attacked at
//! its boundaries (no token, a token in the URL, big bodies, slow and idle connections, a
//! flood, a non-loopback address without a token).

mod common;

use common::{Process, free_port};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `vramdeck serve --demo` on `listen`, with its token in `dir`; waits until it answers.
fn serve(dir: &Path, listen: &str, extra: &[&str]) -> (Process, String) {
    serve_with_agents(dir, listen, extra, &dir.join("no-agents"))
}

/// [`serve`] relaying Free VRAM to the agents in `agents`.
fn serve_with_agents(dir: &Path, listen: &str, extra: &[&str], agents: &Path) -> (Process, String) {
    let token_file = dir.join("token");
    let child = Command::new(env!("CARGO_BIN_EXE_vramdeck"))
        .env("VRAMDECK_AGENT_DIR", agents)
        .args(["serve", "--demo", "--name", "test-box", "--comfyui", "none"])
        .args([
            "--listen",
            listen,
            "--token-file",
            token_file.to_str().unwrap(),
        ])
        .args(extra)
        .env("XDG_RUNTIME_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut process = Process(child);
    let port: u16 = listen.rsplit(':').next().unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = process.0.try_wait() {
            let mut stderr = String::new();
            let _ = process.0.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("serve exited ({status}): {stderr}");
        }
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = std::fs::read_to_string(&token_file)
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    (process, token)
}

/// One HTTP/1.1 exchange on a fresh connection: (status, body).
fn http(port: u16, head: &str, body: &str) -> (u16, String) {
    http_to(port, &format!("127.0.0.1:{port}"), head, body)
}

/// `GET path` with the token.
fn get(port: u16, path: &str, token: &str) -> (u16, String) {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nAuthorization: Bearer {token}"),
        "",
    )
}

/// [`http`] with `host` in the Host header.
fn http_to(port: u16, host: &str, head: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{head}\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn the_api_needs_the_token_on_loopback_too_and_actions_always_do() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_serve, token) = serve(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &["--interval-ms", "200"],
    );
    assert_eq!(token.len(), 64);
    // The attack review: behind a reverse proxy to 127.0.0.1, or for another user of the box,
    // every read (agents' labels and pids among them) went without the token.
    for path in [
        "/api/v1/snapshot",
        "/api/v1/agents",
        "/api/v1/presets",
        "/api/v1/history",
        "/metrics",
    ] {
        let (status, body) = http(port, &format!("GET {path} HTTP/1.1"), "");
        assert_eq!(status, 401, "{path}: {body}");
    }
    let (status, body) = get(port, "/api/v1/snapshot", &token);
    assert_eq!(status, 200, "{body}");
    let snapshot = json(&body);
    assert_eq!(snapshot["schema"], "vramdeck.api/1");
    assert_eq!(snapshot["host"], "test-box");
    // The scheme is case-insensitive (RFC 9110): a lower-case `bearer` is the same token.
    let lower = format!("GET /api/v1/snapshot HTTP/1.1\r\nAuthorization: bearer {token}");
    assert_eq!(http(port, &lower, "").0, 200);
    // HEAD is GET without the body.
    let head = format!("HEAD /api/v1/snapshot HTTP/1.1\r\nAuthorization: Bearer {token}");
    let (status, body) = http(port, &head, "");
    assert_eq!((status, body.as_str()), (200, ""));
    let free = r#"{"level":"cache"}"#;
    let (status, body) = http(port, "POST /api/v1/free HTTP/1.1", free);
    assert_eq!(status, 401, "{body}");
    let wrong = format!(
        "POST /api/v1/free HTTP/1.1\r\nAuthorization: Bearer {}",
        "0".repeat(64)
    );
    assert_eq!(http(port, &wrong, free).0, 401);
    let (status, body) = http(
        port,
        &format!("POST /api/v1/free?token={token} HTTP/1.1"),
        free,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("a token in the URL is refused"), "{body}");
    let right = format!("POST /api/v1/free HTTP/1.1\r\nAuthorization: Bearer {token}");
    let (status, body) = http(port, &right, free);
    assert_eq!(status, 202, "{body}");
    // The next one at once is refused, not queued: 409 while the first still runs, 429
    // within 2 s of it.
    let again = http(port, &right, free).0;
    assert!(again == 409 || again == 429, "{again}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = json(&get(port, "/api/v1/free", &token).1);
        if status["running"] == false {
            assert_eq!(status["outcome"], "nothing", "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = http(port, &right, r#"{"level":"everything"}"#);
    assert_eq!(status, 400, "{body}");
}

#[test]
fn free_vram_is_relayed_to_a_real_agent_on_the_box() {
    let dir = tempfile::tempdir().unwrap();
    let agents = common::agent_dir();
    let (_webui, webui_pid) = common::webui(agents.path(), &["video-webui"]);
    let port = free_port();
    let (_serve, token) = serve_with_agents(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &["--interval-ms", "200"],
        agents.path(),
    );
    let reserved = || -> Option<u64> {
        let body = json(&get(port, "/api/v1/agents", &token).1);
        body["agents"]
            .as_array()?
            .iter()
            .find(|a| a["pid"] == webui_pid)
            .and_then(|a| a["reserved"].as_u64())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let before = loop {
        if let Some(r) = reserved() {
            break r;
        }
        assert!(Instant::now() < deadline, "the agent never showed up");
        std::thread::sleep(Duration::from_millis(200));
    };
    let metrics = get(port, "/metrics", &token).1;
    assert!(
        metrics.contains(&format!(
            "vramdeck_agent_torch_reserved_bytes{{pid=\"{webui_pid}\""
        )),
        "{metrics}"
    );
    let right = format!("POST /api/v1/free HTTP/1.1\r\nAuthorization: Bearer {token}");
    assert_eq!(http(port, &right, r#"{"level":"cache"}"#).0, 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = json(&get(port, "/api/v1/free", &token).1);
        if status["running"] == false && status["summary"] != serde_json::Value::Null {
            assert_ne!(status["outcome"], "failed", "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = reserved().unwrap();
        if after < before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reserved stayed at {after} (was {before})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn read_only_turns_actions_off_even_with_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_serve, token) = serve(dir.path(), &format!("127.0.0.1:{port}"), &["--readonly"]);
    let right = format!("POST /api/v1/free HTTP/1.1\r\nAuthorization: Bearer {token}");
    let (status, body) = http(port, &right, r#"{"level":"cache"}"#);
    assert_eq!(status, 403, "{body}");
}

#[test]
fn off_loopback_without_a_token_does_not_start_and_with_one_every_read_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vramdeck"))
        .args(["serve", "--demo", "--listen", "0.0.0.0:0", "--no-token"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{stderr}"
    );

    let port = free_port();
    let (mut serve, token) = serve(dir.path(), &format!("0.0.0.0:{port}"), &[]);
    assert_eq!(http(port, "GET /metrics HTTP/1.1", "").0, 401);
    let (status, body) = http(
        port,
        &format!("GET /metrics HTTP/1.1\r\nAuthorization: Bearer {token}"),
        "",
    );
    assert_eq!(status, 200);
    assert!(body.contains("DCGM_FI_DEV_FB_USED{"));
    let _ = serve.0.kill();
    let mut stderr = String::new();
    serve
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("WARNING: listening on 0.0.0.0:"),
        "{stderr}"
    );
}

#[test]
fn oversized_bodies_slow_heads_idle_floods_and_bursts_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (serve, token) = serve(dir.path(), &format!("127.0.0.1:{port}"), &[]);
    let pid = serve.0.id();
    let right = format!("POST /api/v1/free HTTP/1.1\r\nAuthorization: Bearer {token}");
    // Declared too large: refused before reading.
    let (status, _) = http(port, &right, &"x".repeat(64 * 1024));
    assert_eq!(status, 413);
    // A head that never ends is cut off after the header deadline.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = slow.read_to_end(&mut sink);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "held {:?}",
        started.elapsed()
    );
    // 300 idle connections: the server keeps its descriptors bounded and answers again once
    // the header deadline has closed them.
    let idle: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert!(fds < 64 + 40, "{fds} descriptors open");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(get(port, "/api/v1/snapshot", &token).0, 200);
    drop(idle);
    // A burst past the rate limit gets 429s, then the server serves again; a burst without
    // the token runs out sooner, on a budget of its own.
    let statuses: Vec<u16> = (0..160).map(|_| get(port, "/api/v1", &token).0).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let anonymous: Vec<u16> = (0..40)
        .map(|_| http(port, "GET /api/v1 HTTP/1.1", "").0)
        .collect();
    assert!(anonymous.contains(&429), "{anonymous:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(port, "/api/v1", &token).0, 200);
}

#[test]
fn idle_connections_and_a_flood_without_the_token_never_lock_out_the_token_holder() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_serve, token) = serve(dir.path(), &format!("127.0.0.1:{port}"), &[]);
    // The attack review: 80 idle connections let 5 of 50 legitimate requests through.
    let idle: Vec<TcpStream> = (0..80)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert_eq!(idle.len(), 80);
    let served = (0..50)
        .filter(|_| get(port, "/api/v1/snapshot", &token).0 == 200)
        .count();
    assert_eq!(
        served, 50,
        "{served} of 50 served beside 80 idle connections"
    );
    drop(idle);
    // A flood without the token (the review's was 290 requests a second and refused 36 of
    // the holder's 40).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut sent = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = http(port, "GET /metrics HTTP/1.1", "");
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut holder = Vec::new();
    for _ in 0..40 {
        holder.push(get(port, "/metrics", &token).0);
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let flood: u32 = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    assert!(flood > 300, "the flood sent only {flood} requests");
    assert!(holder.iter().all(|s| *s == 200), "{holder:?}");
}

#[test]
fn anonymous_connection_churn_never_resets_the_token_holders_requests() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_serve, token) = serve(dir.path(), &format!("127.0.0.1:{port}"), &[]);
    // The third review: bare connects and closes reset 2-3 % of the holder's requests.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churners: Vec<_> = (0..4)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut made = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    made += u32::from(TcpStream::connect(("127.0.0.1", port)).is_ok());
                }
                made
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // 25 a second: within the holder's rate (50 a second), so every answer should be 200.
    let mut statuses = Vec::new();
    for _ in 0..400 {
        statuses.push(get(port, "/api/v1/snapshot", &token).0);
        std::thread::sleep(Duration::from_millis(40));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let churn: u32 = churners.into_iter().map(|c| c.join().unwrap()).sum();
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert!(churn > 1_000, "the churn made only {churn} connections");
    assert_eq!(
        failed,
        0,
        "{failed} of {} failed beside {churn} bare connections",
        statuses.len()
    );
}

#[test]
fn requests_for_another_host_name_are_refused_so_dns_rebinding_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_serve, token) = serve(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &["--allow-host", "gpu.example.org"],
    );
    let head = format!("GET /api/v1/snapshot HTTP/1.1\r\nAuthorization: Bearer {token}");
    // A page on attacker.example whose name now resolves to 127.0.0.1 still sends its name.
    let (status, body) = http_to(port, &format!("attacker.example:{port}"), &head, "");
    assert_eq!(status, 421, "{body}");
    assert!(body.contains("--allow-host"), "{body}");
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "gpu.example.org".to_string(),
        "GPU.Example.Org.".to_string(),
        "test-box".to_string(),
    ] {
        assert_eq!(http_to(port, &host, &head, "").0, 200, "{host}");
    }
}

#[test]
fn metrics_go_without_the_token_on_loopback_only_when_asked_and_the_api_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_serve, token) = serve(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &["--metrics-without-token"],
    );
    let (status, body) = http(port, "GET /metrics HTTP/1.1", "");
    assert_eq!(status, 200);
    assert!(body.contains("DCGM_FI_DEV_FB_USED{"));
    assert_eq!(http(port, "GET /api/v1/agents HTTP/1.1", "").0, 401);
    assert_eq!(get(port, "/api/v1/agents", &token).0, 200);
}

/// Finds Prometheus; CI installs it (tests/run-all.sh), a developer's machine may need
/// `apt-get install prometheus`.
fn prometheus_binary() -> String {
    for candidate in ["prometheus", "/usr/bin/prometheus"] {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return candidate.to_string();
        }
    }
    panic!(
        "this test needs a real Prometheus server: apt-get install prometheus (tests/run-all.sh does it)"
    );
}

fn prometheus_query(port: u16, query: &str) -> serde_json::Value {
    let (status, body) = http(
        port,
        &format!("GET /api/v1/query?query={query} HTTP/1.1"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    json(&body)
}

#[test]
fn a_real_prometheus_scrapes_dcgm_series_with_the_token() {
    let prometheus = prometheus_binary();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Off loopback, so Prometheus must send the token, as a real fleet set-up does.
    let (_serve, token) = serve(
        dir.path(),
        &format!("0.0.0.0:{port}"),
        &["--interval-ms", "5000"],
    );
    let credentials = dir.path().join("credentials");
    std::fs::write(&credentials, &token).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: vramdeck\n    authorization:\n      credentials_file: {}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            credentials.display()
        ),
    )
    .unwrap();
    let web = free_port();
    let _prometheus = Process(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let result = loop {
        if TcpStream::connect(("127.0.0.1", web)).is_ok() {
            let answer = prometheus_query(web, "DCGM_FI_DEV_FB_TOTAL");
            let result = answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if result.len() == 3 {
                break result;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never stored the series"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let up = prometheus_query(web, "up");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    let bearer = format!("GET /api/v1/snapshot HTTP/1.1\r\nAuthorization: Bearer {token}");
    let snapshot = json(&http(port, &bearer, "").1);
    for series in &result {
        let labels = &series["metric"];
        let gpu: usize = labels["gpu"].as_str().unwrap().parse().unwrap();
        let g = &snapshot["gpus"][gpu];
        assert_eq!(labels["UUID"], g["uuid"], "{labels}");
        assert_eq!(labels["pci_bus_id"], g["pci_bus_id"], "{labels}");
        assert_eq!(labels["modelName"], g["name"], "{labels}");
        assert_eq!(labels["device"], format!("nvidia{gpu}"));
        assert_eq!(labels["Hostname"], "test-box");
        let total_mib = g["memory"]["total"].as_u64().unwrap() / (1024 * 1024);
        assert_eq!(series["value"][1], total_mib.to_string(), "{series}");
    }
    // FB_USED as Prometheus stored it equals the box's own reading (sampled every 5 s, so a
    // scrape and a snapshot agree unless a reading lands between them: then ask again).
    let mut agreed = false;
    for _ in 0..5 {
        let stored = prometheus_query(web, "DCGM_FI_DEV_FB_USED%7Bgpu%3D%220%22%7D");
        let snapshot = json(&http(port, &bearer, "").1);
        let used = snapshot["gpus"][0]["memory"]["used"].as_u64().unwrap();
        let expected = (used as f64 / (1024.0 * 1024.0)).round() as u64;
        if stored["data"]["result"][0]["value"][1].as_str() == Some(expected.to_string().as_str()) {
            agreed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1500));
    }
    assert!(agreed, "Prometheus' FB_USED never matched the snapshot");
    for name in [
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_POWER_USAGE",
        "vramdeck_process_fb_used",
        "vramdeck_process_shared_used",
        "vramdeck_free_released_bytes_total",
    ] {
        let answer = prometheus_query(web, name);
        assert!(
            !answer["data"]["result"].as_array().unwrap().is_empty(),
            "{name}: {answer}"
        );
    }
}

#[test]
fn the_agents_answer_carries_what_ollama_holds() {
    let dir = tempfile::tempdir().unwrap();
    let agents = common::agent_dir();
    let log = dir.path().join("ollama.log");
    let (_ollama, ollama_port) = common::python_fixture(
        "fake_ollama.py",
        &[log.to_str().unwrap(), "--model", "llama3.1:8b:6:5"],
        None,
    );
    let port = free_port();
    let (_serve, token) = serve_with_agents(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &[
            "--interval-ms",
            "200",
            "--ollama",
            &format!("127.0.0.1:{ollama_port}"),
        ],
        agents.path(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let app = loop {
        let body = json(&get(port, "/api/v1/agents", &token).1);
        if let Some(app) = body["apps"].as_array().and_then(|a| a.first()).cloned() {
            break app;
        }
        assert!(Instant::now() < deadline, "Ollama never showed up: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(app["app"], format!("Ollama at 127.0.0.1:{ollama_port}"));
    assert_eq!(app["holds"][0]["what"], "llama3.1:8b");
    assert_eq!(app["holds"][0]["vram"], 5u64 << 30);
    assert_eq!(app["holds"][0]["host"], 1u64 << 30);
}
