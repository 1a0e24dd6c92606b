//! The release worker thread: keeps the agent list fresh, performs frees and follows deferred
//! ones, so the UI only sends commands and reads events — a hung agent can never freeze the
//! window.

use super::FreeLevel;
use super::comfyui::{ComfyUi, SystemStats};
use super::discovery::{self, AgentDir, Discovery};
use super::free::{
    self, FollowStep, Follower, FreeReport, FreeRequest, FreeTarget, UsedMemoryProbe,
};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the agent list is refreshed when nothing else happens.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// How often a deferred release is looked at.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// What the UI asks for.
#[derive(Clone, Debug)]
pub enum WorkerCommand {
    /// Look at agents and ComfyUI now.
    Refresh,
    /// Free memory.
    Free(FreeTarget, FreeLevel),
    /// Use another ComfyUI address.
    SetComfyAddress(String),
    /// What to do when an app asks for room before a job.
    SetRoomPolicy(super::arbiter::RoomPolicy),
    /// Apps never freed to make room for another (see `free::app_name`).
    SetRoomKeep(Vec<String>),
    /// What is done when a given app asks, instead of the policy (by `free::app_name`).
    SetRoomPolicyByApp(std::collections::BTreeMap<String, super::arbiter::RoomPolicy>),
    /// What each preset's job needs, for apps that ask by preset (see `arbiter::preset_needs`).
    SetPresetNeeds(Vec<super::arbiter::PresetNeed>),
    /// The user's answer to a request for room (policy Ask): `Off` declines it.
    AnswerRoom {
        /// The asking process.
        pid: u32,
        /// Its request.
        need: u64,
        /// What may be freed.
        policy: super::arbiter::RoomPolicy,
    },
    /// Wake the engines put to sleep for a job once it has ended (on by default).
    SetHandBack(bool),
    /// Wake this engine now (the user's button on an engine asleep).
    Wake(super::engines::EngineKind),
    /// Look at (and free) Ollama and the SD WebUI at these addresses ("none": not at all).
    SetAppAddresses {
        /// Ollama's address.
        ollama: String,
        /// The SD WebUI's address.
        a1111: String,
        /// The other engines ("auto", "none", "vllm=127.0.0.1:8001, …").
        engines: String,
    },
}

/// An app that unloads over its own API, as last seen.
#[derive(Clone, Debug, PartialEq)]
pub struct AppSeen {
    /// Which app.
    pub kind: super::engines::EngineKind,
    /// What it holds, or why it could not be read (not running, not with its API).
    pub state: Result<super::engines::EngineStatus, String>,
}

/// ComfyUI as last seen.
#[derive(Clone, Debug, PartialEq)]
pub enum ComfyStatus {
    /// The address is not usable (not loopback, unparsable, unresolvable).
    BadAddress(String),
    /// Nothing answered.
    NotRunning(String),
    /// It answered.
    Running {
        /// What it said.
        stats: SystemStats,
        /// Where it answered ("127.0.0.1:8000").
        at: String,
        /// The pid of the vramdeck agent inside it, when it has one: then it is one entry.
        agent_pid: Option<u32>,
    },
}

/// What the worker reports back.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerEvent {
    /// Agents and ComfyUI as just seen.
    Agents {
        /// Agents that answered, problems, stale sockets removed.
        discovery: Discovery,
        /// ComfyUI.
        comfyui: ComfyStatus,
        /// The engines, as configured.
        apps: Vec<AppSeen>,
        /// Which app each process belongs to.
        owners: super::holders::Owners,
    },
    /// A free finished, or (with `pending` set) is waiting for a deferred release.
    Freed(FreeReport),
    /// An app asked for room before a job, and this is what was done.
    RoomMade(Box<super::arbiter::RoomMade>),
    /// The job that had room ended and the engines asleep for it were woken (or the user
    /// woke one).
    HandedBack(super::hand_back::HandedBack),
    /// An app asks for room and the user decides (policy Ask): answer with `AnswerRoom`.
    RoomAsked(Box<super::arbiter::RoomAsk>),
}

/// Handle to the worker; dropping it stops the thread.
pub struct ReleaseWorker {
    commands: Option<Sender<WorkerCommand>>,
    events: Receiver<WorkerEvent>,
    thread: Option<JoinHandle<()>>,
}

/// The ComfyUI address as configured: parsed (and resolved) once per change.
fn configure(address: &str) -> Result<ComfyUi, String> {
    ComfyUi::parse(address).map_err(|e| e.to_string())
}

