//! Releasing cached VRAM: agents inside inference processes (a Unix socket each) and ComfyUI's
//! own HTTP API on loopback. Every call has a timeout; nothing here listens on a network address.

pub mod client;
pub mod comfyui;
pub mod discovery;
pub mod free;
pub mod protocol;
pub mod worker;

use serde::{Deserialize, Serialize};

/// How much to release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FreeLevel {
    /// gc.collect + torch.cuda.empty_cache + ipc_collect: models stay loaded.
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
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ReleaseError {
    /// The agent directory is unsafe or unreadable.
    #[error("agent directory {path}: {reason}")]
    Directory {
        /// The directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Nobody listens on the socket any more (the process exited or crashed).
    #[error("agent {0} is gone (its process has exited)")]
    Gone(String),
    /// Connecting failed for another reason.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// Agent or address.
        target: String,
        /// The OS error.
        reason: String,
    },
    /// No answer in time: the peer is hung or busy.
    #[error("{target} did not answer within {seconds:.1} s (hung or busy)")]
    Timeout {
        /// Agent or address.
        target: String,
        /// The limit.
        seconds: f64,
    },
    /// The peer belongs to another user.
    #[error("{target} belongs to another user (uid {uid}); refusing to talk to it")]
    OtherUser {
        /// Agent.
        target: String,
        /// The peer's uid.
        uid: u32,
    },
    /// The peer sent something that is not the protocol.
    #[error("{target} sent a malformed reply: {reason}")]
    Malformed {
        /// Agent or address.
        target: String,
        /// What was wrong.
        reason: String,
    },
    /// The peer answered with an error.
    #[error("{target} refused: {message}")]
    Refused {
        /// Agent or address.
        target: String,
        /// Its message.
        message: String,
    },
    /// An address that is not loopback (vramdeck never talks to the network).
    #[error("{0} is not a loopback address; vramdeck only talks to this machine")]
    NotLoopback(String),
}
