//! Every app that gives VRAM back over its own HTTP API on this machine, with no agent inside
//! it, behind one shape ([`Engine`]): the LLM servers (Ollama, llama.cpp's llama-server,
//! llama-swap, LM Studio, vLLM, SGLang) and the image WebUIs (Stable Diffusion WebUI / Forge,
//! InvokeAI, SwarmUI). One file per engine says, from that engine's own source, how to find
//! it, what it holds, whether a job runs, and what each level does in it; this module frees,
//! follows and wakes them all the same way, so a release never cuts a running job: an engine
//! at work is asked again when its job has ended.
//!
//! Engines are told apart by what they answer, never by port alone (vLLM and ComfyUI Desktop
//! both default to 8000; llama-server and llama-swap to 8080).

pub mod a1111;
pub mod invokeai;
pub mod llama_server;
pub mod llama_swap;
pub mod lm_studio;
pub mod ollama;
pub mod sglang;
pub mod swarmui;
pub mod vllm;

use super::free::{Follow, PendingRelease, TargetFreed, TargetResult};
use super::local_http::LocalService;
use super::{FreeLevel, ReleaseError};
use crate::units::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Longest one look at an engine takes.
pub const APP_TIMEOUT: Duration = Duration::from_secs(3);

/// Which engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EngineKind {
    /// Ollama.
    Ollama,
    /// Stable Diffusion WebUI (A1111) or Forge.
    A1111,
    /// llama.cpp's `llama-server`, one model or a router of several.
    LlamaServer,
    /// llama-swap, a proxy that starts and stops model servers.
    LlamaSwap,
    /// LM Studio's local server.
    LmStudio,
    /// vLLM's OpenAI-compatible server.
    Vllm,
    /// SGLang's server.
    Sglang,
    /// InvokeAI.
    InvokeAi,
    /// SwarmUI.
    SwarmUi,
}

/// The engines found without an address of their own (`engines = auto`): all but Ollama and
/// the SD WebUI, which have their own settings.
pub const AUTO: [EngineKind; 7] = [
    EngineKind::LlamaServer,
    EngineKind::LlamaSwap,
    EngineKind::LmStudio,
    EngineKind::Vllm,
    EngineKind::Sglang,
    EngineKind::InvokeAi,
    EngineKind::SwarmUi,
];

