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
    /// Ollama and the SD WebUI, as last seen.
    pub apps: Vec<crate::release::worker::AppSeen>,
    /// A free is running (or waiting for a deferred release).
    pub in_flight: bool,
    /// What a deferred release waits for, while it does.
    pub waiting: Option<String>,
    /// The last result.
    pub toast: Option<Toast>,
    /// Frees to mark on the plot.
    pub markers: Vec<PlotMarker>,
    /// Requests for room waiting for the user's answer (policy Ask), oldest first.
    pub asks: Vec<crate::release::arbiter::RoomAsk>,
    /// Which app each process belongs to.
    pub owners: crate::release::holders::Owners,
}

impl ReleaseView {
    /// Folds a worker event into the view.
    pub fn apply(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::Agents {
                discovery,
                comfyui,
                apps,
                owners,
            } => {
                self.owners = owners;
                self.agents = discovery.agents;
                self.problems = discovery.problems;
                self.comfyui = Some(comfyui);
                self.apps = apps;
                // A request its app stopped waiting for (timed out, ended) leaves the window.
                let agents = &self.agents;
                self.asks.retain(|ask| {
                    agents.iter().any(|a| {
                        a.endpoint.pid == ask.pid
                            && a.info.need.as_ref().is_some_and(|n| n.id == ask.need.id)
                    })
                });
            }
            WorkerEvent::RoomAsked(ask) => {
                if !self
                    .asks
                    .iter()
                    .any(|a| a.pid == ask.pid && a.need.id == ask.need.id)
                {
                    self.asks.push(*ask);
                }
            }
            // Shown in the panel for as long as it lasts (a toast would leave after 10 s).
            // The panel stays free for other releases meanwhile: one app that never finishes
            // its job must not lock Free VRAM for the follow's whole 15 minutes.
            WorkerEvent::Freed(report) if !report.pending.is_empty() => {
                self.in_flight = false;
                self.waiting = Some(report.summary());
            }
            WorkerEvent::RoomMade(made) => {
                self.asks
                    .retain(|a| !(a.pid == made.pid && a.need.id == made.need.id));
                let freed: Option<Bytes> = made
                    .reports
                    .iter()
                    .filter_map(FreeReport::reported_total)
                    .reduce(|a, b| Bytes(a.0.saturating_add(b.0)));
                // Who had the card from here on, and who lent it (asleep until the job ends).
                let slept: Vec<&str> = made
                    .reports
                    .iter()
                    .flat_map(|r| r.slept.iter().map(|e| e.name()))
                    .collect();
                if freed.is_some_and(|b| b.0 > 0) || !slept.is_empty() {
                    let who = made
                        .need
                        .what
                        .clone()
                        .unwrap_or_else(|| format!("pid {}", made.pid));
                    self.markers.push(PlotMarker {
                        alert: false,
                        t: crate::telemetry::unix_seconds(std::time::SystemTime::now()),
                        label: crate::t!(
                            "rel-marker-room-for",
                            who = crate::text::sanitized(&who)
                                .chars()
                                .take(40)
                                .collect::<String>(),
                            size = MemoryUnit::GiB.format(freed.unwrap_or(Bytes(0))),
                            asleep = if slept.is_empty() {
                                "-".to_string()
                            } else {
                                slept.join(", ")
                            }
                        ),
                    });
                }
                let tone = if made.granted { Tone::Good } else { Tone::Bad };
                self.toast = Some(Toast::new(made.message, tone));
            }
            WorkerEvent::HandedBack(back) => {
                let apps: Vec<&str> = back.woke.iter().map(|(a, _)| a.as_str()).collect();
                self.markers.push(PlotMarker {
                    alert: false,
                    t: crate::telemetry::unix_seconds(std::time::SystemTime::now()),
                    label: crate::t!("rel-marker-handed-back", apps = apps.join(", ")),
                });
                let failed = back.woke.iter().any(|(_, r)| r.is_err());
                let tone = if failed { Tone::Bad } else { Tone::Good };
                self.toast = Some(Toast::new(back.summary(), tone));
            }
            WorkerEvent::Freed(report) => {
                self.in_flight = false;
                self.waiting = None;
                // A release that gave nothing back leaves no mark on the charts.
                if report.outcome() == Outcome::Released {
                    self.markers.push(marker(&report));
                }
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
            Some(b) => crate::t!("rel-marker-freed", size = MemoryUnit::GiB.format(b)),
            None => crate::t!("rel-marker-free"),
        },
    }
}

