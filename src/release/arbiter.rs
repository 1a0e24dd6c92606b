//! Making room before a job: an app's agent asks (`agent.need(bytes)`) and waits; vramdeck
//! frees the *other* apps by the user's policy — their caches first, then (when allowed) their
//! idle models; a job that runs is never cut (agents and ComfyUI unload after it, Ollama when
//! its request ends, the SD WebUI between jobs) — and answers the agent with what it did, which
//! goes to the app's log. The window shows the same sentence as a toast and a chart mark.

use super::FreeLevel;
use super::client::AgentClient;
use super::discovery::LiveAgent;
use super::free::{self, FreeReport, FreeRequest, FreeTarget, GpuOf, UsedMemoryProbe};
use super::protocol::Need;
use crate::units::{Bytes, MemoryUnit};
use serde::{Deserialize, Serialize};

/// What vramdeck may do when an app asks for room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RoomPolicy {
    /// Nothing: the asking app is told so at once.
    #[default]
    Off,
    /// The window asks the user each time (caches, models or not now); the app waits.
    Ask,
    /// Empty the other apps' caches (their models stay).
    Caches,
    /// Caches first, then unload the other apps' idle models if that was not enough.
    Models,
}

impl RoomPolicy {
    /// Every choice.
    pub const ALL: [RoomPolicy; 4] = [
        RoomPolicy::Off,
        RoomPolicy::Ask,
        RoomPolicy::Caches,
        RoomPolicy::Models,
    ];

    /// Its button.
    pub fn text(self) -> String {
        match self {
            RoomPolicy::Off => crate::t!("room-off"),
            RoomPolicy::Ask => crate::t!("room-ask"),
            RoomPolicy::Caches => crate::t!("room-caches"),
            RoomPolicy::Models => crate::t!("room-models"),
        }
    }
}

/// What was done for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomMade {
    /// The asking process.
    pub pid: u32,
    /// The request answered.
    pub need: Need,
    /// There is room now (by what the others gave back).
    pub granted: bool,
    /// The sentence the app's log and the window show.
    pub message: String,
    /// The releases performed, in order.
    pub reports: Vec<FreeReport>,
}

/// A request waiting for the user's answer (policy [`RoomPolicy::Ask`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RoomAsk {
    /// The asking process.
    pub pid: u32,
    /// The request.
    pub need: Need,
    /// Who asks, in words ("ComfyUI prompt").
    pub who: String,
}

/// The asking job in words: its own, else the agent's label, else its process name.
fn asker(agent: &LiveAgent, need: &Need) -> String {
    need.what
        .clone()
        .or_else(|| agent.info.label.clone())
        .unwrap_or_else(|| agent.info.process_name.clone())
}

impl RoomAsk {
    /// The question for `agent`'s `need`.
    pub fn new(agent: &LiveAgent, need: &Need) -> Self {
        RoomAsk {
            pid: agent.endpoint.pid,
            need: need.clone(),
            who: asker(agent, need),
        }
    }
}

/// What a preset's job needs free, as the advisor counts it — its peak (measured on this
/// machine when it was, else the catalogue's) plus the user's margin and the fixed allowance —
/// by every name an app may give it (id, name, translated name; lower case).
#[derive(Clone, Debug, PartialEq)]
pub struct PresetNeed {
    /// Its names, lower case.
    pub names: Vec<String>,
    /// Bytes its job needs free.
    pub bytes: u64,
}

/// Every preset's need, for apps that ask by preset.
pub fn preset_needs(
    catalogue: &crate::workloads::catalogue::Catalogue,
    calibration: &crate::workloads::calibration::Calibration,
    margin_percent: f32,
) -> Vec<PresetNeed> {
    // Only the margin matters here: free and total are not part of `needs_mib`.
    let budget = crate::workloads::advisor::Budget::new(Bytes(0), Bytes(0), margin_percent);
    catalogue
        .workloads
        .iter()
        .map(|w| {
            let peak = calibration
                .peak_mib(&crate::workloads::calibration::key(&w.id, None))
                .unwrap_or_else(|| w.reference_peak_mib());
            let mut names = vec![w.id.to_lowercase(), w.name.to_lowercase()];
            if let Some(n) = w.zh_cn.as_ref().and_then(|z| z.name.as_deref()) {
                names.push(n.to_lowercase());
            }
            PresetNeed {
                names,
                bytes: (budget.needs_mib(peak as f64).max(0.0) * 1_048_576.0) as u64,
            }
        })
        .collect()
}

