//! Agents on the loopback transport (what Windows uses, asked for here with
//! `VRAMDECK_AGENT_TRANSPORT=tcp`): real Python agents found through their endpoint files and
//! freed over TCP, and what anyone on the machine can do to a loopback port — squat an exited
//! agent's port, answer with a forged proof, hang, talk garbage, or leave a broken file.
// The fixtures are Python programs started with python3; the Windows build runs this file's
// client side against them under Wine (scripts/wine-test.sh).
#![cfg(unix)]

mod common;

use common::{ReservedByAgents, agent_dir, python_fixture_with, webui_with};
use std::path::Path;
use std::time::{Duration, Instant};
use vramdeck::release::client::AgentClient;
use vramdeck::release::discovery::{self, AgentDir, Transport};
use vramdeck::release::free::{self, FreeRequest, FreeTarget};
use vramdeck::release::{FreeLevel, ReleaseError};
use vramdeck::units::{Bytes, GIB};

const TCP: &[(&str, &str)] = &[("VRAMDECK_AGENT_TRANSPORT", "tcp")];

fn squatter(dir: &Path, mode: &str, pid: Option<u32>) -> (common::Process, u16) {
    let pid = pid.map(|p| p.to_string());
    let mut args = vec![dir.to_str().unwrap(), mode];
    args.extend(pid.as_deref());
    let (process, port) = python_fixture_with("port_squatter.py", &args, None, &[]);
    (process, port.parse().unwrap())
}

fn received(dir: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(dir.join("squatter.log")).unwrap_or_default())
        .into_owned()
}

#[test]
fn a_loopback_agent_is_found_by_its_endpoint_file_and_freed_over_tcp() {
    let dir = agent_dir();
    let (_webui, pid) = webui_with(dir.path(), &["Wan2.1 T2V 14B"], TCP);
    assert!(!dir.path().join(format!("{pid}.sock")).exists());
    let endpoints = discovery::endpoints(&AgentDir::at(dir.path())).unwrap();
    let [endpoint] = endpoints.as_slice() else {
        panic!("{endpoints:?}")
    };
    assert!(
        matches!(endpoint.transport, Transport::Loopback { port, .. } if port != 0),
        "{endpoint:?}"
    );
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    assert_eq!(found.agents.len(), 1);
    assert_eq!(found.agents[0].info.pid, pid);
    assert_eq!(found.agents[0].info.reserved, Some(16 * GIB));

    let report = free::perform(
        &FreeRequest {
            target: FreeTarget::All,
            level: FreeLevel::Cache,
            agent_dir: AgentDir::at(dir.path()),
            comfyui: None,
            apps: Vec::new(),
            keep: Vec::new(),
            only_pids: None,
        },
        &mut ReservedByAgents(dir.path().to_path_buf()),
    );
    assert_eq!(report.reported_total(), Some(Bytes(10 * GIB)));
    assert_eq!(report.used_after, Some(Bytes(6 * GIB)));
}

#[test]
fn an_exited_agents_port_is_never_contacted_and_its_file_is_removed() {
    let dir = agent_dir();
    // The file names a pid that no longer runs; someone else listens on its port.
    let mut exited = std::process::Command::new("true").spawn().unwrap();
    let dead = exited.id();
    exited.wait().unwrap();
    let (_squatter, _) = squatter(dir.path(), "--fake-proof", Some(dead));
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
    assert!(
        found.agents.is_empty() && found.problems.is_empty(),
        "{found:?}"
    );
    assert_eq!(
        found.removed_stale,
        vec![dir.path().join(format!("{dead}.json"))]
    );
    assert_eq!(
        received(dir.path()),
        "",
        "nothing may be sent to a dead agent's port"
    );
}

#[test]
fn a_squatter_with_a_forged_proof_is_refused_and_learns_nothing() {
    let dir = agent_dir();
    let (squatter, port) = squatter(dir.path(), "--fake-proof", None);
    let pid = squatter.0.id();
    let endpoint = discovery::endpoints(&AgentDir::at(dir.path())).unwrap()[0].clone();
    let err = AgentClient::connect(&endpoint, Duration::from_secs(2))
        .err()
        .unwrap();
    assert_eq!(
        err,
        ReleaseError::Unproven {
            target: format!("agent pid {pid}"),
            port
        }
    );
    assert!(err.to_string().contains("cannot prove"), "{err}");
    // It saw our nonce and nothing else: no proof, no request, never the secret.
    let seen = received(dir.path());
    assert!(
        seen.contains("\"nonce\"") && !seen.contains("proof"),
        "{seen}"
    );
    assert!(!seen.contains("hello") && !seen.contains("free"), "{seen}");
    let Transport::Loopback { .. } = endpoint.transport else {
        panic!()
    };
    let file = std::fs::read_to_string(dir.path().join(format!("{pid}.json"))).unwrap();
    let secret = file.split("\"secret\": \"").nth(1).unwrap();
    assert!(!seen.contains(&secret[..64]));
}