/// This machine's name, looked up once.
fn this_host() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| gethostname::gethostname().to_string_lossy().into_owned())
}

/// The level as the buttons name it.
fn level_name(level: FreeLevel) -> String {
    match level {
        FreeLevel::Cache => crate::t!("rel-level-here-cache"),
        FreeLevel::Unload => crate::t!("rel-level-here-unload"),
    }
}

/// What each level does, said before the user clicks.
fn level_help(level: FreeLevel) -> String {
    match level {
        FreeLevel::Cache => crate::t!("rel-help-cache"),
        FreeLevel::Unload => crate::t!("rel-help-unload"),
    }
}

/// The user's choices for making room, as the panel edits them (all kept in settings).
pub struct RoomChoices<'a> {
    /// What is done when an app asks.
    pub policy: &'a mut crate::release::arbiter::RoomPolicy,
    /// The same, for an app of its own choice.
    pub by_app: &'a mut std::collections::BTreeMap<String, crate::release::arbiter::RoomPolicy>,
    /// Apps never freed for others.
    pub keep: &'a mut Vec<String>,
    /// Engines put to sleep are woken when the job that asked has ended.
    pub hand_back: &'a mut bool,
}

/// Draws the panel; returns the command the user asked for, if any.
pub fn show(
    ui: &mut Ui,
    view: &ReleaseView,
    holders: &[&crate::telemetry::ProcessInfo],
    level: &mut FreeLevel,
    room: RoomChoices<'_>,
    comfy_address: &mut String,
    unit: MemoryUnit,
) -> Option<WorkerCommand> {
    let mut command = None;
    let RoomChoices {
        policy: room,
        by_app,
        keep,
        hand_back,
    } = room;
    ui.label(RichText::new(crate::t!("rel-title-here", host = this_host())).strong());
    ui.horizontal(|ui| {
        ui.selectable_value(level, FreeLevel::Cache, crate::t!("rel-empty-cache"))
            .on_hover_text(level_help(FreeLevel::Cache));
        ui.selectable_value(level, FreeLevel::Unload, crate::t!("rel-unload-models"))
            .on_hover_text(level_help(FreeLevel::Unload));
    });
    ui.label(RichText::new(level_help(*level)).weak().small());
    // Free VRAM itself is on the top bar, always in view; here: its state, and each target.
    if !view.in_flight {
        ui.add(
            egui::Label::new(
                RichText::new(crate::t!("rel-free-is-on-top"))
                    .weak()
                    .small(),
            )
            .wrap(),
        );
    }
    ui.horizontal(|ui| {
        if view.in_flight || view.waiting.is_some() {
            ui.spinner();
            ui.label(if view.waiting.is_some() {
                crate::t!("rel-waiting")
            } else {
                crate::t!("rel-freeing")
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
                crate::t!("rel-no-agent-comfy")
            } else {
                crate::t!("rel-no-agent")
            })
            .weak(),
        );
    }
    for agent in others {
        let info = &agent.info;
        ui.horizontal_wrapped(|ui| {
            let name = match &info.label {
                Some(label) => crate::t!(
                    "rel-agent-labelled",
                    label = label,
                    process = &info.process_name,
                    pid = info.pid.to_string()
                ),
                None => crate::t!(
                    "rel-agent",
                    process = &info.process_name,
                    pid = info.pid.to_string()
                ),
            };
            ui.label(name);
            let held_label = ui.label(RichText::new(held(info, unit)).weak());
            if let Some(onnx) = &info.onnxruntime {
                let sessions: Vec<String> = onnx.sessions.iter().map(|s| s.describe()).collect();
                held_label.on_hover_text(sessions.join("\n"));
            }
            if *level == FreeLevel::Unload && !info.levels.iter().any(|l| l == "unload") {
                ui.label(RichText::new(crate::t!("rel-no-unload-hook")).weak());
            }
            let says = info.does.as_ref().and_then(|d| d.get(*level));
            let hover = match says {
                Some(words) => crate::t!(
                    "rel-free-only-says",
                    pid = info.pid.to_string(),
                    words = words
                ),
                None => crate::t!("rel-free-only", pid = info.pid.to_string()),
            };
            if ui
                .add_enabled(
                    !view.in_flight,
                    egui::Button::new(crate::t!("rel-free")).small(),
                )
                .on_hover_text(hover)
                .clicked()
            {
                command = Some(WorkerCommand::Free(FreeTarget::Agent(info.pid), *level));
            }
        });
        // Its last out-of-memory failure, and the way out: free the others, then the user
        // runs the job again (the agent never retries by itself).
        if let Some(oom) = &info.oom {
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new(crate::t!("rel-oom", message = oom.message.clone()))
                        .color(ui.visuals().error_fg_color),
                );
                if ui
                    .add_enabled(
                        !view.in_flight,
                        egui::Button::new(crate::t!("rel-free-others")).small(),
                    )
                    .on_hover_text(crate::t!("rel-free-others-hover"))
                    .clicked()
                {
                    command = Some(WorkerCommand::Free(FreeTarget::AllBut(info.pid), *level));
                }
            });
        }
        // What the chosen level will do in this process, said before the click.
        if let Some(words) = info.does.as_ref().and_then(|d| d.get(*level)) {
            ui.label(
                RichText::new(crate::t!(
                    "rel-level-says",
                    level = level_name(*level),
                    words = words
                ))
                .weak()
                .small(),
            );
        }
    }
    for problem in &view.problems {
        ui.label(RichText::new(problem).color(ui.visuals().warn_fg_color));
    }
    if let Some(c) = apps(ui, view, *level, unit) {
        command = Some(c);
    }
    unmanaged(ui, view, holders, unit);

    ui.label(crate::t!("room-title"))
        .on_hover_text(crate::t!("room-hover"));
    ui.horizontal_wrapped(|ui| {
        for policy in crate::release::arbiter::RoomPolicy::ALL {
            if ui
                .selectable_label(*room == policy, policy.text())
                .on_hover_text(crate::t!("room-hover"))
                .clicked()
                && *room != policy
            {
                *room = policy;
                command = Some(WorkerCommand::SetRoomPolicy(policy));
            }
        }
    });
    if let Some(c) = asker_rows(ui, view, *room, by_app) {
        command = Some(c);
    }
    let anyone_makes_room = *room != crate::release::arbiter::RoomPolicy::Off
        || by_app
            .values()
            .any(|p| *p != crate::release::arbiter::RoomPolicy::Off);
    if anyone_makes_room && let Some(c) = keep_row(ui, view, keep) {
        command = Some(c);
    }
    if anyone_makes_room
        && ui
            .checkbox(hand_back, crate::t!("room-hand-back"))
            .on_hover_text(crate::t!("room-hand-back-hover"))
            .changed()
    {
        command = Some(WorkerCommand::SetHandBack(*hand_back));
    }
    ui.horizontal(|ui| {
        let label = ui.label("ComfyUI");
        let edit = ui
            .add(egui::TextEdit::singleline(comfy_address).desired_width(130.0))
            .labelled_by(label.id)
            .on_hover_text(crate::t!("rel-comfy-address-hover"));
        if edit.lost_focus() {
            command = Some(WorkerCommand::SetComfyAddress(comfy_address.clone()));
        }
    });
    match &view.comfyui {
        None => {
            ui.label(RichText::new(crate::t!("rel-checking")).weak());
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
                ui.label(crate::t!("rel-running-at", at = at));
                for d in &stats.devices {
                    let memory = match agent {
                        Some(a) => held(&a.info, unit),
                        None if d.has_vram() => {
                            crate::t!(
                                "rel-torch-reserved",
                                size = unit.format(Bytes(d.torch_vram_total))
                            )
                        }
                        None => d.describe_kind(),
                    };
                    ui.label(RichText::new(memory).weak());
                }
                let (enabled, hover) = match (agent, *level) {
                    (Some(_), _) => (true, crate::t!("rel-through-node")),
                    (None, FreeLevel::Unload) => {
                        (true, "POST /free {\"unload_models\": true}".to_string())
                    }
                    (None, FreeLevel::Cache) => (false, crate::t!("rel-comfy-no-cache")),
                };
                if ui
                    .add_enabled(
                        enabled && !view.in_flight,
                        egui::Button::new(crate::t!("rel-free")).small(),
                    )
                    .on_hover_text(&hover)
                    .on_disabled_hover_text(&hover)
                    .clicked()
                {
                    command = Some(WorkerCommand::Free(FreeTarget::ComfyUi, *level));
                }
            });
            let app = agent.and_then(|a| a.info.app.as_ref());
            if app.and_then(|a| a.dynamic_vram) == Some(true)
                || (agent.is_none() && stats.dynamic_vram() == Some(true))
            {
                ui.label(RichText::new(crate::t!("rel-dynamic-vram")).small())
                    .on_hover_text(crate::t!("rel-dynamic-vram-hover"));
            }
            // What the chosen level does in this ComfyUI, in the node's own words.
            let words = agent
                .and_then(|a| a.info.does.as_ref())
                .and_then(|d| d.get(*level))
                .map(|w| crate::t!("rel-level-says", level = level_name(*level), words = w));
            ui.label(
                RichText::new(words.unwrap_or_else(|| match agent {
                    Some(_) => crate::t!("rel-with-node"),
                    None => crate::t!("rel-without-node"),
                }))
                .weak()
                .small(),
            );
        }
    }
    command
}

