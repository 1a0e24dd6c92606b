//! One "Free VRAM" action: ask agents (and ComfyUI) to release memory, and measure with NVML
//! what actually came back, so the user sees both "reported" and "measured".
//!
//! Agents are asked all at once; one that does not answer `hello` is not sent `free`. A release
//! the host defers (ComfyUI unloads only between prompts) is reported as pending and followed
//! with [`Follower`] until it has happened, and only then measured.

use super::comfyui::ComfyUi;
use super::discovery::{self, AgentDir, Endpoint, LiveAgent};
use super::{FreeLevel, ReleaseError, client::AgentClient};
use crate::telemetry::GpuSource;
use crate::telemetry::sampler::{SharedTelemetry, lock};
use crate::units::{Bytes, MemoryUnit, group_thousands};
use std::time::{Duration, Instant, SystemTime};

/// How long connecting and hello may take per agent.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an agent's free (its unload hooks included) may take.
pub const FREE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one exchange with ComfyUI's HTTP API may take.
pub const COMFY_TIMEOUT: Duration = Duration::from_secs(3);
/// How long to watch NVML for the drop after the release happened (ComfyUI's worker unloads
/// asynchronously, after its `/free` has already returned).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a deferred release is followed before vramdeck stops waiting for it.
pub const FOLLOW_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Reads total VRAM used across GPUs, as fresh as asked.
pub trait UsedMemoryProbe: Send {
    /// VRAM used on all GPUs by a reading taken at or after `not_before`; `None` if unknown.
    /// A simulated GPU is never a measurement: it answers `None`.
    fn used_since(&mut self, not_before: SystemTime) -> Option<Bytes>;

    /// VRAM free for process `pid` on its GPU, counting what it holds itself (it may reuse
    /// that), by the newest reading; `None` when unknown.
    fn free_for(&mut self, _pid: u32) -> Option<u64> {
        None
    }

    /// The GPU process `pid` works on, by the newest reading (see [`gpu_of_process`]).
    fn gpu_of(&mut self, _pid: u32) -> GpuOf {
        GpuOf::Unknown
    }
}

/// Where a process works, as the newest reading shows it: what making room for it may touch.
#[derive(Clone, Debug, PartialEq)]
pub enum GpuOf {
    /// No reading to tell (no NVML, simulated GPUs).
    Unknown,
    /// The GPU that lists it, or the machine's only GPU.
    Found {
        /// Its index.
        index: u32,
        /// Its size, bytes.
        total: u64,
        /// The processes holding memory there, when the machine has other GPUs as well
        /// (`None`: it has one GPU, so everyone is on it).
        holders: Option<Vec<u32>>,
    },
    /// Several GPUs and none lists it (it holds no memory yet).
    Unlisted,
}

/// [`GpuOf`] for `pid` in `gpus`.
pub fn gpu_of_process(gpus: &[crate::telemetry::GpuSample], pid: u32) -> GpuOf {
    let listing = gpus
        .iter()
        .find(|g| g.processes.iter().any(|p| p.pid == pid));
    match (listing, gpus) {
        (_, []) => GpuOf::Unknown,
        (Some(gpu), [_]) | (None, [gpu]) => GpuOf::Found {
            index: gpu.index,
            total: gpu.memory.total.0,
            holders: None,
        },
        (Some(gpu), _) => GpuOf::Found {
            index: gpu.index,
            total: gpu.memory.total.0,
            holders: Some(gpu.processes.iter().map(|p| p.pid).collect()),
        },
        (None, _) => GpuOf::Unlisted,
    }
}

/// Free VRAM for `pid` in `gpus`: on the GPU that lists it, plus what it holds there; on the
/// only GPU when none lists it (a driver that hides processes, a container).
pub fn free_for_process(gpus: &[crate::telemetry::GpuSample], pid: u32) -> Option<u64> {
    let holding = gpus
        .iter()
        .find_map(|g| Some((g, g.processes.iter().find(|p| p.pid == pid)?)));
    match (holding, gpus) {
        (Some((gpu, process)), _) => Some(
            gpu.memory
                .free
                .0
                .saturating_add(process.used.map_or(0, |b| b.0)),
        ),
        (None, [only]) => Some(only.memory.free.0),
        (None, _) => None,
    }
}

fn used_of(gpus: &[crate::telemetry::GpuSample]) -> Bytes {
    Bytes(
        gpus.iter()
            .fold(0u64, |sum, g| sum.saturating_add(g.memory.used.0)),
    )
}

impl UsedMemoryProbe for Box<dyn GpuSource> {
    fn used_since(&mut self, _not_before: SystemTime) -> Option<Bytes> {
        if self.kind().is_simulated() {
            return None;
        }
        self.sample().ok().map(|gpus| used_of(&gpus))
    }