impl EngineKind {
    /// Its name, for people ("llama.cpp server").
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Ollama => "Ollama",
            EngineKind::A1111 => "Stable Diffusion WebUI",
            EngineKind::LlamaServer => "llama.cpp server",
            EngineKind::LlamaSwap => "llama-swap",
            EngineKind::LmStudio => "LM Studio",
            EngineKind::Vllm => "vLLM",
            EngineKind::Sglang => "SGLang",
            EngineKind::InvokeAi => "InvokeAI",
            EngineKind::SwarmUi => "SwarmUI",
        }
    }

    /// Its key in the `engines` setting ("llama-server=localhost:8081").
    pub fn key(self) -> &'static str {
        match self {
            EngineKind::Ollama => "ollama",
            EngineKind::A1111 => "a1111",
            EngineKind::LlamaServer => "llama-server",
            EngineKind::LlamaSwap => "llama-swap",
            EngineKind::LmStudio => "lm-studio",
            EngineKind::Vllm => "vllm",
            EngineKind::Sglang => "sglang",
            EngineKind::InvokeAi => "invokeai",
            EngineKind::SwarmUi => "swarmui",
        }
    }

    /// The kind a key names.
    pub fn from_key(key: &str) -> Option<EngineKind> {
        [EngineKind::Ollama, EngineKind::A1111]
            .into_iter()
            .chain(AUTO)
            .find(|k| k.key().eq_ignore_ascii_case(key.trim()))
    }

    /// Its default ports.
    pub fn usual_ports(self) -> &'static [u16] {
        match self {
            EngineKind::Ollama => &ollama::USUAL_PORTS,
            EngineKind::A1111 => &a1111::USUAL_PORTS,
            EngineKind::LlamaServer => &llama_server::USUAL_PORTS,
            EngineKind::LlamaSwap => &llama_swap::USUAL_PORTS,
            EngineKind::LmStudio => &lm_studio::USUAL_PORTS,
            EngineKind::Vllm => &vllm::USUAL_PORTS,
            EngineKind::Sglang => &sglang::USUAL_PORTS,
            EngineKind::InvokeAi => &invokeai::USUAL_PORTS,
            EngineKind::SwarmUi => &swarmui::USUAL_PORTS,
        }
    }

    /// What "free cache" and "unload models" do in it, in words (README's table, the tooltip).
    pub fn levels(self) -> String {
        crate::i18n::lookup(&format!("engine-levels-{}", self.key()), &[])
    }

    /// "Empty cache" frees something in it: its cache is what it frees (InvokeAI's model
    /// cache, SwarmUI's backends), which it does without listing what it holds.
    pub fn has_cache_level(self) -> bool {
        matches!(self, EngineKind::SwarmUi | EngineKind::InvokeAi)
    }

    /// The engine at `address` (loopback only).
    pub fn open(self, address: &str) -> Result<EngineHandle, ReleaseError> {
        let service = LocalService::parse(self.name(), address, self.usual_ports())?;
        let engine: Arc<dyn Engine> = match self {
            EngineKind::Ollama => Arc::new(ollama::Ollama::new(service)),
            EngineKind::A1111 => Arc::new(a1111::A1111::new(service)),
            EngineKind::LlamaServer => Arc::new(llama_server::LlamaServer::new(service)),
            EngineKind::LlamaSwap => Arc::new(llama_swap::LlamaSwap::new(service)),
            EngineKind::LmStudio => Arc::new(lm_studio::LmStudio::new(service)),
            EngineKind::Vllm => Arc::new(vllm::Vllm::new(service)),
            EngineKind::Sglang => Arc::new(sglang::Sglang::new(service)),
            EngineKind::InvokeAi => Arc::new(invokeai::InvokeAi::new(service)),
            EngineKind::SwarmUi => Arc::new(swarmui::SwarmUi::new(service)),
        };
        Ok(EngineHandle(engine))
    }
}

/// Something an engine holds: a model, a checkpoint, a model instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    /// "llama3.1:8b", "checkpoint", cleaned for the screen.
    pub what: String,
    /// The name as the engine itself wrote it, for asking the engine about it again (a
    /// cleaned or shortened name is not one the engine knows).
    pub id: String,
    /// Bytes of it in VRAM, when the engine says (0 when it does not).
    pub vram: u64,
    /// Bytes of it in host memory.
    pub host: u64,
}

/// An engine as just seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineStatus {
    /// Which engine.
    pub kind: EngineKind,
    /// "Ollama at 127.0.0.1:11434".
    pub target: String,
    /// What it holds.
    pub holds: Vec<Holding>,
    /// The job running now, if the engine says ("2 requests").
    pub busy: Option<String>,
    /// The engine cannot say whether a job runs: it is never freed to make room for another
    /// app (only when the user asks).
    pub busy_unknown: bool,
    /// Put to sleep (vLLM, SGLang): its memory is given back until it is woken.
    pub asleep: bool,
    /// What the user should know: why a level does nothing here and what would free it.
    pub note: Option<String>,
    /// The process listening for it, when the system says (its GPU processes descend from it).
    pub pid: Option<u32>,
}

impl EngineStatus {
    /// A status with nothing in it yet.
    pub fn new(kind: EngineKind, target: String) -> Self {
        EngineStatus {
            kind,
            target,
            holds: Vec::new(),
            busy: None,
            busy_unknown: false,
            asleep: false,
            note: None,
            pid: None,
        }
    }

    /// Bytes of VRAM it says it holds in all.
    pub fn vram(&self) -> u64 {
        self.holds
            .iter()
            .fold(0u64, |sum, h| sum.saturating_add(h.vram))
    }
}

