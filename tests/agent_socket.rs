//! Free VRAM through the real socket: real Python agent processes (a fake allocator stands in
//! for the GPU) driven by the Rust client, and agents that hang, crash, flood or talk garbage.
// Agents listen on Unix sockets: nothing here exists on Windows.
#![cfg(unix)]

mod common;

use common::{ReservedByAgents, agent_dir, webui};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use vramdeck::release::client::AgentClient;
use vramdeck::release::comfyui::ComfyUi;
use vramdeck::release::discovery::{self, AgentDir, Endpoint};
use vramdeck::release::free::{self, FreeRequest, FreeTarget};
use vramdeck::release::{FreeLevel, ReleaseError};
use vramdeck::units::{Bytes, GIB};

fn request(dir: &Path, target: FreeTarget, level: FreeLevel) -> FreeRequest {
    FreeRequest {
        target,
        level,
        agent_dir: AgentDir::at(dir),
        comfyui: None,
        apps: Vec::new(),
        keep: Vec::new(),
        only_pids: None,
    }
}

#[test]
fn running_agent_is_discovered_with_its_label_and_memory() {
    let dir = agent_dir();
    let agents = dir.path().join("agents");
    let (_webui, pid) = webui(&agents, &["Wan2.1 T2V 14B"]);
    let found = discovery::discover(&AgentDir::at(&agents), Duration::from_secs(2));
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let [agent] = found.agents.as_slice() else {
        panic!("{found:?}")
    };
    assert_eq!(agent.info.pid, pid);
    assert_eq!(agent.info.label.as_deref(), Some("Wan2.1 T2V 14B"));
    assert_eq!(agent.info.reserved, Some(16 * GIB));
    assert_eq!(agent.info.allocated, Some(6 * GIB));
    let mode = std::fs::metadata(&agents).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn free_button_releases_cache_of_running_agent() {
    let dir = agent_dir();
    let (_webui, pid) = webui(dir.path(), &["DDColor 960"]);
    let mut probe = ReservedByAgents(dir.path().to_path_buf());
    let report = free::perform(
        &request(dir.path(), FreeTarget::All, FreeLevel::Cache),
        &mut probe,
    );
    assert_eq!(report.reported_total(), Some(Bytes(10 * GIB)));
    assert_eq!(report.used_before, Some(Bytes(16 * GIB)));
    assert_eq!(
        report.used_after,
        Some(Bytes(6 * GIB)),
        "the model stays loaded at level cache"
    );
    assert!(
        report.summary().starts_with("Released 10.0 GiB in "),
        "{}",
        report.summary()
    );
    let target = &report.results[0].target;
    assert!(
        target.ends_with(&format!("(pid {pid}, DDColor 960)")),
        "{target}"
    );
}

#[test]
fn an_agent_without_torch_is_named_with_the_reason_it_gave_nothing() {
    let dir = agent_dir();
    let (_webui, pid) = webui(dir.path(), &["", "--no-torch"]);
    let report = free::perform(
        &request(dir.path(), FreeTarget::All, FreeLevel::Cache),
        &mut ReservedByAgents(dir.path().to_path_buf()),
    );
    let summary = report.summary();
    assert!(summary.starts_with("Nothing was released"), "{summary}");
    assert!(
        summary.contains(&format!(
            "(pid {pid}): released nothing: torch is not loaded in that process ("
        )),
        "{summary}"
    );
    // The terminal says it once, not "released (not reported)" and then "nothing".
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vramdeck"))
        .args(["free", "--comfyui", "none"])
        .env("VRAMDECK_AGENT_DIR", dir.path())
        .env("VRAMDECK_CONFIG_DIR", dir.path().join("config"))
        .env("VRAMDECK_DATA_DIR", dir.path().join("data"))
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!said.contains("not reported"), "{said}");
    assert_eq!(
        said.matches("torch is not loaded in that process").count(),
        1,
        "{said}"
    );
}

#[test]
fn unload_level_runs_the_applications_unload_hook() {
    let dir = agent_dir();
    let (_webui, _) = webui(dir.path(), &["FaceFusion"]);
    let mut probe = ReservedByAgents(dir.path().to_path_buf());
    let report = free::perform(
        &request(dir.path(), FreeTarget::All, FreeLevel::Unload),
        &mut probe,
    );
    assert_eq!(report.reported_total(), Some(Bytes(16 * GIB)));
    assert_eq!(report.used_after, Some(Bytes(0)));
}

#[test]
fn free_one_agent_leaves_the_others_alone() {
    let dir = agent_dir();
    let (_a, pid_a) = webui(dir.path(), &["first"]);
    let (_b, pid_b) = webui(dir.path(), &["second"]);
    let mut probe = ReservedByAgents(dir.path().to_path_buf());
    let report = free::perform(
        &request(dir.path(), FreeTarget::Agent(pid_b), FreeLevel::Cache),
        &mut probe,
    );
    assert_eq!(report.results.len(), 1);
    assert_eq!(report.reported_total(), Some(Bytes(10 * GIB)));
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
    let reserved = |pid| {
        found
            .agents
            .iter()
            .find(|a| a.info.pid == pid)
            .unwrap()
            .info
            .reserved
    };
    assert_eq!(reserved(pid_a), Some(16 * GIB));
    assert_eq!(reserved(pid_b), Some(6 * GIB));
}

