//! The "Free VRAM" panel: cooperating processes, ComfyUI, and the buttons that release memory.

use super::plots::PlotMarker;
use crate::release::FreeLevel;
use crate::release::discovery::LiveAgent;
use crate::release::free::{FreeReport, FreeTarget, Outcome};
use crate::release::worker::{ComfyStatus, WorkerCommand, WorkerEvent};
use crate::units::{Bytes, MemoryUnit};
use egui::{Color32, RichText, Ui};
use std::time::{Duration, Instant};

/// How long a result toast stays up.
pub const TOAST_FOR: Duration = Duration::from_secs(10);

/// What a toast says about the news it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// It worked.
    Good,
    /// Neither success nor failure ("nothing was released", "waiting").
    Neutral,
    /// Something failed or needs attention.
    Bad,
}

/// A result, shown as a toast.
#[derive(Clone, Debug)]
pub struct Toast {
    /// The summary line.
    pub text: String,
    /// Its colour.
    pub tone: Tone,
    /// When it appeared.
    pub shown_at: Instant,
}

impl Toast {
    /// A toast shown from now.
    pub fn new(text: String, tone: Tone) -> Self {
        Toast {
            text,
            tone,
            shown_at: Instant::now(),
        }
    }
}

/// What the panel shows; filled from the release worker's events.
#[derive(Clone, Debug, Default)]
pub struct ReleaseView {
    /// Agents that answered.
    pub agents: Vec<LiveAgent>,
    /// Agents that did not answer properly.
    pub problems: Vec<String>,
    /// ComfyUI's state, once known.
    pub comfyui: Option<ComfyStatus>,
    /// A free is running (or waiting for a deferred release).
    pub in_flight: bool,
    /// What a deferred release waits for, while it does.
    pub waiting: Option<String>,
    /// The last result.
    pub toast: Option<Toast>,
    /// Frees to mark on the plot.
    pub markers: Vec<PlotMarker>,
}

impl ReleaseView {
    /// Folds a worker event into the view.
    pub fn apply(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::Agents { discovery, comfyui } => {
                self.agents = discovery.agents;
                self.problems = discovery.problems;
                self.comfyui = Some(comfyui);
            }
            // Shown in the panel for as long as it lasts (a toast would leave after 10 s).
            WorkerEvent::Freed(report) if !report.pending.is_empty() => {
                self.waiting = Some(report.summary());
            }
            WorkerEvent::Freed(report) => {
                self.in_flight = false;
                self.waiting = None;
                self.markers.push(marker(&report));
                let tone = match report.outcome() {
                    Outcome::Released => Tone::Good,
                    Outcome::Nothing | Outcome::Pending => Tone::Neutral,
                    Outcome::Failed => Tone::Bad,
                };
                self.toast = Some(Toast::new(report.summary(), tone));
            }
        }
    }

    /// The pid of the agent inside ComfyUI, when ComfyUI runs with the vramdeck node.
    fn comfy_agent(&self) -> Option<u32> {
        match &self.comfyui {
            Some(ComfyStatus::Running { agent_pid, .. }) => *agent_pid,
            _ => None,
        }
    }
}

fn marker(report: &FreeReport) -> PlotMarker {
    let released = report
        .measured_release()
        .filter(|b| *b > 0)
        .map(|b| Bytes(u64::try_from(b).unwrap_or(u64::MAX)))
        .or(report.reported_total());
    PlotMarker {
        alert: false,
        t: crate::telemetry::unix_seconds(report.at),
        label: match released {
            Some(b) => format!("freed {}", MemoryUnit::GiB.format(b)),
            None => "free VRAM".into(),
        },
    }
}

/// The level as the buttons name it.
fn level_name(level: FreeLevel) -> &'static str {
    match level {
        FreeLevel::Cache => "empty cache here",
        FreeLevel::Unload => "unload here",
    }
}

/// What each level does, said before the user clicks.
fn level_help(level: FreeLevel) -> &'static str {
    match level {
        FreeLevel::Cache => {
            "Empty cache: returns memory no tensor uses (gc + torch.cuda.empty_cache; idle \
             onnxruntime GPU sessions are rebuilt, which returns their arenas). Models stay \
             loaded; safe while a job runs."
        }
        FreeLevel::Unload => {
            "Unload models: the agents' unload hooks run, then the cache is emptied; the next \
             run loads the models again. ComfyUI unloads between prompts (after the running \
             one) and keeps its node cache, so models come back from RAM, not disk."
        }
    }
}

