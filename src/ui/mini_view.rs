//! The compact always-on-top view to sit beside the WebUI: a VRAM bar per GPU and Free VRAM.

use super::pressure_color;
use crate::telemetry::Snapshot;
use crate::units::MemoryUnit;
use egui::{RichText, Ui};

/// Window size for the mini view with `gpus` GPUs.
pub fn size(gpus: usize) -> egui::Vec2 {
    egui::vec2(420.0, 46.0 + 26.0 * gpus.max(1) as f32)
}

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MiniAction {
    /// Free VRAM in every agent.
    Free,
    /// Back to the full window.
    Expand,
}

/// Draws the mini view.
pub fn show(
    ui: &mut Ui,
    snapshot: Option<&Snapshot>,
    unit: MemoryUnit,
    freeing: bool,
) -> Option<MiniAction> {
    let mut action = None;
    egui::CentralPanel::default().show(ui, |ui| {
        for g in snapshot.map(|s| s.gpus.as_slice()).unwrap_or_default() {
            let fraction = g.memory.used_fraction();
            ui.horizontal(|ui| {
                ui.label(RichText::new(format!("GPU {}", g.index)).strong());
                ui.add(
                    egui::ProgressBar::new(fraction)
                        .desired_width(230.0)
                        .fill(pressure_color(fraction))
                        .text(
                            RichText::new(format!(
                                "{} / {}",
                                unit.format(g.memory.used),
                                unit.format(g.memory.total)
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
                .add_enabled(!freeing, egui::Button::new("Free VRAM"))
                .clicked()
            {
                action = Some(MiniAction::Free);
            }
            if freeing {
                ui.spinner();
            }
            if ui.button("Full view").clicked() {
                action = Some(MiniAction::Expand);
            }
        });
    });
    action
}