/// The request with its amount and free memory filled in: a preset named instead of bytes
/// becomes the advisor's figure, and a free amount the app could not read (no torch there)
/// comes from `free_here` (NVML). Err: the sentence for the app (an unknown preset).
pub fn resolve(
    need: &Need,
    presets: &[PresetNeed],
    free_here: Option<u64>,
    who: &str,
) -> Result<Need, String> {
    let mut resolved = need.clone();
    if resolved.bytes == 0 {
        let Some(name) = need.preset.as_deref().filter(|n| !n.trim().is_empty()) else {
            return Err(crate::t!("room-no-amount", what = who.to_string()));
        };
        let wanted = name.trim().to_lowercase();
        let Some(preset) = presets.iter().find(|p| p.names.contains(&wanted)) else {
            return Err(crate::t!(
                "room-unknown-preset",
                what = who.to_string(),
                preset = name.to_string()
            ));
        };
        resolved.bytes = preset.bytes;
        if resolved.what.is_none() {
            resolved.what = Some(name.to_string());
        }
    }
    resolved.free = resolved.free.or(free_here);
    Ok(resolved)
}

/// Answers `agent` and says so; `reports` are the releases done for it.
pub fn reply(
    agent: &LiveAgent,
    need: &Need,
    granted: bool,
    message: String,
    reports: Vec<FreeReport>,
) -> RoomMade {
    let answered = AgentClient::connect(&agent.endpoint, free::HELLO_TIMEOUT)
        .and_then(|mut c| c.answer_need(need.id, granted, &message));
    let message = match answered {
        Ok(()) => message,
        Err(e) => format!("{message} · {e}"),
    };
    RoomMade {
        pid: agent.endpoint.pid,
        need: need.clone(),
        granted,
        message,
        reports,
    }
}

/// The asker's GPU size: NVML's reading of it, else what its own driver said.
fn card_size(need: &Need, gpu: &GpuOf) -> Option<u64> {
    match gpu {
        GpuOf::Found { total, .. } if *total > 0 => Some(*total),
        _ => need.total.filter(|t| *t > 0),
    }
}

/// A request that needs nothing freed (there is room already), that cannot be counted, or
/// that can never be met (more than the asker's whole GPU: freeing everyone would not help).
/// None: room has to be made (or the user asked).
/// Free memory and the GPU come from `probe` (NVML), for apps that could not say.
pub fn answer_at_once(
    agent: &LiveAgent,
    need: &Need,
    presets: &[PresetNeed],
    probe: &mut dyn UsedMemoryProbe,
) -> Result<Need, Box<RoomMade>> {
    let free_here = probe.free_for(agent.endpoint.pid);
    let gpu = &probe.gpu_of(agent.endpoint.pid);
    let gib = |b: u64| MemoryUnit::GiB.format(Bytes(b));
    match resolve(need, presets, free_here, &asker(agent, need)) {
        Err(message) => Err(Box::new(reply(agent, need, false, message, Vec::new()))),
        Ok(n) if card_size(&n, gpu).is_some_and(|card| n.bytes > card) => {
            let message = crate::t!(
                "room-larger-than-gpu",
                what = asker(agent, &n),
                needed = gib(n.bytes),
                card = gib(card_size(&n, gpu).unwrap_or(0))
            );
            Err(Box::new(reply(agent, &n, false, message, Vec::new())))
        }
        Ok(n) if n.free.is_some() && n.short_by() == 0 => {
            let message = crate::t!(
                "room-already",
                what = asker(agent, &n),
                needed = gib(n.bytes),
                free = gib(n.free.unwrap_or(0))
            );
            Err(Box::new(reply(agent, &n, true, message, Vec::new())))
        }
        Ok(n) => Ok(n),
    }
}

