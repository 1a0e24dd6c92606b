//! Helpers shared by the integration tests: real Python fixture processes and a probe.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};
use vramdeck::release::discovery;
use vramdeck::release::free::UsedMemoryProbe;
use vramdeck::units::Bytes;

/// A child process killed when the test ends, pass or fail.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The JSON lines a stand-in server logged (its requests and what it did), in order.
pub fn events(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs a Python fixture and waits for its "READY <value>" line; returns the value.
pub fn python_fixture(name: &str, args: &[&str], agent_dir: Option<&Path>) -> (Process, String) {
    python_fixture_with(name, args, agent_dir, &[])
}

/// [`python_fixture`] with extra environment variables for the child.
pub fn python_fixture_with(
    name: &str,
    args: &[&str],
    agent_dir: Option<&Path>,
    env: &[(&str, &str)],
) -> (Process, String) {
    let mut command = Command::new("python3");
    command.arg(fixture(name)).args(args).stdout(Stdio::piped());
    if let Some(dir) = agent_dir {
        command.env("VRAMDECK_AGENT_DIR", dir);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let value = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("{name} said {line:?}"))
        .trim()
        .to_string();
    (Process(child), value)
}

/// Starts `fake_webui.py` with `args` and returns it with its pid.
pub fn webui(dir: &Path, args: &[&str]) -> (Process, u32) {
    webui_with(dir, args, &[])
}

/// [`webui`] with extra environment variables (e.g. FAKE_COMFY_PORT).
pub fn webui_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Process, u32) {
    let (process, pid) = python_fixture_with("fake_webui.py", args, Some(dir), env);
    (process, pid.parse().unwrap())
}

/// A private (0700) folder of this user, as agent directories must be.
#[cfg(unix)]
pub fn agent_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .unwrap()
}

/// A folder of this user (Windows keeps who may enter in the profile's ACL).
#[cfg(not(unix))]
pub fn agent_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// "Measures" with the agents' own torch numbers: the sum of reserved bytes of every agent.
pub struct ReservedByAgents(pub PathBuf);

impl UsedMemoryProbe for ReservedByAgents {
    fn used_since(&mut self, _: SystemTime) -> Option<Bytes> {
        let found = discovery::discover(&discovery::AgentDir::at(&self.0), Duration::from_secs(2));
        Some(Bytes(
            found.agents.iter().filter_map(|a| a.info.reserved).sum(),
        ))
    }
}

/// Steps the window until `done` holds (15 s at most). Steps rather than `run`: a spinner or a
/// toast keeps the UI repainting on purpose, so it never "settles".
pub fn until<S>(
    h: &mut egui_kittest::Harness<'_, S>,
    what: &str,
    done: impl Fn(&egui_kittest::Harness<'_, S>) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !done(h) {
        if std::time::Instant::now() >= deadline {
            use egui_kittest::kittest::{NodeT, Queryable, by};
            let on_screen: Vec<String> = h
                .query_all(by())
                .filter_map(|n| {
                    let node = n.accesskit_node();
                    node.label().or_else(|| node.value()).map(|l| l.to_string())
                })
                .collect();
            panic!("timed out waiting for {what}; on screen: {on_screen:#?}");
        }
        std::thread::sleep(Duration::from_millis(20));
        h.run_steps(2);
    }
}

/// The window around `app`, `width` × `height` points, driven headless: its logic, then its
/// panels, each pass, as eframe runs them.
pub fn open_window(
    app: vramdeck::ui::VramDeckApp,
    width: f32,
    height: f32,
) -> egui_kittest::Harness<'static, vramdeck::ui::VramDeckApp> {
    egui_kittest::Harness::builder()
        .with_size(egui::vec2(width, height))
        .build_ui_state(
            |ui, app: &mut vramdeck::ui::VramDeckApp| {
                app.logic(ui.ctx());
                app.show(ui);
            },
            app,
        )
}

/// An app showing `telemetry` with default settings: no sampler, nothing saved.
pub fn plain_app(
    telemetry: vramdeck::telemetry::sampler::SharedTelemetry,
) -> vramdeck::ui::VramDeckApp {
    vramdeck::ui::VramDeckApp::new(
        telemetry,
        None,
        vramdeck::settings::Settings::default(),
        None,
        vec![],
    )
}

/// Runs the vramdeck binary with `args` and `stdin`, config and data in a fresh folder:
/// (stdout, stderr, success).
pub fn vramdeck(args: &[&str], stdin: Option<&str>) -> (String, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    vramdeck_in(dir.path(), args, stdin)
}

/// [`vramdeck`] with its settings (and the user's presets) in `dir`.
pub fn vramdeck_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> (String, String, bool) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_vramdeck"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("VRAMDECK_CONFIG_DIR", dir)
        .env("VRAMDECK_DATA_DIR", dir)
        // English whatever the tester's own locale: these tests read English text.
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.success(),
    )
}

/// A free TCP port on loopback (bound, then released for the server a test starts on it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts on 127.0.0.1:`port`; panics naming `what` after 20 s.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `vramdeck serve --demo` as the box "gpu-box" on 127.0.0.1:`port`, reading every 200 ms,
/// its token in `dir`/token and its agents in `dir`/agents; returns once it listens.
pub fn demo_serve(dir: &Path, port: u16) -> Process {
    demo_serve_named(dir, port, "gpu-box")
}

/// [`demo_serve`] for a box called `name`.
pub fn demo_serve_named(dir: &Path, port: u16, name: &str) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_vramdeck"))
        .args(["serve", "--demo", "--name", name, "--comfyui", "none"])
        .args([
            "--interval-ms",
            "200",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--token-file")
        .arg(dir.join("token"))
        .env("VRAMDECK_AGENT_DIR", dir.join("agents"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    wait_for_port(port, "vramdeck serve");
    process
}

/// FaceFusion's stand-in (packaging/python/tests/fake_facefusion, FaceFusion 3.8.1's shape)
/// started through the real launcher, `python3 -m vramdeck_agent.facefusion`, with one real
/// onnxruntime CPU session loaded.
pub fn facefusion(agent_dir: &Path) -> (Process, u32) {
    use std::io::Write;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = agent_dir.join("inswapper_128_fp16.onnx");
    let built = Command::new("python3")
        .arg("-c")
        .arg("import sys; sys.path.insert(0, sys.argv[1]); from onnx_models import matmul_chain; matmul_chain(sys.argv[2])")
        .arg(root.join("packaging/python/tests"))
        .arg(&model)
        .status()
        .unwrap();
    assert!(
        built.success(),
        "onnx and onnxruntime must be installed (tests/run-all.sh)"
    );
    let mut child = Command::new("python3")
        .args(["-m", "vramdeck_agent.facefusion"])
        .arg(&model)
        .arg("cpu")
        .current_dir(root.join("packaging/python/tests/fake_facefusion"))
        .env("PYTHONPATH", root.join("packaging/python/comfyui-vramdeck"))
        .env("VRAMDECK_AGENT_DIR", agent_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(b"load\n").unwrap();
    stdin.flush().unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ok load");
    let pid = child.id();
    (Process(child), pid)
}