    fn free_for(&mut self, pid: u32) -> Option<u64> {
        if self.kind().is_simulated() {
            return None;
        }
        free_for_process(&self.sample().ok()?, pid)
    }

    fn gpu_of(&mut self, pid: u32) -> GpuOf {
        if self.kind().is_simulated() {
            return GpuOf::Unknown;
        }
        self.sample()
            .map_or(GpuOf::Unknown, |gpus| gpu_of_process(&gpus, pid))
    }
}

/// Reads the sampler's telemetry, waiting (briefly) for a reading new enough.
pub struct TelemetryProbe(pub SharedTelemetry);

impl UsedMemoryProbe for TelemetryProbe {
    fn used_since(&mut self, not_before: SystemTime) -> Option<Bytes> {
        let wait = {
            let t = lock(&self.0);
            if t.source.is_simulated() {
                return None;
            }
            t.interval * 2 + Duration::from_millis(500)
        };
        let deadline = Instant::now() + wait;
        loop {
            {
                let t = lock(&self.0);
                if let Some(s) = t.latest.as_ref().filter(|s| s.time >= not_before) {
                    return Some(used_of(&s.gpus));
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn free_for(&mut self, pid: u32) -> Option<u64> {
        let t = lock(&self.0);
        if t.source.is_simulated() {
            return None;
        }
        free_for_process(&t.latest.as_ref()?.gpus, pid)
    }

    fn gpu_of(&mut self, pid: u32) -> GpuOf {
        let t = lock(&self.0);
        match t.latest.as_ref() {
            Some(s) if !t.source.is_simulated() => gpu_of_process(&s.gpus, pid),
            _ => GpuOf::Unknown,
        }
    }
}

/// What to free.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FreeTarget {
    /// Every agent, and ComfyUI if it is running.
    All,
    /// One agent, by pid.
    Agent(u32),
    /// ComfyUI only (through its agent when it has one, else its HTTP API).
    ComfyUi,
    /// One engine that frees over its own API (Ollama, vLLM, the SD WebUI, …).
    App(super::engines::EngineKind),
    /// Everything but the process of this pid (making room for its job).
    AllBut(u32),
}

impl FreeTarget {
    /// Every agent and app is asked (all of them, or all but one).
    fn is_everyone(&self) -> bool {
        matches!(self, FreeTarget::All | FreeTarget::AllBut(_))
    }
}

/// One target's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetResult {
    /// "python3 (pid 437, Wan2.1 T2V 14B)" or "ComfyUI at 127.0.0.1:8188".
    pub target: String,
    /// What it released, or why it could not.
    pub outcome: Result<TargetFreed, ReleaseError>,
}

/// What a target reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetFreed {
    /// Bytes the target says went back to the driver (`None`: it cannot tell, e.g. ComfyUI).
    pub reported: Option<Bytes>,
    /// Hooks that failed.
    pub hook_errors: Vec<String>,
    /// Why the target was left alone, when it was (e.g. a level it cannot do).
    pub skipped: Option<String>,
    /// What else it did, in words ("rebuilt 3 onnxruntime sessions").
    pub notes: Vec<String>,
}

/// How a deferred release is followed to its end.
#[derive(Clone, Debug, PartialEq)]
pub enum Follow {
    /// Ask the agent until it no longer reports a pending release.
    Agent(Endpoint),
    /// Watch ComfyUI's queue until none of these prompts runs any more.
    ComfyQueue {
        /// The instance.
        comfy: ComfyUi,
        /// Prompts that were running when the unload was asked for.
        running: Vec<String>,
    },
    /// Watch an engine until what it waits for has happened (a model left, a job ended and
    /// the release then asked for).
    Engine {
        /// The engine.
        engine: super::engines::EngineHandle,
        /// What it waits for.
        waiting: super::engines::Waiting,
    },
}

/// A release that will happen later.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingRelease {
    /// Who will do it.
    pub target: String,
    /// What it said ("ComfyUI will unload its models after the current prompt").
    pub reason: String,
    /// How to tell it happened.
    pub follow: Follow,
}

impl PendingRelease {
    /// Looks once: `Ok(true)` when the release has happened.
    pub fn finished(&self) -> Result<bool, ReleaseError> {
        match &self.follow {
            Follow::Agent(endpoint) => {
                let info = AgentClient::connect(endpoint, HELLO_TIMEOUT)?.hello()?;
                Ok(info.pending.is_none())
            }
            Follow::ComfyQueue { comfy, running } => {
                let now = comfy.queue(COMFY_TIMEOUT)?.running();
                Ok(!running.iter().any(|id| now.contains(id)))
            }
            Follow::Engine { engine, waiting } => engine.follow(waiting),
        }
    }
}

