//! Attacks on the release side, each reproduced with real processes and sockets: squatted and
//! symlinked socket directories (with a second uid where the attack needs one), a listener
//! of another user on ComfyUI's port, impostor and lying agents, a killed WebUI whose forked
//! child keeps its socket, hung agents in numbers, and escape sequences aimed at the terminal.
//! Tests that need root to act as another user say so and pass when not root (CI runs as root).
// Agents listen on Unix sockets: nothing here exists on Windows.
#![cfg(unix)]

mod common;

use common::{ReservedByAgents, agent_dir, webui};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use vramdeck::release::comfyui::ComfyUi;
use vramdeck::release::discovery::{self, AgentDir};
use vramdeck::release::free::{self, FreeRequest, FreeTarget};
use vramdeck::release::{FreeLevel, ReleaseError};
use vramdeck::units::{Bytes, GIB};

fn is_root() -> bool {
    discovery::current_uid() == 0
}

fn skip_unless_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("{test}: skipped, needs root to act as a second user (CI runs as root)");
    }
    !is_root()
}

/// A uid no account uses, distinct per test process and purpose.
fn spare_uid(offset: u32) -> u32 {
    61_000 + (std::process::id() % 2_000) * 4 + offset
}

/// A world-writable sticky folder, like /tmp, for the attack to happen in.
fn sticky_tmp() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

fn all_agents(dir: &Path) -> FreeRequest {
    FreeRequest {
        target: FreeTarget::All,
        level: FreeLevel::Cache,
        agent_dir: AgentDir::at(dir),
        comfyui: None,
        apps: Vec::new(),
        keep: Vec::new(),
        only_pids: None,
    }
}

// -- the socket directory ---------------------------------------------------------------------

#[test]
fn a_symlinked_level_of_the_agent_directory_is_refused_not_followed() {
    let tmp = sticky_tmp();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, tmp.path().join("vramdeck-1000")).unwrap();
    let dir = AgentDir::below(tmp.path(), &["vramdeck-1000", "agents"]);
    let err = dir.check().unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    let found = discovery::discover(&dir, Duration::from_secs(1));
    assert!(found.problems[0].contains("symbolic link"), "{found:?}");

    // The inner level too.
    let outer = tmp.path().join("vramdeck-1001");
    std::fs::create_dir(&outer).unwrap();
    std::fs::set_permissions(&outer, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, outer.join("agents")).unwrap();
    let inner = AgentDir::below(tmp.path(), &["vramdeck-1001", "agents"]);
    assert!(
        inner
            .check()
            .unwrap_err()
            .to_string()
            .contains("symbolic link")
    );
}

#[test]
fn a_level_owned_by_another_user_is_refused() {
    if skip_unless_root("a_level_owned_by_another_user_is_refused") {
        return;
    }
    let tmp = sticky_tmp();
    let squatted = tmp.path().join("vramdeck-0");
    std::fs::create_dir(&squatted).unwrap();
    std::fs::set_permissions(&squatted, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&squatted, Some(spare_uid(0)), Some(spare_uid(0))).unwrap();
    let dir = AgentDir::below(tmp.path(), &["vramdeck-0", "agents"]);
    let err = dir.check().unwrap_err().to_string();
    assert!(
        err.contains(&format!("owned by uid {}", spare_uid(0))),
        "{err}"
    );
}

/// Runs `python3 -c code args…` as `uid`, with no XDG_RUNTIME_DIR (a systemd service, Docker,
/// su) so the agent falls back to the /tmp layout under `tmp`.
fn python_as(uid: u32, code: &str, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .uid(uid)
        .gid(uid)
        .output()
        .expect("python3 runs")
}

