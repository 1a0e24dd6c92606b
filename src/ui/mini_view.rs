//! The compact always-on-top view to sit beside the WebUI: a VRAM bar per GPU and Free VRAM.
//! The result of Free VRAM is a line of its own, coloured by outcome: a toast would be wider
//! than this window and cover it.

use super::pressure_color;
use super::release_panel::{TOAST_FOR, Toast, Tone};
use crate::telemetry::{Snapshot, SourceKind};
use crate::units::MemoryUnit;
use egui::{RichText, Ui};

/// Window size for the mini view with `gpus` GPUs: a row per GPU, the buttons, the alert
/// line and the result line.
pub fn size(gpus: usize) -> egui::Vec2 {
    egui::vec2(460.0, 88.0 + 26.0 * gpus.max(1) as f32)
}

/// The least size of the mini view: its rows must fit; the bars and lines may narrow.
pub fn min_size(gpus: usize) -> egui::Vec2 {
    egui::vec2(320.0, size(gpus).y)
}

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MiniAction {
    /// Free VRAM in every agent.
    Free,
    /// Back to the full window.
    Expand,
}

/// What the mini view shows.
pub struct MiniView<'a> {
    /// The newest reading.
    pub snapshot: Option<&'a Snapshot>,
    /// Where readings come from (demo mode is labelled here too).
    pub source: &'a SourceKind,
    /// Memory unit.
    pub unit: MemoryUnit,
    /// A release is running.
    pub freeing: bool,
    /// The latest result, shown while fresh.
    pub result: Option<&'a Toast>,
    /// Alerts firing now, as sentences, the weightiest first.
    pub alerts: &'a [String],
    /// GPUs with an alert firing (their bar is drawn in the alert colour).
    pub alert_gpus: &'a [u32],
}

/// Text colour for a result of `tone` (success green, nothing-happened grey, failure red).
fn tone_color(ui: &Ui, tone: Tone) -> egui::Color32 {
    match tone {
        Tone::Good => pressure_color(0.0),
        Tone::Neutral => ui.visuals().weak_text_color(),
        Tone::Bad => ui.visuals().error_fg_color,
    }
}

/// Draws the mini view.
pub fn show(ui: &mut Ui, view: &MiniView<'_>) -> Option<MiniAction> {
    let mut action = None;
    egui::CentralPanel::default().show(ui, |ui| {
        for g in view.snapshot.map(|s| s.gpus.as_slice()).unwrap_or_default() {
            let fraction = g.memory.used_fraction();
            let fill = if view.alert_gpus.contains(&g.index) {
                pressure_color(1.0)
            } else {
                pressure_color(fraction)
            };
            ui.horizontal(|ui| {
                ui.label(RichText::new(g.title()).strong());
                // The bar takes what the title and temperature leave: the window may narrow.
                let width = (ui.available_width() - 44.0).clamp(80.0, 260.0);
                ui.add(
                    egui::ProgressBar::new(fraction)
                        // Square ends: a short rounded fill looked like a badge, not a level.
                        .corner_radius(2)
                        .desired_width(width)
                        .fill(fill)
                        .text(
                            RichText::new(format!(
                                "{} / {}",
                                view.unit.format(g.memory.used),
                                view.unit.format(g.memory.total)
                            ))
                            .color(super::bar_text_color(ui.visuals())),
                        ),
                );
                if let Some(t) = g.temperature {
                    ui.label(t.to_string());
                }
            });
        }
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!view.freeing, egui::Button::new(crate::t!("free-vram")))
                .clicked()
            {
                action = Some(MiniAction::Free);
            }
            if view.freeing {
                ui.spinner();
            }
            if ui.button(crate::t!("mini-full-view")).clicked() {
                action = Some(MiniAction::Expand);
            }
            if view.source.is_simulated() {
                ui.label(
                    RichText::new(crate::t!("mini-demo"))
                        .color(egui::Color32::from_rgb(0xe0, 0x9b, 0x22)),
                )
                .on_hover_text(crate::t!("mini-demo-hover"));
            }
        });
        // Always one row each, empty or not: the window never changes size.
        match view.alerts.first() {
            Some(first) => {
                let text = if view.alerts.len() > 1 {
                    crate::t!(
                        "mini-alerts",
                        first = first.clone(),
                        more = (view.alerts.len() - 1).to_string()
                    )
                } else {
                    crate::t!("mini-alert", alert = first.clone())
                };
                ui.add(
                    egui::Label::new(RichText::new(&text).color(ui.visuals().error_fg_color))
                        .truncate(),
                )
                .on_hover_text(view.alerts.join("\n"));
            }
            None => {
                ui.label("");
            }
        }
        let fresh = view.result.filter(|t| t.shown_at.elapsed() < TOAST_FOR);
        match fresh {
            Some(t) => {
                ui.ctx()
                    .request_repaint_after(TOAST_FOR.saturating_sub(t.shown_at.elapsed()));
                // The headline fits the strip; each target's line is on hover.
                let headline = t.text.split(" · ").next().unwrap_or_default();
                ui.add(
                    egui::Label::new(RichText::new(headline).color(tone_color(ui, t.tone)))
                        .truncate(),
                )
                .on_hover_text(t.text.replace(" · ", "\n"));
            }
            None => {
                ui.label("");
            }
        }
    });
    action
}