/// What an engine is waiting for before a release is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// These holdings (by id) must leave: the engine drops each when its request ends.
    Leave(Vec<String>),
    /// A job runs: when it has ended, free at this level.
    JobEnds(FreeLevel),
}

/// What one free did in an engine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Freed {
    /// What it reported.
    pub freed: TargetFreed,
    /// Still to happen: why, and what to wait for.
    pub later: Option<(String, Waiting)>,
    /// It was put to sleep, to be woken when the job that asked has ended.
    pub slept: bool,
}

impl Freed {
    /// Left alone, for this reason.
    pub fn skipped(reason: String) -> Self {
        Freed {
            freed: TargetFreed {
                skipped: Some(reason),
                ..TargetFreed::default()
            },
            ..Freed::default()
        }
    }

    /// Gave back `bytes` (when known), with these notes.
    pub fn gave(bytes: Option<u64>, notes: Vec<String>) -> Self {
        Freed {
            freed: TargetFreed {
                reported: bytes.map(Bytes),
                notes,
                ..TargetFreed::default()
            },
            ..Freed::default()
        }
    }

    /// Waits for a running job to end, then frees at `level`.
    pub fn after_job(reason: String, level: FreeLevel) -> Self {
        Freed {
            later: Some((reason, Waiting::JobEnds(level))),
            ..Freed::default()
        }
    }
}

/// One engine: found on loopback, read, freed at a level, woken.
pub trait Engine: Send + Sync + std::fmt::Debug {
    /// Which engine.
    fn kind(&self) -> EngineKind;

    /// Its HTTP API.
    fn service(&self) -> &LocalService;

    /// What it holds and whether it works; [`ReleaseError::Connect`] when it is not running
    /// and [`ReleaseError::Unrecognised`] when another program answers at its address.
    fn status(&self) -> Result<EngineStatus, ReleaseError>;

    /// Frees at `level`, given what it held a moment ago. Only called for an engine that is
    /// idle, has no note (a level that cannot work there) and, at the cache level, has one
    /// (see [`EngineHandle::free`]).
    fn free_idle(&self, level: FreeLevel, status: &EngineStatus) -> Result<Freed, ReleaseError>;

    /// Why "empty cache" leaves it alone, or `None` where that level frees something.
    fn no_cache_level(&self) -> Option<String> {
        let kind = self.kind();
        (!kind.has_cache_level()).then(|| crate::t!("app-no-cache-level", app = kind.name()))
    }

    /// Gives back what sleep took (vLLM's `wake_up`, SGLang's resume); `Ok(false)` for an
    /// engine that reloads by itself on its next request.
    fn wake(&self) -> Result<bool, ReleaseError> {
        Ok(false)
    }
}

/// A shared engine; two are equal when they are the same kind at the same address.
#[derive(Clone, Debug)]
pub struct EngineHandle(pub Arc<dyn Engine>);

impl PartialEq for EngineHandle {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.service() == other.0.service()
    }
}

