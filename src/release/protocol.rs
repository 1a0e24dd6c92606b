//! The agent protocol, version 1: JSON lines over a Unix socket (see packaging/python/PROTOCOL.md).

use super::FreeLevel;
use crate::text;
use serde::{Deserialize, Serialize};

/// Protocol version spoken here.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest line either side accepts.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A request line.
#[derive(Debug, Serialize)]
pub struct Request {
    /// Protocol version.
    pub v: u32,
    /// Echoed in the reply.
    pub id: u64,
    /// "hello" or "free".
    pub op: &'static str,
    /// For "free".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<FreeLevel>,
    /// For "need_answer": the need answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need: Option<u64>,
    /// For "need_answer": whether there is room now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted: Option<bool>,
    /// For "need_answer": what vramdeck did, for the app's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For "hello": what vramdeck does when this app asks for room, so an app need not ask
    /// (and wait) while making room is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<super::arbiter::RoomPolicy>,
}

impl Request {
    /// The request as one line, newline included.
    pub fn encode(&self) -> Vec<u8> {
        encode_line(self)
    }
}

/// Any message as one JSON line, newline included (requests and the handshake's lines).
pub fn encode_line(message: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}

/// PyTorch's view of the process's memory, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TorchMemory {
    /// `torch.cuda.memory_allocated()`.
    pub allocated: u64,
    /// `torch.cuda.memory_reserved()`.
    pub reserved: u64,
}

/// The application an agent lives in, as it describes itself (ComfyUI reports its HTTP port,
/// so its agent and its HTTP endpoint are recognised as one process).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct AppInfo {
    /// "ComfyUI", …
    #[serde(deserialize_with = "text::safe_string")]
    pub name: String,
    /// The port its own HTTP API listens on, if it has one.
    pub port: Option<u16>,
    /// The address it listens on, as it was configured.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub address: Option<String>,
    /// Models it holds loaded now (ComfyUI), when it says.
    pub models_loaded: Option<u32>,
    /// Bytes those models occupy on the device.
    pub models_bytes: Option<u64>,
    /// ComfyUI runs with Dynamic VRAM (comfy-aimdo): idle models' weights sit in aimdo's own
    /// VRAM buffer, which `cache` does not empty and aimdo yields under pressure by itself.
    pub dynamic_vram: Option<bool>,
    /// "gpu" or "cpu" (ComfyUI started with --cpu: no VRAM to give back).
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub device: Option<String>,
}

/// An onnxruntime session the agent can see in its process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct OnnxSession {
    /// The model file's name ("inswapper_128_fp16.onnx").
    #[serde(deserialize_with = "text::safe_string")]
    pub model: String,
    /// Its execution providers, in precedence order.
    #[serde(deserialize_with = "text::safe_strings")]
    pub providers: Vec<String>,
    /// The provider that puts it on a GPU, if one does.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub gpu_provider: Option<String>,
    /// Its GPU provider's memory options, as onnxruntime reports them.
    pub arena: Option<OnnxArena>,
    /// Runs under way in it now.
    pub runs_in_flight: u32,
    /// Whether `cache` can build it again (which returns its arena).
    pub rebuildable: bool,
}

/// A GPU provider's memory options (strings, as onnxruntime's `get_provider_options` gives them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct OnnxArena {
    /// The device.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub device_id: Option<String>,
    /// "kNextPowerOfTwo" (grows by doubling) or "kSameAsRequested".
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub arena_extend_strategy: Option<String>,
    /// The arena's cap in bytes (onnxruntime's "no limit" is u64::MAX).
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub gpu_mem_limit: Option<String>,
}

