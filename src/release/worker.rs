//! The release worker thread: keeps the agent list fresh and performs frees, so the UI only
//! sends commands and reads events — a hung agent can never freeze the window.

use super::FreeLevel;
use super::comfyui::{ComfyUi, SystemStats};
use super::discovery::{self, Discovery};
use super::free::{self, FreeReport, FreeRequest, FreeTarget, UsedMemoryProbe};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the agent list is refreshed when nothing else happens.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// What the UI asks for.
#[derive(Clone, Debug)]
pub enum WorkerCommand {
    /// Look at agents and ComfyUI now.
    Refresh,
    /// Free memory.
    Free(FreeTarget, FreeLevel),
    /// Use another ComfyUI address.
    SetComfyAddress(String),
}

/// ComfyUI as last seen.
#[derive(Clone, Debug, PartialEq)]
pub enum ComfyStatus {
    /// The address is not usable (not loopback, unparsable).
    BadAddress(String),
    /// Nothing answered.
    NotRunning(String),
    /// It answered.
    Running(SystemStats),
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
    },
    /// A free finished.
    Freed(FreeReport),
}

/// Handle to the worker; dropping it stops the thread.
pub struct ReleaseWorker {
    commands: Option<Sender<WorkerCommand>>,
    events: Receiver<WorkerEvent>,
    thread: Option<JoinHandle<()>>,
}

impl ReleaseWorker {
    /// Starts the worker. `wake` is called after each event (the UI passes `request_repaint`).
    pub fn spawn(
        agent_dir: PathBuf,
        comfy_address: String,
        mut probe: Box<dyn UsedMemoryProbe>,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let (commands, inbox) = mpsc::channel::<WorkerCommand>();
        let (outbox, events) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("vramdeck-release".into())
            .spawn(move || {
                let mut comfy_address = comfy_address;
                let mut last_look: Option<WorkerEvent> = None;
                let send = |event| {
                    let delivered = outbox.send(event).is_ok();
                    wake();
                    delivered
                };
                let mut command = Some(WorkerCommand::Refresh);
                loop {
                    match command.take() {
                        Some(WorkerCommand::Refresh) | None => {
                            let seen = look(&agent_dir, &comfy_address);
                            // Unchanged news is not worth a repaint (idle CPU matters).
                            if last_look.as_ref() != Some(&seen) {
                                last_look = Some(seen.clone());
                                if !send(seen) {
                                    return;
                                }
                            }
                        }
                        Some(WorkerCommand::SetComfyAddress(address)) => {
                            comfy_address = address;
                            command = Some(WorkerCommand::Refresh);
                            continue;
                        }
                        Some(WorkerCommand::Free(target, level)) => {
                            let request = FreeRequest {
                                target,
                                level,
                                agent_dir: agent_dir.clone(),
                                comfyui: ComfyUi::parse(&comfy_address).ok(),
                            };
                            let report = free::perform(&request, probe.as_mut());
                            if !send(WorkerEvent::Freed(report)) {
                                return;
                            }
                            command = Some(WorkerCommand::Refresh);
                            continue;
                        }
                    }
                    match inbox.recv_timeout(REFRESH_EVERY) {
                        Ok(next) => command = Some(next),
                        Err(RecvTimeoutError::Timeout) => {}
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

fn look(agent_dir: &std::path::Path, comfy_address: &str) -> WorkerEvent {
    let discovery = discovery::discover(agent_dir, free::HELLO_TIMEOUT);
    let comfyui = match ComfyUi::parse(comfy_address) {
        Err(e) => ComfyStatus::BadAddress(e.to_string()),
        Ok(comfy) => match comfy.system_stats(free::HELLO_TIMEOUT) {
            Ok(stats) => ComfyStatus::Running(stats),
            Err(e) => ComfyStatus::NotRunning(e.to_string()),
        },
    };
    WorkerEvent::Agents { discovery, comfyui }
}
