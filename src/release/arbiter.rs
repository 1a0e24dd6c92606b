//! Making room before a job: an app's agent asks (`agent.need(bytes)`) and waits; vramdeck
//! frees the *other* apps by the user's policy — their caches first, then (when allowed) their
//! idle models; a job that runs is never cut (agents and ComfyUI unload after it, Ollama when
//! its request ends, the SD WebUI between jobs) — and answers the agent with what it did, which
//! goes to the app's log. The window shows the same sentence as a toast and a chart mark.

use super::FreeLevel;
use super::client::AgentClient;
use super::discovery::LiveAgent;
use super::free::{self, FreeReport, FreeRequest, FreeTarget, UsedMemoryProbe};
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
    let short = need.short_by();
    let what = asker(agent, need);
    let levels: &[FreeLevel] = match policy {
        RoomPolicy::Off | RoomPolicy::Ask => &[],
        RoomPolicy::Caches => &[FreeLevel::Cache],
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
    let message = match (policy, granted) {
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

    /// Makes room for every need among `agents` not answered yet.
    pub fn answer(
        &mut self,
        agents: &[LiveAgent],
        policy: RoomPolicy,
        base: &FreeRequest,
        probe: &mut dyn UsedMemoryProbe,
    ) -> Vec<RoomMade> {
        self.fresh(agents)
            .into_iter()
            .map(|(agent, need)| make_room(agent, need, policy, base, probe))
            .collect()
    }
}