impl ReleaseWorker {
    /// Starts the worker. `wake` is called after each event (the UI passes `ui::wake`).
    pub fn spawn(
        agent_dir: AgentDir,
        comfy_address: String,
        mut probe: Box<dyn UsedMemoryProbe>,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let (commands, inbox) = mpsc::channel::<WorkerCommand>();
        let (outbox, events) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("vramdeck-release".into())
            .spawn(move || {
                let mut comfy = configure(&comfy_address);
                let mut apps: Vec<super::engines::EngineHandle> = Vec::new();
                // None until the owner says: a need seen before then waits for the policy
                // instead of being answered "off".
                let mut room_policy: Option<super::arbiter::RoomPolicy> = None;
                let mut room_keep: Vec<String> = Vec::new();
                let mut room_by_app = std::collections::BTreeMap::new();
                // Each agent's policy as of the last look, told to it at the next.
                let mut told: std::collections::HashMap<u32, super::arbiter::RoomPolicy> =
                    std::collections::HashMap::new();
                let mut answered = super::arbiter::Needs::default();
                let mut cooldowns = super::arbiter::Cooldowns::default();
                let mut loans = super::hand_back::Loans::default();
                let mut hand_back = true;
                // The agents as last seen, where an answer from the user finds its request.
                let mut agents_seen: Vec<discovery::LiveAgent> = Vec::new();
                let mut presets: Vec<super::arbiter::PresetNeed> = Vec::new();
                let mut last_look: Option<WorkerEvent> = None;
                let mut following: Option<Follower> = None;
                let mut last_refresh = std::time::Instant::now();
                let send = |event| {
                    let delivered = outbox.send(event).is_ok();
                    wake();
                    delivered
                };
                let mut command = Some(WorkerCommand::Refresh);
                loop {
                    match command.take() {
                        Some(WorkerCommand::Refresh) => {
                            last_refresh = std::time::Instant::now();
                            let tell = |pid: u32| told.get(&pid).copied().or(room_policy);
                            let seen = look(&agent_dir, &comfy, &apps, &tell);
                            if let WorkerEvent::Agents { discovery, .. } = &seen {
                                agents_seen = discovery.agents.clone();
                                told = room_policy
                                    .map(|global| {
                                        agents_seen
                                            .iter()
                                            .map(|a| {
                                                let own = room_by_app
                                                    .get(&free::app_name(&a.info))
                                                    .copied();
                                                (a.endpoint.pid, own.unwrap_or(global))
                                            })
                                            .collect()
                                    })
                                    .unwrap_or_default();
                            }
                            if let (WorkerEvent::Agents { discovery, .. }, Some(policy)) =
                                (&seen, room_policy)
                            {
                                let base = room_base(&agent_dir, &comfy, &apps, &room_keep);
                                for (agent, need) in answered.fresh(&discovery.agents) {
                                    let policy =
                                        told.get(&agent.endpoint.pid).copied().unwrap_or(policy);
                                    let event = on_need(
                                        agent,
                                        need,
                                        policy,
                                        &presets,
                                        &base,
                                        probe.as_mut(),
                                        &mut cooldowns,
                                    );
                                    if let WorkerEvent::RoomMade(made) = &event {
                                        loans.lend(made);
                                    }
                                    if !send(event) {
                                        return;
                                    }
                                }
                            }
                            if let WorkerEvent::Agents { discovery, .. } = &seen {
                                for loan in loans.due(&discovery.agents) {
                                    // Handing back switched off: the engines stay asleep
                                    // until the user wakes them.
                                    if hand_back
                                        && !send(WorkerEvent::HandedBack(
                                            super::hand_back::give_back(loan),
                                        ))
                                    {
                                        return;
                                    }
                                }
                            }
                            // Unchanged news is not worth a repaint (idle CPU matters).
                            if last_look.as_ref() != Some(&seen) {
                                last_look = Some(seen.clone());
                                if !send(seen) {
                                    return;
                                }
                            }
                        }
                        Some(WorkerCommand::SetComfyAddress(address)) => {
                            comfy = configure(&address);
                            command = Some(WorkerCommand::Refresh);
                            continue;
                        }
                        Some(WorkerCommand::SetRoomPolicy(policy)) => {
                            room_policy = Some(policy);
                            command = Some(WorkerCommand::Refresh);
                            continue;
                        }
                        Some(WorkerCommand::SetRoomKeep(keep)) => room_keep = keep,
                        Some(WorkerCommand::SetHandBack(on)) => hand_back = on,
                        Some(WorkerCommand::Wake(kind)) => {
                            let woke: Vec<_> = apps
                                .iter()
                                .filter(|a| a.kind() == kind)
                                .map(|a| {
                                    (
                                        a.name().to_string(),
                                        a.wake().map(|_| ()).map_err(|e| e.to_string()),
                                    )
                                })
                                .collect();
                            let event = super::hand_back::HandedBack {
                                who: String::new(),
                                woke,
                            };
                            if !send(WorkerEvent::HandedBack(event)) {
                                return;
                            }
                            command = Some(WorkerCommand::Refresh);
                            continue;
                        }
                        Some(WorkerCommand::SetRoomPolicyByApp(by_app)) => {
                            room_by_app = by_app;
                            told.clear(); // re-counted at the next look
                            command = Some(WorkerCommand::Refresh);
                            continue;
                        }
                        Some(WorkerCommand::SetPresetNeeds(needs)) => presets = needs,
                        Some(WorkerCommand::AnswerRoom { pid, need, policy }) => {
                            // Still asking? An agent that gave up waiting no longer holds it.
                            let asking = agents_seen.iter().find(|a| {
                                a.endpoint.pid == pid
                                    && a.info.need.as_ref().is_some_and(|n| n.id == need)
                            });
                            if let Some((agent, need)) =
                                asking.and_then(|a| Some((a, a.info.need.as_ref()?)))
                            {
                                let base = room_base(&agent_dir, &comfy, &apps, &room_keep);
                                let made = match policy {
                                    // "Not now": declined (making room under Ask frees nothing).
                                    super::arbiter::RoomPolicy::Off
                                    | super::arbiter::RoomPolicy::Ask => {
                                        WorkerEvent::RoomMade(Box::new(super::arbiter::make_room(
                                            agent,
                                            need,
                                            super::arbiter::RoomPolicy::Ask,
                                            &base,
                                            probe.as_mut(),
                                        )))
                                    }
                                    chosen => {
                                        match super::arbiter::answer_at_once(
                                            agent,
                                            need,
                                            &presets,
                                            probe.as_mut(),
                                        ) {
                                            Err(made) => WorkerEvent::RoomMade(made),
                                            Ok(need) => WorkerEvent::RoomMade(Box::new(
                                                super::arbiter::make_room_as_chosen(
                                                    agent,
                                                    &need,
                                                    chosen,
                                                    &base,
                                                    probe.as_mut(),
                                                ),
                                            )),
                                        }
                                    }
                                };
                                if let WorkerEvent::RoomMade(made) = &made {
                                    cooldowns.remember(&free::app_name(&agent.info), made);
                                    loans.lend(made);
                                }
                                if !send(made) {
                                    return;
                                }
                            }
                            command = Some(WorkerCommand::Refresh);
                            continue;
                        }
                        Some(WorkerCommand::SetAppAddresses {
                            ollama,
                            a1111,
                            engines,
                        }) => {
                            // An unusable address is said where the app would be listed.
                            apps = super::engines::configured(&ollama, &a1111, &engines).0;
                            command = Some(WorkerCommand::Refresh);
                            continue;
                        }
                        // A new release while an earlier one is followed: it runs, and its
                        // own deferred part (if any) is followed instead.
                        Some(WorkerCommand::Free(target, level)) => {
                            let request = FreeRequest {
                                target,
                                level,
                                agent_dir: agent_dir.clone(),
                                comfyui: comfy.as_ref().ok().cloned(),
                                apps: apps.clone(),
                                keep: Vec::new(),
                                only_pids: None,
                            };
                            let report = free::perform(&request, probe.as_mut());
                            if !report.pending.is_empty() {
                                following =
                                    Some(Follower::new(report.clone(), free::FOLLOW_TIMEOUT));
                            } else if following.is_some() {
                                // Whatever was still awaited is part of this newer release's
                                // answer now; the earlier wait ends here.
                                following = None;
                            }
                            if !send(WorkerEvent::Freed(report)) {
                                return;
                            }
                            command = Some(WorkerCommand::Refresh);
                            continue;
                        }
                        None => {
                            if let Some(f) = following.as_mut()
                                && let FollowStep::Done(report) = f.step(probe.as_mut())
                            {
                                following = None;
                                if !send(WorkerEvent::Freed(*report)) {
                                    return;
                                }
                            }
                            if last_refresh.elapsed() >= REFRESH_EVERY {
                                command = Some(WorkerCommand::Refresh);
                                continue;
                            }
                        }
                    }
                    let wait = if following.is_some() {
                        FOLLOW_EVERY
                    } else {
                        REFRESH_EVERY
                    };
                    match inbox.recv_timeout(wait) {
                        Ok(next) => command = Some(next),
                        Err(RecvTimeoutError::Timeout) if following.is_some() => command = None,
                        Err(RecvTimeoutError::Timeout) => command = Some(WorkerCommand::Refresh),
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .ok();
        ReleaseWorker {
            commands: Some(commands),
            events,
            thread,
        }
    }

    /// Queues a command.
    pub fn send(&self, command: WorkerCommand) {
        if let Some(c) = &self.commands {
            let _ = c.send(command);
        }
    }

    /// Events that arrived since the last call.
    pub fn poll(&self) -> Vec<WorkerEvent> {
        self.events.try_iter().collect()
    }
}

impl Drop for ReleaseWorker {
    fn drop(&mut self) {
        self.commands.take();
        // The thread ends after its current step; it is not joined, because a free can take
        // up to its timeout and closing the window must not wait for a hung agent.
        drop(self.thread.take());
    }
}

/// A request for room by `policy` (Ask: the question for the user): answered at once when
/// there is room already, it cannot be counted or can never be met, or the same app was
/// answered within the cooldown; else by freeing the others.
fn on_need(
    agent: &discovery::LiveAgent,
    need: &super::protocol::Need,
    policy: super::arbiter::RoomPolicy,
    presets: &[super::arbiter::PresetNeed],
    base: &FreeRequest,
    probe: &mut dyn UsedMemoryProbe,
    cooldowns: &mut super::arbiter::Cooldowns,
) -> WorkerEvent {
    use super::arbiter::{self, RoomPolicy};
    let app = free::app_name(&agent.info);
    match arbiter::answer_at_once(agent, need, presets, probe) {
        Err(made) => WorkerEvent::RoomMade(made),
        Ok(need) if policy == RoomPolicy::Off => WorkerEvent::RoomMade(Box::new(
            arbiter::make_room(agent, &need, policy, base, probe),
        )),
        Ok(need) => match cooldowns.answer(agent, &app, &need) {
            Some(made) => WorkerEvent::RoomMade(Box::new(made)),
            None if policy == RoomPolicy::Ask => {
                WorkerEvent::RoomAsked(Box::new(arbiter::RoomAsk::new(agent, &need)))
            }
            None => {
                let made = arbiter::make_room(agent, &need, policy, base, probe);
                cooldowns.remember(&app, &made);
                WorkerEvent::RoomMade(Box::new(made))
            }
        },
    }
}

/// What making room frees from (its target and level are set per step).
fn room_base(
    agent_dir: &AgentDir,
    comfy: &Result<ComfyUi, String>,
    apps: &[super::engines::EngineHandle],
    keep: &[String],
) -> FreeRequest {
    FreeRequest {
        target: free::FreeTarget::All,
        level: super::FreeLevel::Cache,
        agent_dir: agent_dir.clone(),
        comfyui: comfy.as_ref().ok().cloned(),
        apps: apps.to_vec(),
        keep: keep.to_vec(),
        only_pids: None,
    }
}

fn look(
    agent_dir: &AgentDir,
    comfy: &Result<ComfyUi, String>,
    apps: &[super::engines::EngineHandle],
    room: &(dyn Fn(u32) -> Option<super::arbiter::RoomPolicy> + Sync),
) -> WorkerEvent {
    let discovery = discovery::discover_telling(agent_dir, free::HELLO_TIMEOUT, room);
    let comfyui = match comfy {
        Err(e) => ComfyStatus::BadAddress(e.clone()),
        Ok(comfy) => match comfy.system_stats(free::HELLO_TIMEOUT) {
            Ok(stats) => ComfyStatus::Running {
                stats,
                at: comfy.found_at(),
                agent_pid: discovery
                    .agents
                    .iter()
                    .find(|a| free::is_agent_of(a, comfy))
                    .map(|a| a.endpoint.pid),
            },
            Err(e) => ComfyStatus::NotRunning(e.to_string()),
        },
    };
    let apps = super::each_in_parallel(apps.iter().collect(), |app| AppSeen {
        kind: app.kind(),
        state: app.look().map_err(|e| e.to_string()),
    });
    let comfy_pid = match (&comfyui, comfy) {
        (ComfyStatus::Running { .. }, Ok(c)) => c.listener_pid(),
        _ => None,
    };
    let running: Vec<_> = apps.iter().filter_map(|a| a.state.clone().ok()).collect();
    let owners = super::holders::Owners::now(&discovery.agents, &running, comfy_pid);
    WorkerEvent::Agents {
        discovery,
        comfyui,
        apps,
        owners,
    }
}