impl std::ops::Deref for EngineHandle {
    type Target = dyn Engine;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl EngineHandle {
    /// "vLLM at 127.0.0.1:8000".
    pub fn target(&self) -> String {
        self.service().target()
    }

    /// Its name for people.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Its status with the listener's pid filled in.
    pub fn look(&self) -> Result<EngineStatus, ReleaseError> {
        let mut status = self.status()?;
        status.pid = self.service().listener_pid();
        Ok(status)
    }

    /// Frees at `level`; a release waiting for a job comes back pending, and `true` when the
    /// engine was put to sleep. Unless the user named this engine (`careful` false), an engine
    /// that cannot say whether it is at work is left alone.
    pub fn free(
        &self,
        level: FreeLevel,
        careful: bool,
    ) -> (TargetResult, Option<PendingRelease>, bool) {
        let status = self.status();
        // Named where it answered (the status found it), not by the address as given.
        let target = self.target();
        let result = |outcome| TargetResult {
            target: target.clone(),
            outcome,
        };
        let status = match status {
            Ok(s) => s,
            Err(e) => return (result(Err(e)), None, false),
        };
        let freed = match &status.busy {
            None if careful && status.busy_unknown => Ok(Freed::skipped(crate::t!(
                "engine-busy-unknown",
                app = self.name()
            ))),
            // Never in the middle of a job: asked again when it has ended.
            Some(job) => Ok(Freed::after_job(
                crate::t!("engine-after-job", app = self.name(), job = job.clone()),
                level,
            )),
            None => self.free_now(level, &status),
        };
        match freed {
            Ok(f) => {
                let pending = f.later.map(|(reason, waiting)| PendingRelease {
                    target: target.clone(),
                    reason,
                    follow: Follow::Engine {
                        engine: self.clone(),
                        waiting,
                    },
                });
                (result(Ok(f.freed)), pending, f.slept)
            }
            Err(e) => (result(Err(e)), None, false),
        }
    }

    /// Frees an idle engine at `level`: what it cannot do there (its note, a cache level it
    /// lacks) is said, and the engine is not asked.
    fn free_now(&self, level: FreeLevel, status: &EngineStatus) -> Result<Freed, ReleaseError> {
        if let Some(note) = &status.note {
            return Ok(Freed::skipped(note.clone()));
        }
        if level == FreeLevel::Cache
            && let Some(why) = self.no_cache_level()
        {
            return Ok(Freed::skipped(why));
        }
        self.free_idle(level, status)
    }

    /// One look at a deferred release: `Ok(true)` once it happened. An engine whose job ended
    /// is freed now.
    pub fn follow(&self, waiting: &Waiting) -> Result<bool, ReleaseError> {
        let status = self.status()?;
        match waiting {
            Waiting::Leave(ids) => Ok(!status.holds.iter().any(|h| ids.contains(&h.id))),
            Waiting::JobEnds(_) if status.busy.is_some() => Ok(false),
            Waiting::JobEnds(level) => match self.free_now(*level, &status)?.later {
                // Its own release may wait in turn (a model still answering): followed on.
                Some((_, Waiting::Leave(ids))) => {
                    Ok(!self.status()?.holds.iter().any(|h| ids.contains(&h.id)))
                }
                _ => Ok(true),
            },
        }
    }
}

/// The engines configured: Ollama's and the SD WebUI's own addresses ("none" turns one off),
/// and `engines`: "auto" (every other engine at its default ports), "none", or a list such as
/// "vllm=127.0.0.1:8001, llama-server=localhost:8081"; a sentence for each unusable entry.
pub fn configured(ollama: &str, a1111: &str, engines: &str) -> (Vec<EngineHandle>, Vec<String>) {
    let (mut found, mut problems) = (Vec::new(), Vec::new());
    let off = |a: &str| a.trim().is_empty() || a.trim().eq_ignore_ascii_case("none");
    let add =
        |kind: EngineKind, address: &str, found: &mut Vec<_>, problems: &mut Vec<_>| match kind
            .open(address)
        {
            Ok(e) => found.push(e),
            Err(e) => problems.push(e.to_string()),
        };
    if !off(ollama) {
        add(EngineKind::Ollama, ollama, &mut found, &mut problems);
    }
    if !off(a1111) {
        add(EngineKind::A1111, a1111, &mut found, &mut problems);
    }
    let engines = engines.trim();
    if engines.eq_ignore_ascii_case("auto") {
        for kind in AUTO {
            add(kind, "localhost", &mut found, &mut problems);
        }
    } else if !off(engines) {
        for entry in engines.split(',').filter(|e| !e.trim().is_empty()) {
            let (key, address) = entry.split_once('=').unwrap_or((entry, "localhost"));
            match EngineKind::from_key(key) {
                Some(kind) => add(kind, address.trim(), &mut found, &mut problems),
                None => problems.push(crate::t!(
                    "engine-unknown",
                    name = crate::text::sanitized(key.trim()),
                    known = AUTO.iter().map(|k| k.key()).collect::<Vec<_>>().join(", ")
                )),
            }
        }
    }
    (found, problems)
}

/// True when an error means the engine is simply not there (nothing listens, or another
/// program does): not worth a word when every engine was asked.
pub fn not_there(error: &ReleaseError) -> bool {
    matches!(
        error,
        ReleaseError::Connect { .. } | ReleaseError::Unrecognised { .. }
    )
}

/// Decodes an engine's JSON answer, or says which route did not answer as the engine would.
pub fn decode<T: serde::de::DeserializeOwned>(
    service: &LocalService,
    route: &str,
    body: &[u8],
) -> Result<T, ReleaseError> {
    serde_json::from_slice(body).map_err(|_| unrecognised(service, route))
}

/// Another program answers where the engine should: its route is missing or its answer is not
/// the engine's.
pub fn unrecognised(service: &LocalService, route: &str) -> ReleaseError {
    ReleaseError::Unrecognised {
        target: service.target(),
        route: route.to_string(),
    }
}

/// A missing route (HTTP 404/405/501) reads as "another program answers here".
pub fn recognised<T>(
    service: &LocalService,
    route: &str,
    answer: Result<T, ReleaseError>,
) -> Result<T, ReleaseError> {
    answer.map_err(|e| match e {
        ReleaseError::Malformed { ref reason, .. } if is_missing_route(reason) => {
            unrecognised(service, route)
        }
        e => e,
    })
}

/// True for the reason [`LocalService`] gives for a route the server does not have.
pub fn is_missing_route(reason: &str) -> bool {
    ["HTTP 404", "HTTP 405", "HTTP 501"].contains(&reason)
}

/// A model or instance name cleaned and shortened for the screen.
pub fn shown_name(name: &str) -> String {
    crate::text::sanitized(name).chars().take(200).collect()
}

/// Longest model name kept to send back to an engine.
pub const MAX_NAME_BYTES: usize = 4096;

/// Most models listed per engine: more than any machine loads at once.
pub const MAX_MODELS: usize = 64;

/// A holding as the engine named it: an overlong id is kept empty (never sent back).
pub fn holding(id: &str, vram: u64, host: u64) -> Holding {
    Holding {
        what: shown_name(id),
        id: if id.len() > MAX_NAME_BYTES {
            String::new()
        } else {
            id.to_string()
        },
        vram,
        host,
    }
}

/// `text` as one path segment or query value: every byte but the unreserved ones escaped.
pub fn encode_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Largest JSON answer read from an engine's status routes.
pub const MAX_STATUS_BYTES: u64 = 1 << 20;

/// `GET route` on `service`, decoded; a missing route reads as another program.
pub fn get_json<T: serde::de::DeserializeOwned>(
    service: &LocalService,
    route: &str,
) -> Result<T, ReleaseError> {
    let answer = service.get(route, APP_TIMEOUT, MAX_STATUS_BYTES);
    let body = recognised(service, route, answer)?;
    decode(service, route, &body)
}

/// `POST route` with a JSON `body` on `service`, decoded; a missing route reads as another
/// program.
pub fn post_json<T: serde::de::DeserializeOwned>(
    service: &LocalService,
    route: &str,
    body: &str,
) -> Result<T, ReleaseError> {
    let answer = service.post_json(route, body, APP_TIMEOUT, MAX_STATUS_BYTES);
    let body = recognised(service, route, answer)?;
    decode(service, route, &body)
}

/// How many slots of a llama-server answer are at work (`is_processing`), from `GET /slots`
/// (server-context.cpp, `server_slot::to_json`).
pub fn slots_processing(slots: &[serde_json::Value]) -> usize {
    slots
        .iter()
        .filter(|s| s.get("is_processing").and_then(|v| v.as_bool()) == Some(true))
        .count()
}