/// The whole action's result.
#[derive(Clone, Debug, PartialEq)]
pub struct FreeReport {
    /// When the action started.
    pub at: SystemTime,
    /// Level asked for.
    pub level: FreeLevel,
    /// Per target.
    pub results: Vec<TargetResult>,
    /// NVML used before (for a deferred release: the last reading before it happened).
    pub used_before: Option<Bytes>,
    /// NVML used after.
    pub used_after: Option<Bytes>,
    /// Time until every target answered (or, when followed, until the release happened).
    pub elapsed: Duration,
    /// Releases still to happen; while any is here the report is an interim one.
    pub pending: Vec<PendingRelease>,
    /// Set when vramdeck stopped following a release that did not happen in time.
    pub gave_up: Option<String>,
    /// Whether ComfyUI was to be asked at all (not with `--comfyui none`).
    pub comfy_configured: bool,
    /// Engines put to sleep (vLLM, SGLang): woken when the job that asked has ended.
    pub slept: Vec<super::engines::EngineHandle>,
}

/// What kind of news a report is, for its colour and wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Memory came back (measured, or reported where nothing can measure).
    Released,
    /// Every target answered, but nothing came back.
    Nothing,
    /// A release is still to happen.
    Pending,
    /// Something failed.
    Failed,
}

impl FreeReport {
    /// Sum of what targets reported.
    pub fn reported_total(&self) -> Option<Bytes> {
        let reported: Vec<u64> = self
            .results
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok()?.reported.map(|b| b.0))
            .collect();
        // Agents' numbers are untrusted: a sum must not wrap.
        (!reported.is_empty())
            .then(|| Bytes(reported.iter().fold(0u64, |s, b| s.saturating_add(*b))))
    }

    /// NVML used before minus after (positive = released).
    pub fn measured_release(&self) -> Option<i128> {
        Some(self.used_before?.0 as i128 - self.used_after?.0 as i128)
    }

    /// What kind of news this is.
    pub fn outcome(&self) -> Outcome {
        if !self.pending.is_empty() {
            return Outcome::Pending;
        }
        let failed = self.results.iter().any(|r| r.outcome.is_err()) || self.gave_up.is_some();
        let released = match self.measured_release() {
            Some(m) => m > 0,
            None => self.reported_total().is_some_and(|b| b.0 > 0),
        };
        match (failed, released) {
            (_, true) if !self.results.iter().all(|r| r.outcome.is_err()) => Outcome::Released,
            (true, _) => Outcome::Failed,
            // No agent and no ComfyUI: nothing happened, which is news, not a failure.
            _ => Outcome::Nothing,
        }
    }

    /// One line for a toast or a terminal: "Released 9.8 GiB in 40 ms · ...". Plain ASCII
    /// punctuation: egui's built-in font has no arrows.
    pub fn summary(&self) -> String {
        self.summary_with(true)
    }

    /// [`Self::summary`] without the "target: released N" parts, for a terminal that printed a
    /// line per target above it.
    pub fn summary_after_targets(&self) -> String {
        self.summary_with(false)
    }

    fn summary_with(&self, released_per_target: bool) -> String {
        if self.results.is_empty() {
            return if self.comfy_configured {
                crate::t!("free-nothing-no-agent-no-comfy")
            } else {
                crate::t!("free-nothing-no-agent")
            };
        }
        let ms = self.elapsed.as_millis();
        let headline = if !self.pending.is_empty() {
            let reasons: Vec<&str> = self.pending.iter().map(|p| p.reason.as_str()).collect();
            crate::t!("free-waiting", reasons = reasons.join("; "))
        } else {
            match (self.measured_release(), self.reported_total()) {
                (Some(measured), _) if measured > 0 => crate::t!(
                    "free-released",
                    amount = MemoryUnit::GiB.format(Bytes(measured as u64)),
                    ms = ms.to_string()
                ),
                (None, Some(reported)) if reported.0 > 0 => crate::t!(
                    "free-released-reported",
                    amount = MemoryUnit::GiB.format(reported),
                    ms = ms.to_string()
                ),
                _ if self.results.iter().all(|r| r.outcome.is_err()) => crate::t!("free-failed"),
                _ => crate::t!("free-nothing-released", ms = ms.to_string()),
            }
        };
        let mut parts = vec![headline];
        // While a release is pending, what agents reported so far is not its result.
        if let Some(reported) = self.reported_total().filter(|_| self.pending.is_empty()) {
            parts.push(crate::t!(
                "free-reported-by-agents",
                amount = MemoryUnit::GiB.format(reported)
            ));
        }
        if self.used_before.is_none() && self.pending.is_empty() {
            parts.push(crate::t!("free-no-nvml"));
        }
        if let (Some(before), Some(after)) = (self.used_before, self.used_after) {
            let delta = after.whole_mib() as i64 - before.whole_mib() as i64;
            parts.push(crate::t!(
                "free-nvml-used",
                before = group_thousands(before.whole_mib()),
                after = group_thousands(after.whole_mib()),
                delta = format!(
                    "{}{}",
                    if delta < 0 { "-" } else { "+" },
                    group_thousands(delta.unsigned_abs())
                )
            ));
        }
        if let Some(why) = &self.gave_up {
            parts.push(why.clone());
        }
        for r in &self.results {
            match &r.outcome {
                // The error names its target.
                Err(e) => parts.push(e.to_string()),
                Ok(freed) => {
                    if let Some(b) = freed.reported.filter(|b| b.0 > 0 && released_per_target) {
                        parts.push(crate::t!(
                            "free-target-released",
                            target = r.target.clone(),
                            amount = MemoryUnit::GiB.format(b)
                        ));
                    }
                    if let Some(why) = &freed.skipped {
                        parts.push(format!("{}: {why}", r.target));
                    }
                    parts.extend(freed.notes.iter().map(|n| format!("{}: {n}", r.target)));
                    parts.extend(freed.hook_errors.iter().map(|e| {
                        crate::t!(
                            "free-hook-failed",
                            target = r.target.clone(),
                            error = e.clone()
                        )
                    }))
                }
            }
        }
        parts.join(" · ")
    }
}