#[test]
fn a_hung_or_garbage_speaking_port_costs_one_timeout_and_says_so() {
    let dir = agent_dir();
    let (hung, _) = squatter(dir.path(), "--hang", None);
    let endpoint = discovery::endpoints(&AgentDir::at(dir.path())).unwrap()[0].clone();
    let started = Instant::now();
    let err = AgentClient::connect(&endpoint, Duration::from_millis(400))
        .err()
        .unwrap();
    assert!(matches!(err, ReleaseError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(hung);

    let dir = agent_dir();
    let (_garbage, _) = squatter(dir.path(), "--garbage", None);
    let endpoint = discovery::endpoints(&AgentDir::at(dir.path())).unwrap()[0].clone();
    let err = AgentClient::connect(&endpoint, Duration::from_secs(2))
        .err()
        .unwrap();
    assert!(matches!(err, ReleaseError::Malformed { .. }), "{err:?}");
}

#[test]
fn broken_or_huge_endpoint_files_are_named_not_trusted() {
    let dir = agent_dir();
    let me = std::process::id();
    std::fs::write(dir.path().join(format!("{me}.json")), "{not json").unwrap();
    let other = me + 1;
    // Names another pid than its own file name, and 127.0.0.2: both refused.
    std::fs::write(
        dir.path().join(format!("{other}.json")),
        format!(
            r#"{{"format":"vramdeck-agent-endpoint","pid":{me},"transport":"tcp","host":"10.0.0.1","port":80,"secret":"{}"}}"#,
            "a".repeat(64)
        ),
    )
    .unwrap();
    let big = me + 2;
    std::fs::write(
        dir.path().join(format!("{big}.json")),
        vec![b' '; 2 * 1024 * 1024],
    )
    .unwrap();
    let endpoints = discovery::endpoints(&AgentDir::at(dir.path())).unwrap();
    assert_eq!(endpoints.len(), 3);
    for endpoint in &endpoints {
        let Transport::Unreadable(reason) = &endpoint.transport else {
            panic!("{endpoint:?}")
        };
        assert!(
            reason.contains(&format!("{}.json", endpoint.pid)),
            "{reason}"
        );
    }
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(1));
    assert_eq!(found.problems.len(), 3, "{found:?}");
}

/// Another user's connection flood on the agent's port (the third attack review: vramdeck saw
/// the agent 3 and 1 times in 12). The agent asks the kernel who owns each connection and
/// closes another user's before reading it, and never evicts a connection that has opened a
/// handshake: vramdeck reaches it every time.
#[test]
fn another_users_connection_flood_never_cuts_vramdeck_off_from_its_agent() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    if discovery::current_uid() != 0 {
        eprintln!("skipped: needs root to run the flood as a second user (CI runs as root)");
        return;
    }
    let dir = agent_dir();
    let (_webui, pid) = webui_with(dir.path(), &["Wan2.1 T2V 14B"], TCP);
    let endpoints = discovery::endpoints(&AgentDir::at(dir.path())).unwrap();
    let Transport::Loopback { port, .. } = endpoints[0].transport else {
        panic!("{endpoints:?}")
    };
    // Debian's python3: another user cannot reach a toolchain under root's home.
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| !p.starts_with('/') || Path::new(p).exists())
        .unwrap();
    let attacker_uid = 61_000 + (std::process::id() % 2_000) * 4 + 3;
    let mut attacker = std::process::Command::new(python)
        .arg(common::fixture("connection_flood.py"))
        .args([port.to_string().as_str(), "12"])
        .stdout(std::process::Stdio::piped())
        .uid(attacker_uid)
        .gid(attacker_uid)
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(attacker.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().starts_with("READY"));
    std::thread::sleep(Duration::from_secs(1)); // the flood is under way
    let mut reached = 0;
    let mut said = Vec::new();
    for _ in 0..12 {
        let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
        reached += usize::from(found.agents.iter().any(|a| a.info.pid == pid));
        said.extend(found.problems);
        std::thread::sleep(Duration::from_millis(200));
    }
    let made: u64 = lines
        .find_map(|l| l.ok()?.strip_prefix("MADE ")?.trim().parse().ok())
        .unwrap_or(0);
    let _ = attacker.wait();
    assert!(made > 1_000, "the flood was real: {made} connections");
    assert_eq!(
        reached, 12,
        "vramdeck reached its agent {reached} times in 12: {said:?}"
    );
}