/// Bytes a release gave back: NVML's measurement where there is one, else what was reported.
fn given_back(report: &FreeReport) -> u64 {
    report
        .measured_release()
        .filter(|b| *b > 0)
        .map(|b| b as u64)
        .or(report.reported_total().map(|b| b.0))
        .unwrap_or(0)
}

/// Frees the others for `agent`'s `need` by `policy`, answers the agent, and says what
/// happened. `base` names the agent folder, ComfyUI and the apps (its target and level are
/// replaced).
pub fn make_room(
    agent: &LiveAgent,
    need: &Need,
    policy: RoomPolicy,
    base: &FreeRequest,
    probe: &mut dyn UsedMemoryProbe,
) -> RoomMade {
    make_room_by(agent, need, policy, base, probe, false)
}

/// [`make_room`] by the user's own answer to the question (policy Ask): what they chose is
/// done even where free memory could not be read (the question said so).
pub fn make_room_as_chosen(
    agent: &LiveAgent,
    need: &Need,
    policy: RoomPolicy,
    base: &FreeRequest,
    probe: &mut dyn UsedMemoryProbe,
) -> RoomMade {
    make_room_by(agent, need, policy, base, probe, true)
}

fn make_room_by(
    agent: &LiveAgent,
    need: &Need,
    policy: RoomPolicy,
    base: &FreeRequest,
    probe: &mut dyn UsedMemoryProbe,
    user_chose: bool,
) -> RoomMade {
    let short = need.short_by();
    let what = asker(agent, need);
    let gpu = probe.gpu_of(agent.endpoint.pid);
    // Models are unloaded only when the shortfall is known and on a known GPU: with free
    // memory unread, or the asker on none of several GPUs, emptying caches is all that is safe.
    let mut limits = RoomLimits::for_need(need, &gpu);
    if user_chose && limits.free_unknown && gpu != GpuOf::Unlisted {
        limits.caches_only = false;
    }
    let levels: &[FreeLevel] = match policy {
        RoomPolicy::Off | RoomPolicy::Ask => &[],
        RoomPolicy::Caches => &[FreeLevel::Cache],
        RoomPolicy::Models if limits.caches_only => &[FreeLevel::Cache],
        RoomPolicy::Models => &[FreeLevel::Cache, FreeLevel::Unload],
    };
    let mut reports = Vec::new();
    let mut freed = 0u64;
    for &level in levels {
        if freed >= short {
            break;
        }
        let request = FreeRequest {
            target: FreeTarget::AllBut(agent.endpoint.pid),
            level,
            only_pids: limits.only_pids.clone(),
            ..base.clone()
        };
        let report = free::perform(&request, probe);
        freed = freed.saturating_add(given_back(&report));
        reports.push(report);
    }
    let granted = freed >= short;
    let gib = |b: u64| MemoryUnit::GiB.format(Bytes(b));
    let who: Vec<String> = reports
        .iter()
        .flat_map(|r| r.results.iter())
        .filter_map(|r| {
            let b = r.outcome.as_ref().ok()?.reported.filter(|b| b.0 > 0)?;
            Some(format!("{} {}", r.target, gib(b.0)))
        })
        .collect();
    let who = if who.is_empty() {
        crate::t!("room-nobody")
    } else {
        who.join(", ")
    };
    let mut message = match (policy, granted) {
        (RoomPolicy::Off, _) => crate::t!("room-policy-off", what = what.clone()),
        (RoomPolicy::Ask, _) => crate::t!("room-declined", what = what.clone()),
        (_, true) => crate::t!(
            "room-made",
            what = what.clone(),
            needed = gib(need.bytes),
            freed = gib(freed),
            who = who
        ),
        (_, false) => crate::t!(
            "room-short",
            what = what.clone(),
            needed = gib(need.bytes),
            short = gib(short.saturating_sub(freed)),
            freed = gib(freed),
            who = who
        ),
    };
    if !levels.is_empty()
        && let Some(why) = limits.why(policy)
    {
        message = format!("{message} ({why})");
    }
    reply(agent, need, granted, message, reports)
}