/// Draws the panel; returns the command the user asked for, if any.
pub fn show(
    ui: &mut Ui,
    view: &ReleaseView,
    level: &mut FreeLevel,
    comfy_address: &mut String,
    unit: MemoryUnit,
) -> Option<WorkerCommand> {
    let mut command = None;
    ui.label(RichText::new("Release cached VRAM").strong());
    ui.horizontal(|ui| {
        ui.selectable_value(level, FreeLevel::Cache, "empty cache")
            .on_hover_text(level_help(FreeLevel::Cache));
        ui.selectable_value(level, FreeLevel::Unload, "unload models")
            .on_hover_text(level_help(FreeLevel::Unload));
    });
    ui.label(RichText::new(level_help(*level)).weak().small());
    ui.horizontal(|ui| {
        let button = ui.add_enabled(!view.in_flight, egui::Button::new("Free VRAM"));
        if button
            .on_hover_text("Every agent, and ComfyUI if it is running")
            .clicked()
        {
            command = Some(WorkerCommand::Free(FreeTarget::All, *level));
        }
        if view.in_flight {
            ui.spinner();
            ui.label(if view.waiting.is_some() {
                "waiting..."
            } else {
                "freeing..."
            });
        }
    });
    if let Some(waiting) = &view.waiting {
        ui.label(RichText::new(waiting).color(ui.visuals().warn_fg_color));
    }

    let comfy_agent = view.comfy_agent();
    let others: Vec<&LiveAgent> = view
        .agents
        .iter()
        .filter(|a| Some(a.endpoint.pid) != comfy_agent)
        .collect();
    if others.is_empty() && comfy_agent.is_none() {
        let comfy_running = matches!(view.comfyui, Some(ComfyStatus::Running { .. }));
        ui.label(
            RichText::new(if comfy_running {
                "No agent running. For ComfyUI, install the vramdeck node (custom_nodes/\
                 comfyui-vramdeck, see README) to empty its cache too; other WebUIs: import \
                 vramdeck_agent; vramdeck_agent.start()"
            } else {
                "No agent running. ComfyUI: install the vramdeck node (custom_nodes/\
                 comfyui-vramdeck); other WebUIs: import vramdeck_agent; vramdeck_agent.start()"
            })
            .weak(),
        );
    }
    for agent in others {
        let info = &agent.info;
        ui.horizontal_wrapped(|ui| {
            let name = match &info.label {
                Some(label) => format!("{label} · {} (pid {})", info.process_name, info.pid),
                None => format!("{} (pid {})", info.process_name, info.pid),
            };
            ui.label(name);
            let held_label = ui.label(RichText::new(held(info, unit)).weak());
            if let Some(onnx) = &info.onnxruntime {
                let sessions: Vec<String> = onnx.sessions.iter().map(|s| s.describe()).collect();
                held_label.on_hover_text(sessions.join("\n"));
            }
            if *level == FreeLevel::Unload && !info.levels.iter().any(|l| l == "unload") {
                ui.label(RichText::new("(no unload hook: cache only)").weak());
            }
            let says = info.does.as_ref().and_then(|d| d.get(*level));
            let hover = match says {
                Some(words) => format!("Free only pid {}: {words}", info.pid),
                None => format!("Free only pid {}", info.pid),
            };
            if ui
                .add_enabled(!view.in_flight, egui::Button::new("Free").small())
                .on_hover_text(hover)
                .clicked()
            {
                command = Some(WorkerCommand::Free(FreeTarget::Agent(info.pid), *level));
            }
        });
        // What the chosen level will do in this process, said before the click.
        if let Some(words) = info.does.as_ref().and_then(|d| d.get(*level)) {
            ui.label(
                RichText::new(format!("{}: {words}", level_name(*level)))
                    .weak()
                    .small(),
            );
        }
    }
    for problem in &view.problems {
        ui.label(RichText::new(problem).color(ui.visuals().warn_fg_color));
    }

    ui.horizontal(|ui| {
        let label = ui.label("ComfyUI");
        let edit = ui
            .add(egui::TextEdit::singleline(comfy_address).desired_width(130.0))
            .labelled_by(label.id)
            .on_hover_text(
                "ComfyUI's address on this machine (loopback only). Without a port, 8188 and \
                 ComfyUI Desktop's 8000 are tried.",
            );
        if edit.lost_focus() {
            command = Some(WorkerCommand::SetComfyAddress(comfy_address.clone()));
        }
    });
    match &view.comfyui {
        None => {
            ui.label(RichText::new("checking...").weak());
        }
        Some(ComfyStatus::BadAddress(e)) | Some(ComfyStatus::NotRunning(e)) => {
            ui.label(RichText::new(e).weak());
        }
        Some(ComfyStatus::Running {
            stats,
            at,
            agent_pid,
        }) => {
            let agent =
                agent_pid.and_then(|pid| view.agents.iter().find(|a| a.endpoint.pid == pid));
            ui.horizontal_wrapped(|ui| {
                ui.label(format!("running at {at}"));
                for d in &stats.devices {
                    let memory = match agent {
                        Some(a) => held(&a.info, unit),
                        None if d.has_vram() => {
                            format!("torch reserved {}", unit.format(Bytes(d.torch_vram_total)))
                        }
                        None => d.describe_kind().to_string(),
                    };
                    ui.label(RichText::new(memory).weak());
                }
                let (enabled, hover) = match (agent, *level) {
                    (Some(_), _) => (true, "Through the vramdeck node inside ComfyUI"),
                    (None, FreeLevel::Unload) => (true, "POST /free {\"unload_models\": true}"),
                    (None, FreeLevel::Cache) => (
                        false,
                        "ComfyUI's HTTP API cannot empty the cache without unloading every \
                         model: add the vramdeck node to ComfyUI, or choose unload models",
                    ),
                };
                if ui
                    .add_enabled(
                        enabled && !view.in_flight,
                        egui::Button::new("Free").small(),
                    )
                    .on_hover_text(hover)
                    .on_disabled_hover_text(hover)
                    .clicked()
                {
                    command = Some(WorkerCommand::Free(FreeTarget::ComfyUi, *level));
                }
            });
            let app = agent.and_then(|a| a.info.app.as_ref());
            if app.and_then(|a| a.dynamic_vram) == Some(true)
                || (agent.is_none() && stats.dynamic_vram() == Some(true))
            {
                ui.label(RichText::new("Dynamic VRAM (comfy-aimdo) on").small())
                    .on_hover_text(
                        "ComfyUI keeps idle models' weights in aimdo's own VRAM buffer and hands \
                         that VRAM back by itself when another process needs it (unless started \
                         with --disable-nvml-pressure). Empty cache does not touch that buffer; \
                         unload models does.",
                    );
            }
            // What the chosen level does in this ComfyUI, in the node's own words.
            let words = agent
                .and_then(|a| a.info.does.as_ref())
                .and_then(|d| d.get(*level))
                .map(|w| format!("{}: {w}", level_name(*level)));
            ui.label(
                RichText::new(words.unwrap_or_else(|| {
                    match agent {
                        Some(_) => "with the vramdeck node: empty cache and unload".into(),
                        None => "no vramdeck node: unload models only (over HTTP); install the \
                             node to empty the cache too"
                            .into(),
                    }
                }))
                .weak()
                .small(),
            );
        }
    }
    command
}

