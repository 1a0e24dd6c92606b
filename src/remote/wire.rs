//! The JSON that `vramdeck serve` sends and the desktop's remote source reads: one definition
//! for both ends, versioned by [`SCHEMA`] so an old desktop refuses a newer box clearly.

use crate::telemetry::GpuSample;
use serde::{Deserialize, Serialize};

/// The API version every body carries. A change that an older reader would misread gets a
/// new number (and a new `/api/vN/` path).
pub const SCHEMA: &str = "vramdeck.api/1";

/// `GET /api/v1/snapshot`: the newest reading of every GPU on the box.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotBody {
    /// [`SCHEMA`].
    pub schema: String,
    /// The box's name (its hostname, or `serve --name`).
    pub host: String,
    /// When the reading was taken, seconds since the UNIX epoch; `None` before the first one.
    pub time: Option<f64>,
    /// The box's sampling interval, ms: a client polls at this pace and calls the data stale
    /// after three of them.
    pub interval_ms: u64,
    /// Where the box's readings come from ("NVML, driver 580.95.05" or "demo: …").
    pub source: String,
    /// True when the box runs simulated GPUs.
    pub simulated: bool,
    /// The last read error, if the newest read failed.
    pub error: Option<String>,
    /// One entry per GPU.
    pub gpus: Vec<GpuSample>,
}

/// `GET /api/v1/history?since=T`: each GPU's stored readings after `T`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryBody {
    /// [`SCHEMA`].
    pub schema: String,
    /// Per GPU, in snapshot order.
    pub gpus: Vec<GpuHistoryBody>,
}

/// One GPU's readings: `[t, VRAM used MiB, GPU util %, memory util %, temperature °C,
/// power W]`, `null` where the value was not read; raw readings for the last minutes, bucket
/// means further back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpuHistoryBody {
    /// Position in the snapshot.
    pub slot: usize,
    /// Time-ordered points.
    pub points: Vec<[Option<f64>; 6]>,
}

/// `GET /api/v1/agents`: the box's cooperating processes and ComfyUI.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentsBody {
    /// [`SCHEMA`].
    pub schema: String,
    /// Agents that answered.
    pub agents: Vec<AgentBody>,
    /// Agents that did not answer properly, as sentences.
    pub problems: Vec<String>,
    /// ComfyUI's state in words ("running at 127.0.0.1:8188", "not running: …").
    pub comfyui: String,
}

/// One agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentBody {
    /// Its process id (checked against the socket's peer credentials on the box).
    pub pid: u32,
    /// Its process name.
    pub process_name: String,
    /// The workload label its host gave.
    pub label: Option<String>,
    /// Bytes held by tensors.
    pub allocated: Option<u64>,
    /// Bytes held by PyTorch's cache.
    pub reserved: Option<u64>,
    /// Levels it supports ("cache", "unload").
    pub levels: Vec<String>,
}

/// `GET /api/v1/presets`: what fits in each GPU's free memory now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PresetsBody {
    /// [`SCHEMA`].
    pub schema: String,
    /// Per GPU.
    pub gpus: Vec<GpuPresetsBody>,
}

/// The verdicts for one GPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpuPresetsBody {
    /// NVML index.
    pub index: u32,
    /// The margin planned with, percent of each peak.
    pub margin_percent: f32,
    /// One per preset.
    pub verdicts: Vec<VerdictBody>,
}

/// One preset's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerdictBody {
    /// Preset id.
    pub id: String,
    /// Preset name.
    pub name: String,
    /// "fits", "tight" or "will not fit".
    pub fit: String,
    /// Peak planned with, MiB.
    pub peak_mib: u64,
    /// What must be free, MiB.
    pub needs_mib: u64,
    /// Jobs that fit side by side.
    pub max_concurrent: u64,
    /// What to do instead, when it does not fit.
    pub fallback: Option<String>,
}

/// `POST /api/v1/free`: what to release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreeRequestBody {
    /// "cache" or "unload".
    pub level: String,
    /// One agent's pid; every agent (and ComfyUI) when absent.
    #[serde(default)]
    pub pid: Option<u32>,
}

/// `GET /api/v1/free` (and the answer to a POST): the newest Free VRAM on the box.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FreeStatusBody {
    /// [`SCHEMA`].
    pub schema: String,
    /// True while a release runs or waits for a busy ComfyUI.
    pub running: bool,
    /// The result in one line, as the box's own window would show it.
    pub summary: Option<String>,
    /// "released", "nothing", "pending" or "failed".
    pub outcome: Option<String>,
    /// Measured by NVML on the box (used before minus after), bytes.
    pub measured_release: Option<i64>,
    /// When the newest release started, seconds since the UNIX epoch.
    pub started: Option<f64>,
}

/// An error body: every non-2xx answer carries one sentence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// [`SCHEMA`].
    pub schema: String,
    /// What went wrong and what to do.
    pub error: String,
}