/// The agent package, copied where another user can read it.
fn readable_agent_package() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    std::fs::set_permissions(copy.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/python/comfyui-vramdeck/vramdeck_agent");
    let dst = copy.path().join("vramdeck_agent");
    std::fs::create_dir(&dst).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            let to = dst.join(path.file_name().unwrap());
            std::fs::copy(&path, &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    copy
}

/// The agent's own directory logic, pointed at `tmp` instead of /tmp (same code path).
const START_AGENT_IN: &str = r#"
import sys
sys.path.insert(0, sys.argv[1])
from vramdeck_agent import _dirs
from vramdeck_agent.testing import FakeAllocator
import vramdeck_agent, os
_dirs.levels = lambda: (sys.argv[2], [f"vramdeck-{os.getuid()}", "agents"])
agent = vramdeck_agent.start(allocator=FakeAllocator())
print("STARTED" if agent else "REFUSED", flush=True)
"#;

#[test]
fn another_user_cannot_make_the_agent_chmod_or_enter_a_planted_directory() {
    if skip_unless_root("another_user_cannot_make_the_agent_chmod_or_enter_a_planted_directory") {
        return;
    }
    let (victim, attacker) = (spare_uid(1), spare_uid(2));
    let tmp = sticky_tmp();
    let package = readable_agent_package();
    // Something of the victim's that must keep its mode (root's /etc in the real attack).
    let precious = tmp.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&precious, Some(victim), Some(victim)).unwrap();
    // The attacker plants the victim's fallback directory as a symlink, as its own user.
    let planted = tmp.path().join(format!("vramdeck-{victim}"));
    let ln = {
        use std::os::unix::process::CommandExt;
        Command::new("ln")
            .arg("-s")
            .arg(&precious)
            .arg(&planted)
            .uid(attacker)
            .gid(attacker)
            .status()
            .unwrap()
    };
    assert!(ln.success());
    assert_eq!(std::fs::symlink_metadata(&planted).unwrap().uid(), attacker);

    let out = python_as(
        victim,
        START_AGENT_IN,
        &[
            package.path().to_str().unwrap(),
            tmp.path().to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.trim(), "REFUSED", "{stdout} {stderr}");
    assert!(stderr.contains("not a plain directory"), "{stderr}");
    assert_eq!(mode(&precious), 0o755, "the target kept its mode");
    assert!(
        !precious.join("agents").exists(),
        "nothing was created inside it"
    );

    // A directory the attacker created (not a link) is refused just as well.
    std::fs::remove_file(&planted).unwrap();
    std::fs::create_dir(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&planted, Some(attacker), Some(attacker)).unwrap();
    let out = python_as(
        victim,
        START_AGENT_IN,
        &[
            package.path().to_str().unwrap(),
            tmp.path().to_str().unwrap(),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "REFUSED");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("belongs to uid {attacker}")));
    assert_eq!(mode(&planted), 0o777, "never chmod-ed");
    assert!(!planted.join("agents").exists());
}

// -- the agents themselves --------------------------------------------------------------------

#[test]
fn a_killed_webui_whose_forked_child_keeps_the_socket_is_gone_not_hung() {
    let dir = agent_dir();
    let (webui, pid) = webui(dir.path(), &["forking", "--fork-holder"]);
    drop(webui); // SIGKILL the WebUI; its forked child still holds the listening socket
    let socket = dir.path().join(format!("{pid}.sock"));
    let started = Instant::now();
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(3));
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    assert_eq!(found.removed_stale, vec![socket.clone()]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not waited out as hung"
    );
}

#[test]
fn a_socket_served_by_another_process_than_its_name_says_is_refused() {
    let dir = agent_dir();
    let (_impostor, pid) = webui(dir.path(), &["", "--impostor"]);
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
    assert!(found.agents.is_empty(), "{found:?}");
    assert!(
        found.problems[0].contains(&format!("served by pid {pid}")),
        "{:?}",
        found.problems
    );
}

