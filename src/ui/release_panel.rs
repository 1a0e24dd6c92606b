//! The "Free VRAM" panel: cooperating processes, ComfyUI, and the buttons that release memory.

use super::plots::PlotMarker;
use crate::release::FreeLevel;
use crate::release::discovery::LiveAgent;
use crate::release::free::{FreeReport, FreeTarget};
use crate::release::worker::{ComfyStatus, WorkerCommand, WorkerEvent};
use crate::units::{Bytes, MemoryUnit};
use egui::{Color32, RichText, Ui};
use std::time::{Duration, Instant};

/// How long a result toast stays up.
pub const TOAST_FOR: Duration = Duration::from_secs(10);

/// A free's result, shown as a toast.
#[derive(Clone, Debug)]
pub struct Toast {
    /// The summary line.
    pub text: String,
    /// Whether anything failed.
    pub ok: bool,
    /// When it appeared.
    pub shown_at: Instant,
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
    /// A free is running.
    pub in_flight: bool,
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
            WorkerEvent::Freed(report) => {
                self.in_flight = false;
                self.markers.push(marker(&report));
                self.toast = Some(Toast {
                    ok: report.results.iter().all(|r| r.outcome.is_ok())
                        && !report.results.is_empty(),
                    text: report.summary(),
                    shown_at: Instant::now(),
                });
            }
        }
    }
}

fn marker(report: &FreeReport) -> PlotMarker {
    let released = report
        .measured_release()
        .filter(|b| *b > 0)
        .map(|b| Bytes(b as u64))
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
            .on_hover_text("gc.collect + torch.cuda.empty_cache: models stay loaded");
        ui.selectable_value(level, FreeLevel::Unload, "unload models")
            .on_hover_text("Also unload models: the next run loads them again");
    });
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
            ui.label("freeing...");
        }
    });

    if view.agents.is_empty() {
        ui.label(
            RichText::new(
                "No agent running. In your WebUI: import vramdeck_agent; vramdeck_agent.start()",
            )
            .weak(),
        );
    }
    for agent in &view.agents {
        let info = &agent.info;
        ui.horizontal_wrapped(|ui| {
            let name = match &info.label {
                Some(label) => format!("{label} · {} (pid {})", info.process_name, info.pid),
                None => format!("{} (pid {})", info.process_name, info.pid),
            };
            ui.label(name);
            let held = match (info.reserved, &info.torch_missing_reason) {
                (Some(r), _) => format!("torch holds {}", unit.format(Bytes(r))),
                (None, Some(reason)) => reason.clone(),
                (None, None) => "no torch".into(),
            };
            ui.label(RichText::new(held).weak());
            if ui
                .add_enabled(!view.in_flight, egui::Button::new("Free").small())
                .on_hover_text(format!("Free only pid {}", info.pid))
                .clicked()
            {
                command = Some(WorkerCommand::Free(FreeTarget::Agent(info.pid), *level));
            }
        });
    }
    for problem in &view.problems {
        ui.label(RichText::new(problem).color(ui.visuals().warn_fg_color));
    }

    ui.horizontal(|ui| {
        let label = ui.label("ComfyUI");
        let edit = ui
            .add(egui::TextEdit::singleline(comfy_address).desired_width(130.0))
            .labelled_by(label.id)
            .on_hover_text("ComfyUI's address on this machine (loopback only)");
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
        Some(ComfyStatus::Running(stats)) => {
            ui.horizontal_wrapped(|ui| {
                for d in &stats.devices {
                    ui.label(format!(
                        "running · torch reserved {}",
                        unit.format(Bytes(d.torch_vram_total))
                    ));
                }
                if ui
                    .add_enabled(!view.in_flight, egui::Button::new("Free").small())
                    .on_hover_text("POST /free to ComfyUI")
                    .clicked()
                {
                    command = Some(WorkerCommand::Free(FreeTarget::ComfyUi, *level));
                }
            });
        }
    }
    command
}

/// The result toast in the bottom-right corner, while it is fresh.
pub fn toast(ui: &mut Ui, toast: &Toast) {
    let age = toast.shown_at.elapsed();
    if age >= TOAST_FOR {
        return;
    }
    ui.ctx().request_repaint_after(TOAST_FOR - age);
    let fill = if toast.ok {
        Color32::from_rgb(0x1f, 0x5f, 0x3a)
    } else {
        Color32::from_rgb(0x7a, 0x24, 0x1c)
    };
    egui::Area::new(egui::Id::unique("free_toast"))
        .anchor(egui::Align2::RIGHT_BOTTOM, [-16.0, -36.0])
        .show(ui.ctx(), |ui| {
            egui::Frame::new()
                .fill(fill)
                .corner_radius(6)
                .inner_margin(10)
                .show(ui, |ui| {
                    ui.set_max_width(520.0);
                    ui.label(RichText::new(&toast.text).color(Color32::WHITE));
                });
        });
}