/// Where to look and whom to ask.
#[derive(Clone, Debug)]
pub struct FreeRequest {
    /// What to free.
    pub target: FreeTarget,
    /// How much.
    pub level: FreeLevel,
    /// Agent socket directory.
    pub agent_dir: AgentDir,
    /// ComfyUI, when configured.
    pub comfyui: Option<ComfyUi>,
    /// The engines that free over their own API (Ollama, vLLM, the SD WebUI, …), as
    /// configured.
    pub apps: Vec<super::engines::EngineHandle>,
    /// Apps never freed to make room for another (by [`app_name`]); only making room
    /// (`AllBut`) honours it: Free VRAM itself frees what the user asked.
    pub keep: Vec<String>,
    /// Making room on one GPU of several: only agents of these processes are freed (the
    /// ones holding memory on the asker's GPU); apps reached over HTTP, whose GPU is not
    /// known, are left alone. `None`: no such limit.
    pub only_pids: Option<Vec<u32>>,
}

/// How an agent is named in the user's "never free for others" list: its application
/// ("ComfyUI"), else its label, else its process name.
pub fn app_name(info: &super::protocol::AgentInfo) -> String {
    info.app
        .as_ref()
        .map(|a| a.name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| info.label.clone())
        .unwrap_or_else(|| info.process_name.clone())
}

/// "python3 (pid 437, Wan2.1 T2V 14B)".
pub fn describe(info: &super::protocol::AgentInfo) -> String {
    match &info.label {
        Some(label) => format!("{} (pid {}, {label})", info.process_name, info.pid),
        None => format!("{} (pid {})", info.process_name, info.pid),
    }
}

/// True when `agent` is the ComfyUI that `comfy` points at: it reports a port where that
/// ComfyUI answers, or, before ComfyUI has answered at all, one of the ports tried (with the
/// default address, 8188 and 8000). Otherwise a ComfyUI with the node would be freed twice,
/// through its agent and over HTTP, and the second request could leave a flag behind.
pub fn is_agent_of(agent: &LiveAgent, comfy: &ComfyUi) -> bool {
    agent.info.app.as_ref().is_some_and(|app| {
        app.name == "ComfyUI" && app.port.is_some_and(|p| comfy.may_be_on_port(p))
    })
}

/// Why ComfyUI's HTTP API is not asked to empty the cache.
pub const COMFY_NO_CACHE_LEVEL: &str = "left alone: ComfyUI's HTTP API cannot empty the cache \
    without unloading every model; add the vramdeck node to ComfyUI (see README) or choose \
    unload models";

