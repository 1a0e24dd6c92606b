//! Finding agents: each is a `<pid>.sock` (a Unix socket) or a `<pid>.json` (a loopback port
//! and its secret: Windows, or `VRAMDECK_AGENT_TRANSPORT=tcp`) in a private per-user directory.
//! Sockets and files whose process is gone (crashed or exited) are removed as they are found.
//!
//! The directory may sit in /tmp, where another local user can create names first, so every
//! level below its trusted base is checked without following links: a real directory, owned by
//! this user, closed to others. vramdeck never creates or changes these directories; agents do.

use super::ReleaseError;
use super::client::AgentClient;
use super::handshake::Secret;
use super::protocol::AgentInfo;
use serde::Deserialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The agent directory: a trusted base and the levels below it that must be private.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentDir {
    base: PathBuf,
    levels: Vec<OsString>,
}

impl AgentDir {
    /// `$VRAMDECK_AGENT_DIR`, else `$XDG_RUNTIME_DIR/vramdeck/agents`, else
    /// `/tmp/vramdeck-<uid>/agents` (the same rule as the Python agent).
    pub fn from_env() -> Self {
        if let Some(dir) = std::env::var_os("VRAMDECK_AGENT_DIR") {
            return AgentDir::at(Path::new(&dir));
        }
        let (base, levels) = crate::platform::agent_socket::default_dir();
        AgentDir { base, levels }
    }

    /// A directory the user named: only its last level is checked (the user chose its parent).
    pub fn at(path: &Path) -> Self {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        match (absolute.parent(), absolute.file_name()) {
            (Some(parent), Some(name)) => AgentDir {
                base: parent.to_path_buf(),
                levels: vec![name.to_os_string()],
            },
            _ => AgentDir {
                base: absolute,
                levels: Vec::new(),
            },
        }
    }

    /// A base and the levels below it (tests build the /tmp layout in a folder of their own).
    pub fn below(base: &Path, levels: &[&str]) -> Self {
        AgentDir {
            base: base.to_path_buf(),
            levels: levels.iter().map(OsString::from).collect(),
        }
    }

    /// The directory holding the sockets.
    pub fn path(&self) -> PathBuf {
        let mut path = self.base.clone();
        path.extend(&self.levels);
        path
    }

    /// Checks every level: `Ok(false)` when one does not exist yet (no agent has started), an
    /// error when one is a symlink, not a directory, another user's or open to others.
    pub fn check(&self) -> Result<bool, ReleaseError> {
        let mut path = self.base.clone();
        for level in &self.levels {
            path.push(level);
            let refuse = |reason: String| ReleaseError::Directory {
                path: path.display().to_string(),
                reason,
            };
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(refuse(e.to_string())),
            };
            if meta.file_type().is_symlink() {
                return Err(refuse(
                    "is a symbolic link, which another user may have planted; refusing to follow it"
                        .into(),
                ));
            }
            if !meta.is_dir() {
                return Err(refuse("is not a directory".into()));
            }
            // Windows keeps this in the folder's ACL (the user's profile): nothing to read.
            let Some(own) = crate::platform::files::ownership(&meta) else {
                continue;
            };
            if own.uid != current_uid() {
                return Err(refuse(format!(
                    "owned by uid {}, not by this user: another user may have created it to \
                     intercept vramdeck; remove it or set VRAMDECK_AGENT_DIR",
                    own.uid
                )));
            }
            if own.mode & 0o077 != 0 {
                return Err(refuse(format!(
                    "mode {:o} lets other users in (expected 700)",
                    own.mode & 0o777
                )));
            }
        }
        Ok(true)
    }
}

/// This process's user id.
pub fn current_uid() -> u32 {
    crate::platform::files::current_uid()
}

/// A socket or endpoint file that looks like an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Pid from the file name.
    pub pid: u32,
    /// The socket or endpoint file.
    pub path: PathBuf,
    /// How to reach it.
    pub transport: Transport,
}

impl Endpoint {
    /// An agent's Unix socket.
    pub fn unix(pid: u32, path: PathBuf) -> Self {
        Endpoint {
            pid,
            path,
            transport: Transport::UnixSocket,
        }
    }
}

/// How an agent is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The Unix socket at the endpoint's path.
    UnixSocket,
    /// A port on 127.0.0.1 and the secret both sides prove they hold.
    Loopback {
        /// The agent's port.
        port: u16,
        /// From the endpoint file.
        secret: Secret,
    },
    /// An endpoint file that cannot be used (the sentence says why).
    Unreadable(String),
}

/// Endpoint files are a few hundred bytes; anything bigger is not one.
const MAX_ENDPOINT_FILE_BYTES: u64 = 4096;