impl OnnxSession {
    /// "inswapper_128_fp16.onnx on CUDA (device 0, arena kNextPowerOfTwo, no limit)".
    pub fn describe(&self) -> String {
        let place = match &self.gpu_provider {
            Some(p) => p.trim_end_matches("ExecutionProvider").to_string(),
            None => self
                .providers
                .first()
                .map(|p| p.trim_end_matches("ExecutionProvider").to_string())
                .unwrap_or_else(|| "?".into()),
        };
        let mut details = Vec::new();
        if let Some(a) = &self.arena {
            if let Some(d) = &a.device_id {
                details.push(format!("device {d}"));
            }
            if let Some(s) = &a.arena_extend_strategy {
                details.push(format!("arena {s}"));
            }
            match a.gpu_mem_limit.as_deref().map(str::parse::<u64>) {
                Some(Ok(u64::MAX)) => details.push("no limit".into()),
                Some(Ok(limit)) => details.push(format!(
                    "limit {}",
                    crate::units::MemoryUnit::MiB.format(crate::units::Bytes(limit))
                )),
                Some(Err(_)) | None => {}
            }
        }
        if self.runs_in_flight > 0 {
            details.push(format!("{} running", self.runs_in_flight));
        }
        if self.gpu_provider.is_some() && !self.rebuildable {
            details.push("not rebuilt at cache".into());
        }
        match details.is_empty() {
            true => format!("{} on {place}", self.model),
            false => format!("{} on {place} ({})", self.model, details.join(", ")),
        }
    }
}

/// What onnxruntime holds in an agent's process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct OnnxInfo {
    /// onnxruntime's version.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub version: Option<String>,
    /// The sessions it has built.
    pub sessions: Vec<OnnxSession>,
}

impl OnnxInfo {
    /// "onnxruntime 1.28.0: 3 sessions (3 on CUDA)".
    pub fn summary(&self) -> String {
        let on_gpu: Vec<&str> = self
            .sessions
            .iter()
            .filter_map(|s| s.gpu_provider.as_deref())
            .collect();
        let mut text = format!(
            "onnxruntime {}: {}",
            self.version.as_deref().unwrap_or("?"),
            crate::units::count(self.sessions.len() as u64, "session", "sessions")
        );
        if let Some(first) = on_gpu.first() {
            let short = first.trim_end_matches("ExecutionProvider");
            text.push_str(&format!(" ({} on {short})", on_gpu.len()));
        }
        text
    }
}

/// What each level does in an agent's process, in its own words, shown before a click.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct LevelsSay {
    /// What `cache` does there.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub cache: Option<String>,
    /// What `unload` does there.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub unload: Option<String>,
}

impl LevelsSay {
    /// The words for `level`, if the agent gave any.
    pub fn get(&self, level: FreeLevel) -> Option<&str> {
        match level {
            FreeLevel::Cache => self.cache.as_deref(),
            FreeLevel::Unload => self.unload.as_deref(),
        }
    }
}

/// What an agent's cache release did to onnxruntime sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct OnnxRebuilt {
    /// Sessions built again (their arenas went back).
    #[serde(deserialize_with = "text::safe_strings")]
    pub rebuilt: Vec<String>,
    /// Sessions left alone, each with why ("swapper.onnx (running)").
    #[serde(deserialize_with = "text::safe_strings")]
    pub skipped: Vec<String>,
}

/// What an agent says about itself. Every text field is sanitised as it is decoded: it comes
/// from another process and ends up on terminals and in the window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct AgentInfo {
    /// Its process id, as it says (the socket's peer credentials are what vramdeck trusts).
    pub pid: u32,
    /// Its process name.
    #[serde(deserialize_with = "text::safe_string")]
    pub process_name: String,
    /// Workload label given by the application.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub label: Option<String>,
    /// Agent package version.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub agent_version: Option<String>,
    /// torch version, if torch is loaded.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub torch: Option<String>,
    /// Why torch is unavailable, if it is.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub torch_missing_reason: Option<String>,
    /// CUDA device in use.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub device: Option<String>,
    /// Bytes allocated by tensors.
    pub allocated: Option<u64>,
    /// Bytes held by PyTorch's cache (allocated + cached).
    pub reserved: Option<u64>,
    /// Levels this agent supports.
    #[serde(deserialize_with = "text::safe_strings")]
    pub levels: Vec<String>,
    /// A release still under way (an unload the host performs later), in words.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub pending: Option<String>,
    /// The application it lives in, when it says.
    pub app: Option<AppInfo>,
    /// onnxruntime's sessions, when onnxruntime is loaded there.
    pub onnxruntime: Option<OnnxInfo>,
    /// What each level does there (agents from 0.3 on).
    pub does: Option<LevelsSay>,
    /// Room the host asked for before a job (`agent.need`), while it waits.
    pub need: Option<Need>,
    /// The last out-of-memory failure the host reported.
    pub oom: Option<Oom>,
    /// The need whose job runs now, after vramdeck made room for it (agents from 0.6 on):
    /// gone when the job has ended, and what engines lent for it may be handed back.
    pub room_job: Option<u64>,
}