/// Asks ComfyUI over HTTP to unload between prompts; pending when a prompt runs now.
fn free_comfy_http(comfy: &ComfyUi, level: FreeLevel) -> (TargetResult, Option<PendingRelease>) {
    let target = crate::t!("free-comfy-target", address = comfy.found_at().to_string());
    if level == FreeLevel::Cache {
        // Only a ComfyUI that answers is "left alone"; one that is not running is not there.
        if let Err(e) = comfy.queue(COMFY_TIMEOUT) {
            return (
                TargetResult {
                    target,
                    outcome: Err(e),
                },
                None,
            );
        }
        let freed = TargetFreed {
            skipped: Some(COMFY_NO_CACHE_LEVEL.into()),
            ..TargetFreed::default()
        };
        return (
            TargetResult {
                target,
                outcome: Ok(freed),
            },
            None,
        );
    }
    let running = comfy.queue(COMFY_TIMEOUT).map(|q| q.running());
    let outcome = running.and_then(|running| {
        comfy.unload_models(COMFY_TIMEOUT)?;
        Ok(running)
    });
    match outcome {
        Ok(running) if !running.is_empty() => {
            let pending = PendingRelease {
                target: target.clone(),
                reason: crate::t!("free-comfy-after-prompt"),
                follow: Follow::ComfyQueue {
                    comfy: comfy.clone(),
                    running,
                },
            };
            (
                TargetResult {
                    target,
                    outcome: Ok(TargetFreed::default()),
                },
                Some(pending),
            )
        }
        Ok(_) => (
            TargetResult {
                target,
                outcome: Ok(TargetFreed::default()),
            },
            None,
        ),
        Err(e) => (
            TargetResult {
                target,
                outcome: Err(e),
            },
            None,
        ),
    }
}

/// Frees one agent that answered hello.
fn free_agent(agent: &LiveAgent, level: FreeLevel) -> (TargetResult, Option<PendingRelease>) {
    let target = describe(&agent.info);
    let freed = AgentClient::connect(&agent.endpoint, HELLO_TIMEOUT)
        .and_then(|mut client| client.free(level, FREE_TIMEOUT));
    match freed {
        Ok(freed) => {
            let pending = freed.pending.clone().map(|reason| PendingRelease {
                target: target.clone(),
                reason,
                follow: Follow::Agent(agent.endpoint.clone()),
            });
            let mut notes = freed.onnx.as_ref().map(onnx_notes).unwrap_or_default();
            if pending.is_none()
                && freed.released_bytes.unwrap_or(0) == 0
                && notes.is_empty()
                && freed.hook_errors.is_empty()
            {
                notes.push(why_nothing(&agent.info, level));
            }
            (
                TargetResult {
                    target,
                    outcome: Ok(TargetFreed {
                        reported: freed.released_bytes.map(Bytes),
                        notes,
                        hook_errors: freed.hook_errors,
                        skipped: None,
                    }),
                },
                pending,
            )
        }
        Err(e) => (
            TargetResult {
                target,
                outcome: Err(e),
            },
            None,
        ),
    }
}

/// Why an agent that answered gave nothing back, from what it said at hello: no torch in
/// that process, every byte torch holds in live tensors, or a cache already empty.
fn why_nothing(info: &super::protocol::AgentInfo, level: FreeLevel) -> String {
    let unit = MemoryUnit::GiB;
    match (info.reserved, info.allocated, &info.torch_missing_reason) {
        (None, _, Some(reason)) => crate::t!("free-why-no-torch", reason = reason.clone()),
        (None, _, None) => crate::t!("free-why-no-torch-plain"),
        (Some(reserved), Some(allocated), _)
            if level == FreeLevel::Cache && reserved > 0 && allocated >= reserved =>
        {
            crate::t!("free-why-all-in-use", size = unit.format(Bytes(reserved)))
        }
        _ => crate::t!("free-why-cache-empty"),
    }
}

/// "rebuilt 2 onnxruntime sessions (their arenas went back)", "left b.onnx (running)".
fn onnx_notes(onnx: &super::protocol::OnnxRebuilt) -> Vec<String> {
    let mut notes = Vec::new();
    if !onnx.rebuilt.is_empty() {
        let count = onnx.rebuilt.len() as u64;
        notes.push(crate::t!(
            "free-onnx-rebuilt",
            count = count,
            n = crate::units::group_thousands(count)
        ));
    }
    if !onnx.skipped.is_empty() {
        notes.push(crate::t!("free-onnx-left", names = onnx.skipped.join(", ")));
    }
    notes
}

