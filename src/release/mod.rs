//! Releasing cached VRAM: agents inside inference processes (a Unix socket or a loopback port
//! each) and ComfyUI's
//! own HTTP API on loopback. Every call has a timeout; nothing here listens on a network address.

pub mod arbiter;
pub mod client;
pub mod comfyui;
pub mod discovery;
pub mod engines;
pub mod free;
pub mod hand_back;
pub mod handshake;
pub mod holders;
pub mod local_http;
pub mod loopback_owner;
pub mod protocol;
pub mod worker;

use serde::{Deserialize, Serialize};

/// Runs `work` on every item at once, one thread each, and returns the results in item
/// order: several hung peers then cost one timeout, not one each.
pub fn each_in_parallel<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(&work).collect();
    }
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// How much to release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FreeLevel {
    /// gc.collect + torch.cuda.empty_cache + ipc_collect, idle onnxruntime GPU sessions rebuilt
    /// (their arenas go back): models stay loaded.
    #[default]
    Cache,
    /// Also call the application's unload hooks (models must load again next run).
    Unload,
}

impl FreeLevel {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FreeLevel::Cache => "cache",
            FreeLevel::Unload => "unload",
        }
    }
}

/// Why talking to an agent or ComfyUI failed; each reads as a sentence for the user.
#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseError {
    /// The agent directory is unsafe or unreadable.
    Directory {
        /// The directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Nobody listens on the socket any more (the process exited or crashed).
    Gone(String),
    /// No agent runs in the process asked for.
    NoSuchAgent(u32),
    /// Connecting failed for another reason.
    Connect {
        /// Agent or address.
        target: String,
        /// The OS error.
        reason: String,
    },
    /// No answer in time: the peer is hung or busy.
    Timeout {
        /// Agent or address.
        target: String,
        /// The limit.
        seconds: f64,
    },
    /// The socket is served by a process other than the one its name promises.
    Impostor {
        /// Agent.
        target: String,
        /// The pid the kernel names as the listener.
        served_by: u32,
    },
    /// Whoever listens on an agent's loopback port cannot prove it holds the agent's secret.
    Unproven {
        /// Agent.
        target: String,
        /// The port.
        port: u16,
    },
    /// The peer belongs to another user.
    OtherUser {
        /// Agent.
        target: String,
        /// The peer's uid.
        uid: u32,
    },
    /// The listener is a process of another user (Windows names its pid, not a uid).
    OtherUsersProcess {
        /// "the listener at 127.0.0.1:8000".
        target: String,
        /// Its pid.
        pid: u32,
    },
    /// The peer sent something that is not the protocol.
    Malformed {
        /// Agent or address.
        target: String,
        /// What was wrong.
        reason: String,
    },
    /// The peer answered with an error.
    Refused {
        /// Agent or address.
        target: String,
        /// Its message.
        message: String,
    },
    /// An address that is not loopback (vramdeck never talks to the network).
    NotLoopback(String),
    /// Another program answers where an engine should (its route is missing or its answer is
    /// not the engine's): two engines on one default port are told apart this way.
    Unrecognised {
        /// "vLLM at 127.0.0.1:8000".
        target: String,
        /// The route that did not answer as the engine would.
        route: String,
    },
}

impl std::fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            ReleaseError::Directory { path, reason } => {
                crate::t!("err-directory", path = path, reason = reason)
            }
            ReleaseError::Gone(target) => crate::t!("err-gone", target = target),
            ReleaseError::NoSuchAgent(pid) => crate::t!("err-no-such-agent", pid = pid.to_string()),
            ReleaseError::Connect { target, reason } => {
                crate::t!("err-connect", target = target, reason = reason)
            }
            ReleaseError::Timeout { target, seconds } => crate::t!(
                "err-timeout",
                target = target,
                seconds = format!("{seconds:.1}")
            ),
            ReleaseError::Impostor { target, served_by } => {
                crate::t!("err-impostor", target = target, pid = served_by.to_string())
            }
            ReleaseError::Unproven { target, port } => {
                crate::t!("err-unproven", target = target, port = port.to_string())
            }
            ReleaseError::OtherUser { target, uid } => {
                crate::t!("err-other-user", target = target, uid = uid.to_string())
            }
            ReleaseError::OtherUsersProcess { target, pid } => {
                crate::t!(
                    "err-other-users-process",
                    target = target,
                    pid = pid.to_string()
                )
            }
            ReleaseError::Malformed { target, reason } => {
                crate::t!("err-malformed", target = target, reason = reason)
            }
            ReleaseError::Refused { target, message } => {
                crate::t!("err-refused", target = target, message = message)
            }
            ReleaseError::NotLoopback(address) => crate::t!("err-not-loopback", address = address),
            ReleaseError::Unrecognised { target, route } => {
                crate::t!("err-unrecognised", target = target, route = route)
            }
        };
        f.write_str(&text)
    }
}

impl std::error::Error for ReleaseError {}