#[test]
fn a_hung_agent_times_out_with_a_clear_message() {
    let dir = agent_dir();
    let (_hung, pid) = webui(dir.path(), &["", "--hang"]);
    let endpoint = Endpoint::unix(pid, dir.path().join(format!("{pid}.sock")));
    let err = AgentClient::connect(&endpoint, Duration::from_millis(300))
        .and_then(|mut c| c.hello())
        .unwrap_err();
    assert_eq!(
        err,
        ReleaseError::Timeout {
            target: format!("agent pid {pid}"),
            seconds: 0.3
        }
    );
    assert_eq!(
        err.to_string(),
        format!("agent pid {pid} did not answer within 0.3 s (hung or busy)")
    );
    // Discovery reports it as a problem and does not delete a live (if hung) agent's socket.
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_millis(300));
    assert!(found.agents.is_empty());
    assert!(endpoint.path.exists());
}

#[test]
fn an_agent_speaking_garbage_is_reported_not_trusted() {
    let dir = agent_dir();
    let (_bad, pid) = webui(dir.path(), &["", "--garbage"]);
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
    assert!(found.agents.is_empty());
    assert_eq!(found.problems.len(), 1);
    assert!(
        found.problems[0].starts_with(&format!("agent pid {pid} sent a malformed reply: ")),
        "{}",
        found.problems[0]
    );
}

#[test]
fn a_flooding_agent_costs_at_most_the_size_cap() {
    let dir = agent_dir();
    let (_flood, _) = webui(dir.path(), &["", "--flood"]);
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(5));
    assert!(
        found.problems[0].contains("reply longer than 65536 bytes"),
        "{:?}",
        found.problems
    );
}

#[test]
fn a_killed_agents_socket_is_removed_as_stale() {
    let dir = agent_dir();
    let (webui, pid) = webui(dir.path(), &["doomed"]);
    drop(webui); // SIGKILL: no chance to clean up
    let socket = dir.path().join(format!("{pid}.sock"));
    assert!(socket.exists());
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
    assert_eq!(found.removed_stale, vec![socket.clone()]);
    assert!(!socket.exists());
    // Freeing that pid now says it is gone.
    let mut probe = ReservedByAgents(dir.path().to_path_buf());
    let report = free::perform(
        &request(dir.path(), FreeTarget::Agent(pid), FreeLevel::Cache),
        &mut probe,
    );
    assert_eq!(
        report.results[0].outcome,
        Err(ReleaseError::NoSuchAgent(pid))
    );
    let summary = report.summary();
    assert!(summary.starts_with("Free VRAM failed"), "{summary}");
    assert!(
        summary.ends_with(&format!(" · no vramdeck agent runs in pid {pid}")),
        "{summary}"
    );
}

#[test]
fn an_agent_of_another_user_is_refused() {
    let dir = agent_dir();
    let (_webui, pid) = webui(dir.path(), &["x"]);
    let endpoint = Endpoint::unix(pid, dir.path().join(format!("{pid}.sock")));
    let me = discovery::current_uid();
    // The peer-credential check compares the agent's real uid (ours) with the one expected.
    let err = AgentClient::connect_as(&endpoint, Duration::from_secs(2), me + 1)
        .err()
        .unwrap();
    assert_eq!(
        err,
        ReleaseError::OtherUser {
            target: format!("agent pid {pid}"),
            uid: me
        }
    );
    assert!(AgentClient::connect(&endpoint, Duration::from_secs(2)).is_ok());
}

#[test]
fn an_agent_directory_open_to_other_users_is_refused() {
    let dir = agent_dir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(1));
    assert!(
        found.problems[0].contains("lets other users in"),
        "{:?}",
        found.problems
    );
}

#[test]
fn no_agents_means_a_helpful_message() {
    let dir = agent_dir();
    let mut probe = ReservedByAgents(dir.path().to_path_buf());
    let report = free::perform(
        &request(&dir.path().join("none"), FreeTarget::All, FreeLevel::Cache),
        &mut probe,
    );
    assert!(report.summary().contains("vramdeck_agent.start()"));
}

#[test]
fn comfyui_not_running_is_a_sentence_not_a_hang() {
    // Bind then drop a listener: the port is (almost certainly) closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let comfy = ComfyUi::parse(&format!("127.0.0.1:{port}")).unwrap();
    let err = comfy.unload_models(Duration::from_secs(1)).unwrap_err();
    assert!(err.to_string().contains("is ComfyUI running?"), "{err}");
}

#[test]
fn vramdeck_agents_lists_facefusions_sessions_and_what_each_level_does_there() {
    let dir = common::agent_dir();
    let (_facefusion, pid) = common::facefusion(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vramdeck"))
        .args(["agents", "--comfyui", "none"])
        .env("VRAMDECK_AGENT_DIR", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("pid {pid:>7}")), "{text}");
    assert!(text.contains("FaceFusion (FP16)"), "{text}");
    assert!(
        text.contains("inside FaceFusion, 1 model loaded\n"),
        "{text}"
    );
    assert!(text.contains(": 1 session\n"), "{text}");
    assert!(
        text.contains("  inswapper_128_fp16.onnx on CPU\n"),
        "{text}"
    );
    assert!(
        text.contains("cache: no onnxruntime GPU session to rebuild"),
        "{text}"
    );
    assert!(
        text.contains("unload: FaceFusion empties its inference pools"),
        "{text}"
    );
    assert!(!text.contains("torch not"), "{text}");
}