/// Performs a free and measures it; a deferred release comes back in `pending`.
pub fn perform(request: &FreeRequest, probe: &mut dyn UsedMemoryProbe) -> FreeReport {
    let at = SystemTime::now();
    let used_before = probe.used_since(at);
    let started = Instant::now();
    let mut results = Vec::new();

    let endpoints: Vec<Endpoint> = match discovery::endpoints(&request.agent_dir) {
        Ok(all) => all
            .into_iter()
            .filter(|e| match request.target {
                FreeTarget::All | FreeTarget::AllBut(_) | FreeTarget::ComfyUi => true,
                FreeTarget::Agent(pid) => e.pid == pid,
                FreeTarget::App(_) => false,
            })
            .collect(),
        Err(e) => {
            results.push(TargetResult {
                target: "agents".into(),
                outcome: Err(e),
            });
            Vec::new()
        }
    };
    if let FreeTarget::Agent(pid) = request.target
        && endpoints.is_empty()
        && results.is_empty()
    {
        results.push(TargetResult {
            target: format!("pid {pid}"),
            outcome: Err(ReleaseError::NoSuchAgent(pid)),
        });
    }

    // Phase 1, all at once: who answers? A hung agent is never sent `free` after this.
    let hellos = super::each_in_parallel(endpoints, |endpoint| {
        let answer = AgentClient::connect(&endpoint, HELLO_TIMEOUT).and_then(|mut c| c.hello());
        (endpoint, answer)
    });
    let mut live = Vec::new();
    for (endpoint, answer) in hellos {
        match answer {
            Ok(info) => live.push(LiveAgent { endpoint, info }),
            Err(ReleaseError::Gone(target)) => {
                // A crashed agent's socket: tidy up; worth a word only when it was asked for.
                let _ = std::fs::remove_file(&endpoint.path);
                if !request.target.is_everyone() {
                    results.push(TargetResult {
                        target: target.clone(),
                        outcome: Err(ReleaseError::Gone(target)),
                    });
                }
            }
            Err(e) => results.push(TargetResult {
                target: format!("agent pid {}", endpoint.pid),
                outcome: Err(e),
            }),
        }
    }
    let comfy = request.comfyui.as_ref();
    // Making room for one process: it is left alone, and so is its ComfyUI if it is one.
    let spared = match request.target {
        FreeTarget::AllBut(pid) => live
            .iter()
            .position(|a| a.endpoint.pid == pid)
            .map(|i| live.swap_remove(i)),
        _ => None,
    };
    let spared_is_comfy = spared
        .as_ref()
        .zip(comfy)
        .is_some_and(|(a, c)| is_agent_of(a, c));
    let making_room = matches!(request.target, FreeTarget::AllBut(_));
    let kept = |name: &str| making_room && request.keep.iter().any(|k| k == name);
    live.retain(|a| !kept(&app_name(&a.info)));
    let on_this_gpu = |pid: u32| request.only_pids.as_ref().is_none_or(|p| p.contains(&pid));
    live.retain(|a| on_this_gpu(a.endpoint.pid));
    let spared_is_comfy = spared_is_comfy || kept("ComfyUI");
    let comfy_agent = comfy.and_then(|c| live.iter().position(|a| is_agent_of(a, c)));
    if request.target == FreeTarget::ComfyUi {
        live = comfy_agent
            .map(|i| vec![live.swap_remove(i)])
            .unwrap_or_default();
    }
    // One ComfyUI is one target: through its agent when it has one, else over HTTP.
    let comfy_http = match (&request.target, comfy) {
        (FreeTarget::All | FreeTarget::AllBut(_) | FreeTarget::ComfyUi, Some(c))
            if comfy_agent.is_none() && !spared_is_comfy && request.only_pids.is_none() =>
        {
            Some(c)
        }
        _ => None,
    };

    let apps: Vec<&super::engines::EngineHandle> = request
        .apps
        .iter()
        .filter(|a| !kept(a.name()) && request.only_pids.is_none())
        .filter(|a| match request.target {
            FreeTarget::All | FreeTarget::AllBut(_) => true,
            FreeTarget::App(kind) => a.kind() == kind,
            _ => false,
        })
        .collect();

    // Phase 2, all at once: the frees.
    enum Job<'a> {
        Agent(&'a LiveAgent),
        Comfy(&'a ComfyUi),
        App(&'a super::engines::EngineHandle),
    }
    let mut jobs: Vec<Job> = live.iter().map(Job::Agent).collect();
    jobs.extend(comfy_http.map(Job::Comfy));
    jobs.extend(apps.into_iter().map(Job::App));
    let outcomes = super::each_in_parallel(jobs, |job| match job {
        Job::Agent(agent) => (free_agent(agent, request.level), (false, false), None),
        Job::Comfy(c) => (free_comfy_http(c, request.level), (true, false), None),
        Job::App(a) => {
            // Only an engine the user named is freed blind (one that cannot say it works).
            let careful = !matches!(request.target, FreeTarget::App(_));
            let (result, deferred, slept) = a.free(request.level, careful);
            ((result, deferred), (false, true), slept.then(|| a.clone()))
        }
    });
    let mut pending = Vec::new();
    let mut slept = Vec::new();
    let mut comfy_asked = false;
    for ((result, deferred), (is_comfy_http, is_app), asleep) in outcomes {
        slept.extend(asleep);
        let not_running = match &result.outcome {
            Err(e) if is_app => super::engines::not_there(e),
            Err(ReleaseError::Connect { .. }) => true,
            _ => false,
        };
        // "Free all" with no ComfyUI (or Ollama, or WebUI) running is not worth a word.
        if (is_comfy_http || is_app) && not_running && request.target.is_everyone() {
            continue;
        }
        comfy_asked |= is_comfy_http
            && result.outcome.as_ref().is_ok_and(|f| f.skipped.is_none())
            && deferred.is_none();
        pending.extend(deferred);
        results.push(result);
    }
    let elapsed = started.elapsed();
    let mut report = FreeReport {
        at,
        level: request.level,
        results,
        used_before,
        used_after: None,
        elapsed,
        pending,
        gave_up: None,
        comfy_configured: comfy.is_some(),
        slept,
    };
    if report.pending.is_empty() {
        settle(&mut report, probe, comfy_asked);
    }
    report
}

/// Watches NVML until the reported release shows up, or ComfyUI had time to unload.
fn settle(report: &mut FreeReport, probe: &mut dyn UsedMemoryProbe, comfy_asked: bool) {
    let reported = report.reported_total().map(|b| b.0).unwrap_or(0);
    let settle_until = Instant::now() + SETTLE_TIMEOUT;
    loop {
        report.used_after = probe.used_since(SystemTime::now());
        let dropped = match (report.used_before, report.used_after) {
            (Some(b), Some(a)) => b.0.saturating_sub(a.0),
            _ => 0,
        };
        let satisfied = if comfy_asked {
            false // ComfyUI reports nothing: give it the whole settle time
        } else {
            reported == 0 || dropped as f64 >= reported as f64 * 0.9
        };
        if satisfied || Instant::now() >= settle_until || report.used_before.is_none() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Follows a report's deferred releases to their end, one look at a time.
pub struct Follower {
    report: FreeReport,
    deferred: Vec<String>,
    started: Instant,
    limit: Duration,
}

/// What one look found.
#[derive(Debug)]
pub enum FollowStep {
    /// Still waiting.
    Waiting,
    /// Everything happened (or vramdeck gave up): the final report.
    Done(Box<FreeReport>),
}

impl Follower {
    /// Follows `report`'s pending releases for at most `limit`.
    pub fn new(report: FreeReport, limit: Duration) -> Self {
        Follower {
            deferred: report.pending.iter().map(|p| p.target.clone()).collect(),
            report,
            started: Instant::now(),
            limit,
        }
    }

    /// The report as it stands (still pending).
    pub fn report(&self) -> &FreeReport {
        &self.report
    }

    /// Looks once at every pending release and reads NVML while they are still pending (the
    /// last such reading is "before"); when all have happened, settles and measures "after".
    pub fn step(&mut self, probe: &mut dyn UsedMemoryProbe) -> FollowStep {
        let mut still = Vec::new();
        for p in std::mem::take(&mut self.report.pending) {
            match p.finished() {
                Ok(true) => {}
                Ok(false) => still.push(p),
                Err(e) => self.report.results.push(TargetResult {
                    target: p.target.clone(),
                    outcome: Err(e),
                }),
            }
        }
        self.report.pending = still;
        if self.report.pending.is_empty() {
            // What a deferred target reported came before the release it deferred: NVML
            // measures the release itself.
            for r in &mut self.report.results {
                if self.deferred.contains(&r.target)
                    && let Ok(freed) = &mut r.outcome
                {
                    freed.reported = None;
                }
            }
            self.report.elapsed = self.started.elapsed() + self.report.elapsed;
            // ComfyUI's worker unloads right after the prompt: give it the settle time.
            settle(&mut self.report, probe, true);
            return FollowStep::Done(Box::new(self.report.clone()));
        }
        if self.started.elapsed() >= self.limit {
            let reasons: Vec<String> = self
                .report
                .pending
                .iter()
                .map(|p| p.reason.clone())
                .collect();
            self.report.gave_up = Some(crate::t!(
                "free-gave-up",
                minutes = (self.limit.as_secs() / 60).to_string(),
                reasons = reasons.join("; ")
            ));
            self.report.pending.clear();
            self.report.used_after = probe.used_since(SystemTime::now());
            return FollowStep::Done(Box::new(self.report.clone()));
        }
        if let Some(now) = probe.used_since(SystemTime::now()) {
            self.report.used_before = Some(now);
        }
        FollowStep::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(results: Vec<TargetResult>, before: u64, after: u64) -> FreeReport {
        FreeReport {
            at: SystemTime::UNIX_EPOCH,
            level: FreeLevel::Cache,
            results,
            used_before: Some(Bytes::from_mib(before)),
            used_after: Some(Bytes::from_mib(after)),
            elapsed: Duration::from_millis(40),
            pending: Vec::new(),
            gave_up: None,
            comfy_configured: true,
            slept: Vec::new(),
        }
    }

    fn reported(target: &str, mib: u64) -> TargetResult {
        TargetResult {
            target: target.into(),
            outcome: Ok(TargetFreed {
                reported: Some(Bytes::from_mib(mib)),
                ..TargetFreed::default()
            }),
        }
    }

    #[test]
    fn summary_shows_measured_and_reported() {
        let r = report(vec![reported("python3 (pid 1)", 10_240)], 10_858, 358);
        assert_eq!(
            r.summary(),
            "Released 10.3 GiB in 40 ms · reported by agents: 10.0 GiB · NVML used 10,858 to 358 MiB (-10,500 MiB) · python3 (pid 1): released 10.0 GiB"
        );
        assert_eq!(r.outcome(), Outcome::Released);
    }

    #[test]
    fn summary_names_failures() {
        let r = report(
            vec![TargetResult {
                target: "agent pid 9".into(),
                outcome: Err(ReleaseError::Timeout {
                    target: "agent pid 9".into(),
                    seconds: 20.0,
                }),
            }],
            100,
            100,
        );
        assert!(
            r.summary().starts_with("Free VRAM failed"),
            "{}",
            r.summary()
        );
        assert!(
            r.summary()
                .contains("agent pid 9 did not answer within 20.0 s")
        );
        assert_eq!(r.outcome(), Outcome::Failed);
    }

    #[test]
    fn nothing_released_is_not_a_success() {
        let r = report(vec![reported("python3 (pid 1)", 0)], 100, 100);
        assert!(r.summary().starts_with("Nothing was released"));
        assert_eq!(r.outcome(), Outcome::Nothing);
        let none = report(vec![], 100, 100);
        assert!(none.summary().starts_with("Nothing to free"));
        assert_eq!(none.outcome(), Outcome::Nothing);
    }

    #[test]
    fn an_agent_that_gave_nothing_back_says_why() {
        let info = |reserved, allocated, missing: Option<&str>| super::super::protocol::AgentInfo {
            reserved,
            allocated,
            torch_missing_reason: missing.map(str::to_string),
            ..serde_json::from_str(r#"{"pid":7,"process_name":"python3"}"#).unwrap()
        };
        let no_torch = why_nothing(
            &info(None, None, Some("No module named 'torch'")),
            FreeLevel::Cache,
        );
        assert_eq!(
            no_torch,
            "released nothing: torch is not loaded in that process (No module named 'torch')"
        );
        let in_use = why_nothing(&info(Some(4 << 30), Some(4 << 30), None), FreeLevel::Cache);
        assert!(
            in_use.contains("all 4.0 GiB torch holds is in live tensors"),
            "{in_use}"
        );
        let empty = why_nothing(&info(Some(4 << 30), Some(1 << 30), None), FreeLevel::Cache);
        assert_eq!(empty, "released nothing: its cache was already empty");
        // At the unload level "all in use" is no reason: the models were the thing to drop.
        let unload = why_nothing(&info(Some(4 << 30), Some(4 << 30), None), FreeLevel::Unload);
        assert_eq!(unload, "released nothing: its cache was already empty");
    }

    #[test]
    fn untrusted_reported_numbers_do_not_wrap() {
        let r = report(
            vec![
                reported("a", u64::MAX / (1 << 20)),
                reported("b", u64::MAX / (1 << 20)),
            ],
            0,
            0,
        );
        assert_eq!(r.reported_total(), Some(Bytes(u64::MAX)));
        let _ = r.summary();
    }

    #[test]
    fn a_simulated_gpu_is_not_passed_off_as_a_measurement() {
        let mut demo: Box<dyn GpuSource> =
            Box::new(crate::telemetry::sim::SimulatedGpus::demo("test"));
        assert_eq!(demo.used_since(SystemTime::now()), None);
        let mut r = report(vec![reported("python3 (pid 1)", 1_024)], 0, 0);
        (r.used_before, r.used_after) = (None, None);
        assert_eq!(
            r.summary(),
            "Released 1.0 GiB (reported) in 40 ms · reported by agents: 1.0 GiB · no NVML measurement (demo mode or no NVIDIA driver) · python3 (pid 1): released 1.0 GiB"
        );
    }

    #[test]
    fn nothing_to_free_says_what_to_do() {
        assert!(
            report(vec![], 1, 1)
                .summary()
                .contains("vramdeck_agent.start()")
        );
    }
}