/// Room asked for before a job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Need {
    /// Which request (answered by id).
    pub id: u64,
    /// Bytes of free VRAM the job needs. Any JSON number is read (a negative one as 0, one
    /// past `u64` as `u64::MAX`), so a bad amount is refused in words instead of making the
    /// agent's whole status unreadable.
    #[serde(deserialize_with = "amount")]
    pub bytes: u64,
    /// Bytes free when it asked, as the driver counted them there.
    #[serde(deserialize_with = "opt_amount")]
    pub free: Option<u64>,
    /// The size of the asker's GPU as its driver counts it (torch's `mem_get_info`), so a
    /// need larger than the card is refused even where NVML cannot be read.
    #[serde(
        deserialize_with = "opt_amount",
        skip_serializing_if = "Option::is_none"
    )]
    pub total: Option<u64>,
    /// The job, in the host's words.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub what: Option<String>,
    /// A preset named instead of an amount (`bytes` 0): vramdeck counts what its job needs.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub preset: Option<String>,
}

impl Need {
    /// Bytes missing when it asked.
    pub fn short_by(&self) -> u64 {
        self.bytes.saturating_sub(self.free.unwrap_or(0))
    }
}

/// A byte count from any JSON number: whole and within `u64`, else clamped (negative and
/// not-a-number to 0, too large to `u64::MAX`).
fn to_amount(value: f64) -> u64 {
    if value.is_nan() || value <= 0.0 {
        0
    } else if value >= u64::MAX as f64 {
        u64::MAX
    } else {
        value as u64
    }
}

/// An exact `u64` when the number is one, else [`to_amount`] of it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Whole(u64),
    Other(f64),
}

fn amount<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(match Option::<Number>::deserialize(d).unwrap_or(None) {
        Some(Number::Whole(n)) => n,
        Some(Number::Other(x)) => to_amount(x),
        None => 0,
    })
}

fn opt_amount<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Number>::deserialize(d).unwrap_or(None) {
        Some(Number::Whole(n)) => Some(n),
        Some(Number::Other(x)) if x.is_finite() && x >= 0.0 => Some(to_amount(x)),
        _ => None,
    })
}

/// Seconds as the agent writes them (a float), kept whole: an agent's clock needs no more.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let seconds = f64::deserialize(d)?;
    Ok(if seconds.is_finite() && seconds > 0.0 {
        seconds.min(u64::MAX as f64) as u64
    } else {
        0
    })
}

/// An out-of-memory failure, as the host reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Oom {
    /// PyTorch's first line ("CUDA out of memory. Tried to allocate 2.00 GiB …").
    #[serde(deserialize_with = "text::safe_string")]
    pub message: String,
    /// When (UNIX seconds, whole).
    #[serde(deserialize_with = "whole_seconds")]
    pub at: u64,
    /// torch's allocated bytes then.
    pub allocated: Option<u64>,
    /// torch's reserved bytes then.
    pub reserved: Option<u64>,
    /// Free bytes on the GPU then.
    pub free: Option<u64>,
}

/// What a free did.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Freed {
    /// Level performed.
    #[serde(deserialize_with = "text::safe_string")]
    pub level: String,
    /// Memory before.
    pub before: Option<TorchMemory>,
    /// Memory after.
    pub after: Option<TorchMemory>,
    /// Drop in reserved memory: what went back to the driver.
    pub released_bytes: Option<u64>,
    /// Time the agent spent.
    pub duration_ms: f64,
    /// Unload hooks that ran.
    #[serde(deserialize_with = "text::safe_strings")]
    pub hooks_run: Vec<String>,
    /// Unload hooks that failed, with their errors.
    #[serde(deserialize_with = "text::safe_strings")]
    pub hook_errors: Vec<String>,
    /// Set when the host will finish the release later (an unload deferred to the end of the
    /// running job): what it said.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub pending: Option<String>,
    /// How many requests this one run served (the agent coalesces frees).
    pub shared_by: Option<u32>,
    /// onnxruntime sessions rebuilt or skipped, when the process has any.
    pub onnx: Option<OnnxRebuilt>,
}