/// "torch holds 3.0 GiB", the reason torch is missing, or what is pending.
fn held(info: &crate::release::protocol::AgentInfo, unit: MemoryUnit) -> String {
    let memory = match (info.reserved, &info.onnxruntime, &info.torch_missing_reason) {
        (Some(r), Some(onnx), _) => {
            format!("torch holds {} · {}", unit.format(Bytes(r)), onnx.summary())
        }
        (Some(r), None, _) => format!("torch holds {}", unit.format(Bytes(r))),
        // An onnxruntime process (FaceFusion) has no torch: what it has matters, not that.
        (None, Some(onnx), _) => onnx.summary(),
        (None, None, Some(reason)) => reason.clone(),
        (None, None, None) => "no torch".into(),
    };
    let models = info
        .app
        .as_ref()
        .and_then(|app| Some((app.models_loaded?, app.models_bytes)))
        .map(|(n, bytes)| {
            let size = bytes
                .map(|b| format!(" ({})", unit.format(Bytes(b))))
                .unwrap_or_default();
            match n {
                0 => " · no model loaded".to_string(),
                1 => format!(" · 1 model loaded{size}"),
                n => format!(" · {n} models loaded{size}"),
            }
        })
        .unwrap_or_default();
    match &info.pending {
        Some(p) => format!("{memory}{models} · {p}"),
        None => format!("{memory}{models}"),
    }
}

/// The result toast in the bottom-right corner, while it is fresh; never wider than the window.
pub fn toast(ui: &mut Ui, toast: &Toast) {
    let age = toast.shown_at.elapsed();
    if age >= TOAST_FOR {
        return;
    }
    ui.ctx().request_repaint_after(TOAST_FOR - age);
    let fill = match toast.tone {
        Tone::Good => Color32::from_rgb(0x1f, 0x5f, 0x3a),
        Tone::Neutral => Color32::from_rgb(0x3a, 0x44, 0x52),
        Tone::Bad => Color32::from_rgb(0x7a, 0x24, 0x1c),
    };
    let width = (ui.ctx().content_rect().width() - 32.0 - 20.0).clamp(80.0, 520.0);
    egui::Area::new(egui::Id::unique("free_toast"))
        .anchor(egui::Align2::RIGHT_BOTTOM, [-16.0, -36.0])
        .show(ui.ctx(), |ui| {
            egui::Frame::new()
                .fill(fill)
                .corner_radius(6)
                .inner_margin(10)
                .show(ui, |ui| {
                    ui.set_max_width(width);
                    ui.label(RichText::new(&toast.text).color(Color32::WHITE));
                });
        });
}