#[derive(Deserialize)]
struct EndpointFile {
    format: String,
    pid: u32,
    transport: String,
    host: String,
    port: u16,
    secret: String,
}

/// Reads `<pid>.json`: the agent's port and secret, or why they cannot be used.
fn read_endpoint_file(path: &Path, pid: u32) -> Transport {
    use std::io::Read;
    let mut text = String::new();
    let read = crate::platform::files::open_no_follow(path).and_then(|file| {
        file.take(MAX_ENDPOINT_FILE_BYTES + 1)
            .read_to_string(&mut text)
    });
    if let Err(e) = read {
        return Transport::Unreadable(format!("cannot read {}: {e}", path.display()));
    }
    if text.len() as u64 > MAX_ENDPOINT_FILE_BYTES {
        return Transport::Unreadable(format!(
            "{} is too big for an endpoint file",
            path.display()
        ));
    }
    let file: EndpointFile = match serde_json::from_str(&text) {
        Ok(file) => file,
        Err(e) => {
            return Transport::Unreadable(format!(
                "{} is not an agent endpoint file ({e})",
                path.display()
            ));
        }
    };
    let secret = Secret::from_hex(&file.secret);
    match secret {
        Some(secret)
            if file.format == "vramdeck-agent-endpoint"
                && file.transport == "tcp"
                && file.host == "127.0.0.1"
                && file.pid == pid
                && file.port != 0 =>
        {
            Transport::Loopback {
                port: file.port,
                secret,
            }
        }
        _ => Transport::Unreadable(format!(
            "{} does not name this agent on 127.0.0.1 with a 32-byte secret",
            path.display()
        )),
    }
}

/// An agent that answered.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveAgent {
    /// Where it listens; its pid is checked against the socket's peer credentials, so it is
    /// the process that really serves the socket.
    pub endpoint: Endpoint,
    /// What it said.
    pub info: AgentInfo,
}

/// Result of one look at the agent directory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discovery {
    /// Agents that answered, by pid.
    pub agents: Vec<LiveAgent>,
    /// Agents that exist but did not answer properly (hung, garbage, other user), as sentences.
    pub problems: Vec<String>,
    /// Stale sockets removed this time.
    pub removed_stale: Vec<PathBuf>,
}

/// Socket files in `dir`, by pid. A missing directory means no agents.
pub fn endpoints(dir: &AgentDir) -> Result<Vec<Endpoint>, ReleaseError> {
    if !dir.check()? {
        return Ok(Vec::new());
    }
    let path = dir.path();
    let entries = std::fs::read_dir(&path).map_err(|e| ReleaseError::Directory {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut found: Vec<Endpoint> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let path = e.path();
            let name = path.file_name()?.to_str()?;
            if let Some(pid) = name.strip_suffix(".sock") {
                let pid = pid.parse().ok()?;
                return cfg!(unix).then(|| Endpoint::unix(pid, path));
            }
            let pid = name.strip_suffix(".json")?.parse().ok()?;
            let transport = read_endpoint_file(&path, pid);
            Some(Endpoint {
                pid,
                path,
                transport,
            })
        })
        .collect();
    found.sort_by_key(|e| e.pid);
    Ok(found)
}

/// Asks every agent in `dir` who it is, all at once (a hung agent costs `timeout`, not a
/// queue of them), removing sockets whose process is gone.
pub fn discover(dir: &AgentDir, timeout: Duration) -> Discovery {
    discover_telling(dir, timeout, &|_| None)
}

/// [`discover`], telling each agent (by pid) what is done when its app asks for room.
pub fn discover_telling(
    dir: &AgentDir,
    timeout: Duration,
    room: &(dyn Fn(u32) -> Option<super::arbiter::RoomPolicy> + Sync),
) -> Discovery {
    let mut result = Discovery::default();
    let endpoints = match endpoints(dir) {
        Ok(e) => e,
        Err(e) => {
            result.problems.push(e.to_string());
            return result;
        }
    };
    let answers = super::each_in_parallel(endpoints, |endpoint| {
        AgentClient::connect(&endpoint, timeout)
            .and_then(|mut c| c.hello_telling(room(endpoint.pid)))
            .map(|info| LiveAgent {
                endpoint: endpoint.clone(),
                info,
            })
            .map_err(|e| (Box::new(endpoint), e))
    });
    for answer in answers {
        match answer {
            Ok(agent) => result.agents.push(agent),
            Err((endpoint, ReleaseError::Gone(_))) => {
                if std::fs::remove_file(&endpoint.path).is_ok() {
                    result.removed_stale.push(endpoint.path);
                }
            }
            Err((_, e)) => result.problems.push(e.to_string()),
        }
    }
    result
}