/// A reply line.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Reply {
    /// Protocol version.
    pub v: u32,
    /// The request's id.
    pub id: Option<u64>,
    /// Success.
    pub ok: bool,
    /// The error when not ok.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub error: Option<String>,
    /// For hello/status.
    pub agent: Option<AgentInfo>,
    /// For free.
    pub freed: Option<Freed>,
}

/// Decodes a reply line; the error says what was wrong in words.
pub fn decode_reply(line: &[u8], expected_id: u64) -> Result<Reply, String> {
    if line.len() > MAX_MESSAGE_BYTES {
        return Err(format!("reply longer than {MAX_MESSAGE_BYTES} bytes"));
    }
    let text = std::str::from_utf8(line).map_err(|_| "reply is not UTF-8".to_string())?;
    // serde would also accept a JSON array as a struct; the protocol only has objects.
    if !text.trim_start().starts_with('{') {
        return Err("not a JSON object".into());
    }
    let reply: Reply =
        serde_json::from_str(text).map_err(|e| format!("not protocol JSON ({e})"))?;
    if reply.v != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} (vramdeck speaks {PROTOCOL_VERSION})",
            reply.v
        ));
    }
    if reply.ok && reply.id != Some(expected_id) {
        return Err(format!(
            "reply to request {:?}, expected {expected_id}",
            reply.id
        ));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_amount_an_agent_sends_is_read_and_never_spoils_its_status() {
        let read = |bytes: &str| -> Need {
            serde_json::from_str(&format!(
                r#"{{"id":1,"bytes":{bytes},"free":{bytes},"total":{bytes},"what":"x"}}"#
            ))
            .unwrap()
        };
        assert_eq!(read("1048576").bytes, 1 << 20);
        assert_eq!(read("-1").bytes, 0);
        assert_eq!(read("-1").free, None);
        assert_eq!(read("18446744073709551616").bytes, u64::MAX);
        assert_eq!(read("1e30").bytes, u64::MAX);
        assert_eq!(read("1e30").total, Some(u64::MAX));
        assert_eq!(read("2.5").bytes, 2);
        assert_eq!(read(r#""lots""#).bytes, 0);
        assert_eq!(read("null").free, None);
        assert_eq!(read("[1]").bytes, 0);
    }

    #[test]
    fn requests_are_single_json_lines() {
        let line = Request {
            v: 1,
            id: 3,
            op: "free",
            level: Some(FreeLevel::Unload),
            need: None,
            granted: None,
            message: None,
            room: None,
        }
        .encode();
        assert_eq!(
            line,
            b"{\"v\":1,\"id\":3,\"op\":\"free\",\"level\":\"unload\"}\n"
        );
        let hello = Request {
            v: 1,
            id: 1,
            op: "hello",
            level: None,
            need: None,
            granted: None,
            message: None,
            room: None,
        }
        .encode();
        assert_eq!(hello, b"{\"v\":1,\"id\":1,\"op\":\"hello\"}\n");
        let answer = Request {
            v: 1,
            id: 4,
            op: "need_answer",
            level: None,
            need: Some(7),
            granted: Some(true),
            message: Some("made room".into()),
            room: None,
        }
        .encode();
        assert_eq!(
            answer,
            b"{\"v\":1,\"id\":4,\"op\":\"need_answer\",\"need\":7,\"granted\":true,\"message\":\"made room\"}\n"
        );
    }

    #[test]
    fn replies_decode_and_unknown_fields_are_ignored() {
        let line = br#"{"v":1,"id":2,"ok":true,"future":1,"freed":{"level":"cache","released_bytes":10,"duration_ms":1.5,"hooks_run":[],"hook_errors":[]}}"#;
        let reply = decode_reply(line, 2).unwrap();
        assert_eq!(reply.freed.unwrap().released_bytes, Some(10));
    }

    #[test]
    fn text_from_the_agent_is_sanitised_as_it_is_decoded() {
        let line = br#"{"v":1,"id":1,"ok":true,"agent":{"pid":7,"process_name":"py\u001b]0;owned\u0007","label":"a\u202eb","levels":["cache\u001b[2J"],"app":{"name":"Comfy\u0007UI","port":8188}}}"#;
        let info = decode_reply(line, 1).unwrap().agent.unwrap();
        assert_eq!(info.process_name, "py\\u{1b}]0;owned\\u{7}");
        assert_eq!(info.label.as_deref(), Some("a\\u{202e}b"));
        assert_eq!(info.levels, vec!["cache\\u{1b}[2J".to_string()]);
        assert_eq!(info.app.unwrap().name, "Comfy\\u{7}UI");
        let refused = br#"{"v":1,"id":1,"ok":false,"error":"\u001b[31mred"}"#;
        assert_eq!(
            decode_reply(refused, 1).unwrap().error.as_deref(),
            Some("\\u{1b}[31mred")
        );
    }

    #[test]
    fn onnxruntime_sessions_and_level_words_decode_sanitised() {
        // The shape vramdeck_agent 0.3 sends from FaceFusion (packaging/python/tests).
        let line = br#"{"v":1,"id":1,"ok":true,"agent":{"pid":7,"process_name":"python3","onnxruntime":{"version":"1.28.0","available_providers":["CUDAExecutionProvider"],"sessions":[{"model":"inswapper_128_fp16.onnx","providers":["CUDAExecutionProvider","CPUExecutionProvider"],"gpu_provider":"CUDAExecutionProvider","arena":{"arena_extend_strategy":"kNextPowerOfTwo"},"runs_in_flight":0,"rebuildable":true},{"model":"x\u001b[2J.onnx","providers":["CPUExecutionProvider"],"gpu_provider":null}]},"does":{"cache":"2 sessions rebuilt","unload":"pools emptied\u0007"}}}"#;
        let info = decode_reply(line, 1).unwrap().agent.unwrap();
        let onnx = info.onnxruntime.unwrap();
        assert_eq!(onnx.summary(), "onnxruntime 1.28.0: 2 sessions (1 on CUDA)");
        assert_eq!(onnx.sessions[1].model, "x\\u{1b}[2J.onnx");
        assert_eq!(
            onnx.sessions[0].describe(),
            "inswapper_128_fp16.onnx on CUDA (arena kNextPowerOfTwo)"
        );
        assert_eq!(onnx.sessions[1].describe(), "x\\u{1b}[2J.onnx on CPU");
        let does = info.does.unwrap();
        assert_eq!(does.get(FreeLevel::Cache), Some("2 sessions rebuilt"));
        assert_eq!(does.get(FreeLevel::Unload), Some("pools emptied\\u{7}"));
        let freed = br#"{"v":1,"id":2,"ok":true,"freed":{"level":"cache","onnx":{"rebuilt":["a.onnx"],"skipped":["b.onnx (running)"],"errors":[]}}}"#;
        let onnx = decode_reply(freed, 2).unwrap().freed.unwrap().onnx.unwrap();
        assert_eq!(onnx.rebuilt, vec!["a.onnx".to_string()]);
        assert_eq!(onnx.skipped, vec!["b.onnx (running)".to_string()]);
    }

    #[test]
    fn garbage_is_described_not_panicked_on() {
        for (line, expect) in [
            (&b"\xff\xfe"[..], "not UTF-8"),
            (b"hello", "not a JSON object"),
            (b"[]", "not a JSON object"),
            (b"{\"v\":", "not protocol JSON"),
            (br#"{"v":9,"ok":true}"#, "protocol version 9"),
            (br#"{"v":1,"id":5,"ok":true}"#, "expected 2"),
        ] {
            let err = decode_reply(line, 2).unwrap_err();
            assert!(err.contains(expect), "{err}");
        }
        assert!(decode_reply(&vec![b' '; MAX_MESSAGE_BYTES + 1], 1).is_err());
    }
}