#[test]
fn an_agent_naming_another_pid_is_not_believed() {
    // Auto-calibration records the VRAM of the pid an agent stands for: a lie would file
    // another process's memory as a preset's peak.
    let dir = agent_dir();
    let (_liar, pid) = webui(dir.path(), &["Wan2.1 T2V 14B", "--lie-pid"]);
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
    assert!(found.agents.is_empty());
    assert!(
        found.problems[0].contains(&format!(
            "says it is pid 1 but the socket belongs to pid {pid}"
        )),
        "{:?}",
        found.problems
    );
}

#[test]
fn hung_agents_are_asked_at_once_and_never_sent_free() {
    let dir = agent_dir();
    let hung: Vec<_> = (0..3).map(|_| webui(dir.path(), &["", "--hang"])).collect();
    let (_good, good_pid) = webui(dir.path(), &["good"]);
    let mut probe = ReservedByAgents(dir.path().to_path_buf());
    let started = Instant::now();
    let report = free::perform(&all_agents(dir.path()), &mut probe);
    let took = started.elapsed();
    // Serially, with a free sent after each failed hello, this took 3 × (1 s + 20 s).
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let good = report
        .results
        .iter()
        .find(|r| r.target.contains(&format!("pid {good_pid}")))
        .unwrap();
    assert_eq!(
        good.outcome.as_ref().unwrap().reported,
        Some(Bytes(10 * GIB))
    );
    for (_, pid) in &hung {
        let r = report
            .results
            .iter()
            .find(|r| r.target == format!("agent pid {pid}"))
            .unwrap();
        assert!(
            matches!(r.outcome, Err(ReleaseError::Timeout { .. })),
            "{r:?}"
        );
    }
}

// -- ComfyUI's port ---------------------------------------------------------------------------

const SQUATTER: &str = r#"
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        body = b'{"devices":[{"name":"cuda:0 totally ComfyUI","type":"cuda","vram_total":1,"vram_free":1}]}'
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
s = socketserver.TCPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[test]
fn a_listener_of_another_user_on_comfyuis_port_is_refused() {
    if skip_unless_root("a_listener_of_another_user_on_comfyuis_port_is_refused") {
        return;
    }
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let squatter = spare_uid(3);
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SQUATTER)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .uid(squatter)
        .gid(squatter)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _kill = common::Process(child);
    let comfy = ComfyUi::parse(&format!("127.0.0.1:{}", line.trim())).unwrap();
    let err = comfy.system_stats(Duration::from_secs(2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the listener at 127.0.0.1:{} belongs to another user (uid {squatter}); refusing to talk to it",
            line.trim()
        )
    );
}

// -- the terminal -----------------------------------------------------------------------------

fn vramdeck(args: &[&str], agent_dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vramdeck"))
        .args(args)
        .env("VRAMDECK_AGENT_DIR", agent_dir)
        .env("VRAMDECK_CONFIG_DIR", agent_dir.join("config"))
        .env("VRAMDECK_DATA_DIR", agent_dir.join("data"))
        .output()
        .unwrap()
}

fn has_raw_controls(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.chars()
        .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
}

#[test]
fn agent_supplied_text_reaches_the_terminal_escaped() {
    let dir = agent_dir();
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}evil";
    let (_webui, _) = webui(dir.path(), &[evil]);
    let out = vramdeck(&["agents", "--comfyui", "none"], dir.path());
    assert!(out.status.success());
    assert!(
        !has_raw_controls(&out.stdout),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\\u{1b}]0;pwned\\u{7}"));
    let out = vramdeck(&["free", "--comfyui", "none"], dir.path());
    assert!(
        !has_raw_controls(&out.stdout),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn log_supplied_text_reaches_the_terminal_escaped() {
    let dir = agent_dir();
    let log: PathBuf = dir.path().join("evil.log");
    std::fs::write(
        &log,
        "\u{1b}]0;pwned\u{7}RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB \u{1b}[2J\u{202e}\n",
    )
    .unwrap();
    let out = vramdeck(&["analyze", log.to_str().unwrap()], dir.path());
    assert!(out.status.success());
    assert!(
        !has_raw_controls(&out.stdout),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Tried to allocate 2.00 GiB"));
}
