//! The JSON that `vramdeck serve` sends and the desktop's remote source reads: one definition
//! for both ends, versioned by [`SCHEMA`] so an old desktop refuses a newer box clearly.

use super::bounds::{MAX_GPUS_PER_HOST, capped};
use crate::telemetry::GpuSample;
use crate::telemetry::history::Values;
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
    /// One entry per GPU. A reader keeps at most one more than [`MAX_GPUS_PER_HOST`] and
    /// skips the rest unbuilt.
    #[serde(deserialize_with = "capped::<_, _, MAX_GPUS_PER_HOST>")]
    pub gpus: Vec<GpuSample>,
}

/// Readings kept per GPU from one history answer: a day in 10 s buckets is 8,640, ten minutes
/// at 10 Hz raw 6,000.
pub const MAX_HISTORY_POINTS: usize = 20_000;

/// `GET /api/v1/history?since=T`: each GPU's stored readings after `T`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryBody {
    /// [`SCHEMA`].
    pub schema: String,
    /// Per GPU, in snapshot order.
    #[serde(deserialize_with = "capped::<_, _, MAX_GPUS_PER_HOST>")]
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
    #[serde(deserialize_with = "capped::<_, _, MAX_HISTORY_POINTS>")]
    pub points: Vec<HistoryPoint>,
}

/// One reading of the history: `[t, VRAM used MiB, GPU util %, memory util %, temperature °C,
/// power W]` on the wire, `null` for a value not read; 28 bytes in memory (a long answer is
/// read into these, never into generic JSON values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistoryPoint {
    /// Seconds since the UNIX epoch.
    pub time: f64,
    /// The values, `NaN` where not read.
    pub values: Values,
}

impl Serialize for HistoryPoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let number = |v: f32| (!v.is_nan()).then_some(f64::from(v));
        let [a, b, c, d, e] = self.values.0;
        [
            Some(self.time),
            number(a),
            number(b),
            number(c),
            number(d),
            number(e),
        ]
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for HistoryPoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <[Option<f64>; 6]>::deserialize(d)?;
        let time = raw[0].ok_or_else(|| serde::de::Error::custom("a point without a time"))?;
        let v = |i: usize| raw[i].map_or(f32::NAN, |x| x as f32);
        Ok(HistoryPoint {
            time,
            values: Values([v(1), v(2), v(3), v(4), v(5)]),
        })
    }
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
    /// The engines that free over their own API (Ollama, vLLM, …) and what they hold.
    #[serde(default)]
    pub apps: Vec<AppBody>,
    /// Every process holding GPU memory and the app it belongs to ("unmanaged: …" when none).
    #[serde(default)]
    pub holders: Vec<HolderBody>,
}

/// A process holding GPU memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HolderBody {
    /// Its pid.
    pub pid: u32,
    /// Its process name.
    pub name: String,
    /// GPU memory it holds, bytes, where the driver says.
    pub vram: Option<u64>,
    /// The app it belongs to, or what would free it.
    pub app: String,
}

/// An app that unloads over its own API, as the box saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppBody {
    /// "Ollama at 127.0.0.1:11434".
    pub app: String,
    /// What it holds (models, a checkpoint).
    pub holds: Vec<HoldingBody>,
    /// The generation running, if it said.
    pub busy: Option<String>,
    /// Which engine ("vllm", "llama-server", …).
    #[serde(default)]
    pub engine: String,
    /// Put to sleep (vLLM, SGLang).
    #[serde(default)]
    pub asleep: bool,
    /// What the user should know (why a level does nothing, what would free it).
    #[serde(default)]
    pub note: Option<String>,
    /// The process listening for it.
    #[serde(default)]
    pub pid: Option<u32>,
}

/// One thing an app holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldingBody {
    /// "llama3.1:8b".
    pub what: String,
    /// Bytes in VRAM.
    pub vram: u64,
    /// Bytes in host memory.
    pub host: u64,
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