/// What making room for one need may touch.
#[derive(Clone, Debug, PartialEq)]
struct RoomLimits {
    /// Only caches are emptied.
    caches_only: bool,
    /// Only these processes' agents are freed (the asker's GPU among several).
    only_pids: Option<Vec<u32>>,
    /// Why caches only: free memory unread (else: the asker's GPU unknown among several).
    free_unknown: bool,
    /// The asker's GPU, when others were left alone.
    gpu_index: Option<u32>,
}

impl RoomLimits {
    fn for_need(need: &Need, gpu: &GpuOf) -> Self {
        let free_unknown = need.free.is_none();
        let (only_pids, gpu_index) = match gpu {
            GpuOf::Found {
                index,
                holders: Some(pids),
                ..
            } => (Some(pids.clone()), Some(*index)),
            _ => (None, None),
        };
        RoomLimits {
            caches_only: free_unknown || *gpu == GpuOf::Unlisted,
            only_pids,
            free_unknown,
            gpu_index,
        }
    }

    /// The limit in words, when one held back what `policy` would do.
    fn why(&self, policy: RoomPolicy) -> Option<String> {
        let mut parts = Vec::new();
        if self.caches_only && policy == RoomPolicy::Models {
            parts.push(if self.free_unknown {
                crate::t!("room-limit-free-unknown")
            } else {
                crate::t!("room-limit-gpu-unknown")
            });
        }
        if let Some(index) = self.gpu_index {
            parts.push(crate::t!("room-limit-one-gpu", index = index.to_string()));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// How long an app's answer stands: a need from the same app within this time is answered
/// with it instead of freeing the others again (a loop asking for room cannot unload every
/// other app over and over).
pub const ROOM_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(30);

/// The newest answer that freed (or tried to free) others, per asking app.
#[derive(Debug, Default)]
pub struct Cooldowns(std::collections::HashMap<String, (std::time::Instant, bool, String)>);

impl Cooldowns {
    /// Remembers what making room (or the user's "not now") answered `app`.
    pub fn remember(&mut self, app: &str, made: &RoomMade) {
        if self.0.len() >= 256 {
            self.0.retain(|_, (at, ..)| at.elapsed() < ROOM_COOLDOWN);
        }
        if self.0.len() < 256 {
            self.0.insert(
                app.to_string(),
                (
                    std::time::Instant::now(),
                    made.granted,
                    made.message.clone(),
                ),
            );
        }
    }

    /// The answer for `app`'s new `need` from its last one, when that is recent.
    pub fn answer(&self, agent: &LiveAgent, app: &str, need: &Need) -> Option<RoomMade> {
        let (at, granted, message) = self.0.get(app)?;
        let ago = at.elapsed();
        if ago >= ROOM_COOLDOWN {
            return None;
        }
        let message = crate::t!(
            "room-cooldown",
            last = message.clone(),
            seconds = ago.as_secs().to_string(),
            cooldown = ROOM_COOLDOWN.as_secs().to_string()
        );
        Some(reply(agent, need, *granted, message, Vec::new()))
    }
}

/// The needs answered so far, so a refresh racing the agent's own bookkeeping never answers
/// one twice (the newest 64 kept).
#[derive(Debug, Default)]
pub struct Needs(std::collections::VecDeque<(u32, u64)>);

impl Needs {
    /// The needs among `agents` not seen before, each returned once.
    pub fn fresh<'a>(&mut self, agents: &'a [LiveAgent]) -> Vec<(&'a LiveAgent, &'a Need)> {
        let mut fresh = Vec::new();
        for agent in agents {
            let Some(need) = &agent.info.need else {
                continue;
            };
            let key = (agent.endpoint.pid, need.id);
            if self.0.contains(&key) {
                continue;
            }
            if self.0.len() == 64 {
                self.0.pop_front();
            }
            self.0.push_back(key);
            fresh.push((agent, need));
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::calibration::{Calibration, key};
    use crate::workloads::catalogue::Catalogue;

    const MIB: u64 = 1 << 20;

    fn asking(preset: Option<&str>, bytes: u64, free: Option<u64>) -> Need {
        Need {
            id: 1,
            bytes,
            free,
            what: None,
            preset: preset.map(str::to_string),
            total: None,
        }
    }

    #[test]
    fn a_preset_is_found_by_id_name_or_chinese_name_with_the_advisors_margin() {
        let catalogue = Catalogue::load(None);
        let needs = preset_needs(&catalogue, &Calibration::default(), 20.0);
        let w = catalogue.get("facefusion-fp16").unwrap();
        let budget = crate::workloads::advisor::Budget::new(Bytes(0), Bytes(0), 20.0);
        let expected = (budget.needs_mib(w.reference_peak_mib() as f64) * MIB as f64) as u64;
        for name in [
            "facefusion-fp16",
            "FaceFusion (FP16)",
            "  facefusion (fp16) ",
        ] {
            let n = resolve(&asking(Some(name), 0, Some(1)), &needs, None, "x").unwrap();
            assert_eq!(n.bytes, expected, "{name}");
            assert_eq!(
                n.what.as_deref(),
                Some(name),
                "the job is named by its preset"
            );
        }
        let zh = catalogue.get("wan21-t2v-14b-480p").unwrap();
        let zh_name = zh.zh_cn.as_ref().unwrap().name.clone().unwrap();
        assert!(resolve(&asking(Some(&zh_name), 0, None), &needs, None, "x").is_ok());
    }

    #[test]
    fn a_peak_measured_here_replaces_the_catalogues() {
        let catalogue = Catalogue::load(None);
        let mut measured = Calibration::default();
        measured.record(&key("facefusion-fp16", None), 2_000, "H200");
        let needs = preset_needs(&catalogue, &measured, 0.0);
        let n = resolve(&asking(Some("facefusion-fp16"), 0, None), &needs, None, "x").unwrap();
        let budget = crate::workloads::advisor::Budget::new(Bytes(0), Bytes(0), 0.0);
        assert_eq!(n.bytes, (budget.needs_mib(2_000.0) * MIB as f64) as u64);
    }

    #[test]
    fn an_amount_given_wins_and_nvml_fills_in_only_a_free_amount_the_app_could_not_read() {
        let needs = preset_needs(&Catalogue::load(None), &Calibration::default(), 20.0);
        let n = resolve(&asking(Some("ddcolor"), 5, Some(7)), &needs, Some(99), "x").unwrap();
        assert_eq!((n.bytes, n.free), (5, Some(7)));
        let n = resolve(&asking(None, 5, None), &needs, Some(99), "x").unwrap();
        assert_eq!(n.free, Some(99));
        let unknown = resolve(&asking(Some("nope"), 0, None), &needs, None, "App").unwrap_err();
        assert!(
            unknown.starts_with("App asked for room for the preset “nope”"),
            "{unknown}"
        );
        let nothing = resolve(&asking(None, 0, None), &needs, None, "App").unwrap_err();
        assert!(
            nothing.contains("without an amount or a preset"),
            "{nothing}"
        );
    }

    #[test]
    fn free_memory_for_a_process_counts_what_it_holds_on_its_own_gpu() {
        let mut sim = crate::telemetry::sim::SimulatedGpus::demo("test");
        let mut gpus = sim.sample_at(std::time::Duration::from_secs(30));
        let holder = gpus
            .iter()
            .enumerate()
            .find_map(|(i, g)| Some((i, g.processes.iter().find(|p| p.used.is_some())?.clone())))
            .expect("the demo has a process with memory");
        let (at, process) = holder;
        let expected = gpus[at].memory.free.0 + process.used.unwrap().0;
        assert_eq!(free::free_for_process(&gpus, process.pid), Some(expected));
        // Not listed anywhere: the only GPU's free memory, or unknown among several.
        let only = vec![gpus[at].clone()];
        assert_eq!(
            free::free_for_process(&only, u32::MAX),
            Some(gpus[at].memory.free.0)
        );
        gpus.push(gpus[at].clone());
        assert_eq!(free::free_for_process(&gpus, u32::MAX), None);
    }
}