/// "Never free for others:" and a toggle per app seen now (agents by their app or label,
/// ComfyUI, Ollama, the SD WebUI) plus any kept before that is not running.
/// For each app that can ask (one with an agent), what is done when it asks: the choice above,
/// or its own. So ComfyUI may unload the others' models while FaceFusion only empties caches.
fn asker_rows(
    ui: &mut Ui,
    view: &ReleaseView,
    global: crate::release::arbiter::RoomPolicy,
    by_app: &mut std::collections::BTreeMap<String, crate::release::arbiter::RoomPolicy>,
) -> Option<WorkerCommand> {
    use crate::release::arbiter::RoomPolicy;
    let mut names: Vec<String> = view
        .agents
        .iter()
        .map(|a| crate::release::free::app_name(&a.info))
        .collect();
    names.extend(by_app.keys().cloned());
    names.sort();
    names.dedup();
    let text = |choice: Option<RoomPolicy>| match choice {
        None => crate::t!("room-as-above", policy = global.text()),
        Some(p) => p.text(),
    };
    let mut changed = false;
    for name in names {
        // The label on its own line, the list under it: the same shape for every name,
        // however long (a wrapped row put some lists beside their name and some under it).
        ui.vertical(|ui| {
            let label = ui
                .label(RichText::new(crate::t!("room-when-asks", app = name.clone())).weak())
                .on_hover_text(crate::t!("room-when-asks-hover"));
            let current = by_app.get(&name).copied();
            let combo = egui::ComboBox::from_id_salt(("room_for", &name))
                .selected_text(text(current))
                .show_ui(ui, |ui| {
                    let choices = std::iter::once(None).chain(RoomPolicy::ALL.map(Some));
                    for choice in choices {
                        if ui
                            .selectable_label(current == choice, text(choice))
                            .clicked()
                            && current != choice
                        {
                            match choice {
                                None => by_app.remove(&name),
                                Some(p) => by_app.insert(name.clone(), p),
                            };
                            changed = true;
                        }
                    }
                });
            combo.response.labelled_by(label.id);
        });
    }
    changed.then(|| WorkerCommand::SetRoomPolicyByApp(by_app.clone()))
}

