//! Finding agents: each is a `<pid>.sock` in a private per-user directory. Sockets nobody
//! listens on (a crashed or exited process) are removed as they are found.

use super::ReleaseError;
use super::client::AgentClient;
use super::protocol::AgentInfo;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where agents put their sockets: `$VRAMDECK_AGENT_DIR`, else `$XDG_RUNTIME_DIR/vramdeck/agents`,
/// else `/tmp/vramdeck-<uid>/agents` (the same rule as the Python agent).
pub fn agent_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VRAMDECK_AGENT_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(runtime).join("vramdeck").join("agents");
    }
    PathBuf::from(format!("/tmp/vramdeck-{}/agents", current_uid())).to_path_buf()
}

/// This process's user id.
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// A socket file that looks like an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Pid from the file name.
    pub pid: u32,
    /// The socket path.
    pub path: PathBuf,
}

/// An agent that answered.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveAgent {
    /// Where it listens.
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

/// Refuses a directory other users could write to or that is not ours.
pub fn check_private_dir(dir: &Path) -> Result<(), ReleaseError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| ReleaseError::Directory {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    if meta.uid() != current_uid() {
        return Err(ReleaseError::Directory {
            path: dir.display().to_string(),
            reason: format!("owned by uid {}, not by this user", meta.uid()),
        });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(ReleaseError::Directory {
            path: dir.display().to_string(),
            reason: format!(
                "mode {:o} lets other users in (expected 700)",
                meta.mode() & 0o777
            ),
        });
    }
    Ok(())
}

/// Socket files in `dir`, by pid. A missing directory means no agents.
pub fn endpoints(dir: &Path) -> Result<Vec<Endpoint>, ReleaseError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ReleaseError::Directory {
                path: dir.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    check_private_dir(dir)?;
    let mut found: Vec<Endpoint> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let path = e.path();
            let pid = path
                .file_name()?
                .to_str()?
                .strip_suffix(".sock")?
                .parse()
                .ok()?;
            Some(Endpoint { pid, path })
        })
        .collect();
    found.sort_by_key(|e| e.pid);
    Ok(found)
}

/// Asks every agent in `dir` who it is, removing sockets whose process is gone.
pub fn discover(dir: &Path, timeout: Duration) -> Discovery {
    let mut result = Discovery::default();
    let endpoints = match endpoints(dir) {
        Ok(e) => e,
        Err(e) => {
            result.problems.push(e.to_string());
            return result;
        }
    };
    for endpoint in endpoints {
        match AgentClient::connect(&endpoint, timeout).and_then(|mut c| c.hello()) {
            Ok(info) => result.agents.push(LiveAgent { endpoint, info }),
            Err(ReleaseError::Gone(_)) => {
                if std::fs::remove_file(&endpoint.path).is_ok() {
                    result.removed_stale.push(endpoint.path);
                }
            }
            Err(e) => result.problems.push(e.to_string()),
        }
    }
    result
}