fn keep_row(ui: &mut Ui, view: &ReleaseView, keep: &mut Vec<String>) -> Option<WorkerCommand> {
    let mut names: Vec<String> = view
        .agents
        .iter()
        .map(|a| crate::release::free::app_name(&a.info))
        .collect();
    if matches!(view.comfyui, Some(ComfyStatus::Running { .. })) {
        names.push("ComfyUI".into());
    }
    names.extend(
        view.apps
            .iter()
            .filter_map(|a| a.state.as_ref().ok())
            .map(|s| s.kind.name().to_string()),
    );
    names.extend(keep.iter().cloned());
    names.sort();
    names.dedup();
    if names.is_empty() {
        return None;
    }
    let mut changed = false;
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(crate::t!("room-keep")).weak())
            .on_hover_text(crate::t!("room-keep-hover"));
        for name in names {
            let kept = keep.contains(&name);
            if ui.selectable_label(kept, &name).clicked() {
                if kept {
                    keep.retain(|k| k != &name);
                } else {
                    keep.push(name);
                }
                changed = true;
            }
        }
    });
    changed.then(|| WorkerCommand::SetRoomKeep(keep.clone()))
}

/// Ollama and the SD WebUI when they run: what each holds (VRAM and host memory per model),
/// whether it is generating, and a Free button that unloads them (they have no cache level).
fn apps(
    ui: &mut Ui,
    view: &ReleaseView,
    level: FreeLevel,
    unit: MemoryUnit,
) -> Option<WorkerCommand> {
    let mut command = None;
    for seen in &view.apps {
        let Ok(status) = &seen.state else { continue };
        ui.horizontal_wrapped(|ui| {
            ui.label(&status.target);
            let held = if status.holds.is_empty() {
                crate::t!("app-nothing-loaded")
            } else {
                status
                    .holds
                    .iter()
                    .map(|h| {
                        // An engine that does not say: its processes in the table do.
                        if h.vram == 0 && h.host == 0 {
                            h.what.clone()
                        } else if h.host == 0 {
                            crate::t!(
                                "rel-app-holds-vram",
                                what = h.what.clone(),
                                vram = unit.format(Bytes(h.vram))
                            )
                        } else {
                            crate::t!(
                                "rel-app-holds",
                                what = h.what.clone(),
                                vram = unit.format(Bytes(h.vram)),
                                host = unit.format(Bytes(h.host))
                            )
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" · ")
            };
            ui.label(RichText::new(held).weak());
            if let Some(job) = &status.busy {
                ui.label(
                    RichText::new(crate::t!("rel-app-busy", job = job.clone()))
                        .color(ui.visuals().warn_fg_color),
                );
            }
            if status.asleep {
                ui.label(RichText::new(crate::t!("rel-app-asleep")).weak());
                if ui
                    .add_enabled(
                        !view.in_flight,
                        egui::Button::new(crate::t!("rel-app-wake")).small(),
                    )
                    .on_hover_text(crate::t!("rel-app-wake-hover"))
                    .clicked()
                {
                    command = Some(WorkerCommand::Wake(seen.kind));
                }
            }
            // What each level does in this engine, and why one does nothing here.
            let says = match &status.note {
                Some(note) => format!("{}\n{note}", status.kind.levels()),
                None => status.kind.levels(),
            };
            let cache_works = status.kind.has_cache_level();
            let (enabled, hover) = match level {
                _ if status.note.is_some() => (false, says),
                FreeLevel::Unload => (true, format!("{}\n{says}", crate::t!("rel-app-free-hover"))),
                FreeLevel::Cache if cache_works => (true, says),
                FreeLevel::Cache => (false, format!("{}\n{says}", crate::t!("rel-app-no-cache"))),
            };
            if ui
                .add_enabled(
                    enabled
                        && !view.in_flight
                        && (!status.holds.is_empty() || status.kind.has_cache_level()),
                    egui::Button::new(crate::t!("rel-free")).small(),
                )
                .on_hover_text(&hover)
                .on_disabled_hover_text(&hover)
                .clicked()
            {
                command = Some(WorkerCommand::Free(FreeTarget::App(seen.kind), level));
            }
        });
    }
    command
}

/// The processes holding GPU memory that no agent or engine manages, and what would free each.
fn unmanaged(
    ui: &mut Ui,
    view: &ReleaseView,
    holders: &[&crate::telemetry::ProcessInfo],
    unit: MemoryUnit,
) {
    let alone: Vec<_> = holders
        .iter()
        .filter(|p| !view.owners.by_pid.contains_key(&p.pid))
        .take(8)
        .collect();
    if alone.is_empty() {
        return;
    }
    ui.label(RichText::new(crate::t!("holders-unmanaged-title")).weak());
    for p in alone {
        let held = p
            .used
            .map(|b| unit.format(b))
            .unwrap_or_else(|| crate::t!("na"));
        ui.label(
            RichText::new(format!(
                "{} (pid {}, {held}) — {}",
                p.name,
                p.pid,
                view.owners.describe(p.pid, &p.name)
            ))
            .small(),
        );
    }
}

/// "torch holds 3.0 GiB", the reason torch is missing, or what is pending.
fn held(info: &crate::release::protocol::AgentInfo, unit: MemoryUnit) -> String {
    let memory = match (info.reserved, &info.onnxruntime, &info.torch_missing_reason) {
        (Some(r), Some(onnx), _) => {
            format!(
                "{} · {}",
                crate::t!("rel-torch-holds", size = unit.format(Bytes(r))),
                onnx.summary()
            )
        }
        (Some(r), None, _) => crate::t!("rel-torch-holds", size = unit.format(Bytes(r))),
        // An onnxruntime process (FaceFusion) has no torch: what it has matters, not that.
        (None, Some(onnx), _) => onnx.summary(),
        (None, None, Some(reason)) => reason.clone(),
        (None, None, None) => crate::t!("rel-no-torch"),
    };
    let models = info
        .app
        .as_ref()
        .and_then(|app| Some((app.models_loaded?, app.models_bytes)))
        .map(|(n, bytes)| {
            let loaded = match bytes {
                Some(b) if n > 0 => {
                    crate::t!(
                        "rel-models-loaded-size",
                        count = n,
                        size = unit.format(Bytes(b))
                    )
                }
                _ => crate::t!("rel-models-loaded", count = n),
            };
            format!(" · {loaded}")
        })
        .unwrap_or_default();
    match &info.pending {
        Some(p) => format!("{memory}{models} · {p}"),
        None => format!("{memory}{models}"),
    }
}

/// The result toast in the bottom-right corner, while it is fresh; never wider than the window.
/// The oldest request for room waiting for the user (policy Ask), as a box at the top of
/// the window in every view; returns the answer once one is clicked.
pub fn room_ask(ui: &mut Ui, asks: &[crate::release::arbiter::RoomAsk]) -> Option<WorkerCommand> {
    use crate::release::arbiter::RoomPolicy;
    let ask = asks.first()?;
    let gib = |b: u64| MemoryUnit::GiB.format(Bytes(b));
    let free = ask
        .need
        .free
        .map_or_else(|| crate::t!("room-free-unknown"), gib);
    let width = (ui.ctx().content_rect().width() - 32.0).clamp(200.0, 560.0);
    let mut answer = None;
    egui::Area::new(egui::Id::unique("room_ask"))
        .anchor(egui::Align2::CENTER_TOP, [0.0, 40.0])
        .order(egui::Order::Foreground)
        .show(ui.ctx(), |ui| {
            // Outlined in the warning colour: a question waits, not a notice.
            egui::Frame::popup(ui.style())
                .inner_margin(12)
                .stroke(egui::Stroke::new(1.5, ui.visuals().warn_fg_color))
                .show(ui, |ui| {
                    ui.set_max_width(width);
                    ui.add(
                        egui::Label::new(
                            RichText::new(crate::t!(
                                "room-ask-title",
                                who = ask.who.clone(),
                                needed = gib(ask.need.bytes),
                                free = free
                            ))
                            .strong(),
                        )
                        .wrap(),
                    );
                    ui.add(egui::Label::new(crate::t!("room-ask-question")).wrap());
                    ui.horizontal_wrapped(|ui| {
                        for policy in [RoomPolicy::Caches, RoomPolicy::Models, RoomPolicy::Off] {
                            let text = match policy {
                                RoomPolicy::Caches => crate::t!("room-ask-caches"),
                                RoomPolicy::Models => crate::t!("room-ask-models"),
                                _ => crate::t!("room-ask-not-now"),
                            };
                            if ui.button(text).clicked() {
                                answer = Some(WorkerCommand::AnswerRoom {
                                    pid: ask.pid,
                                    need: ask.need.id,
                                    policy,
                                });
                            }
                        }
                    });
                    ui.label(RichText::new(crate::t!("room-ask-waits")).weak().small());
                    if asks.len() > 1 {
                        let count = (asks.len() - 1).to_string();
                        ui.label(RichText::new(crate::t!("room-ask-more", count = count)).small());
                    }
                });
        });
    answer
}

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
