//! Coloured strips across the top that say what state the app is in: demo mode, read errors,
//! warnings the user can dismiss.

use crate::telemetry::SourceKind;
use egui::{Color32, RichText, Ui};

const DEMO: Color32 = Color32::from_rgb(0x8a, 0x4b, 0x08);
const ERROR: Color32 = Color32::from_rgb(0x9b, 0x1c, 0x1c);
const WARNING: Color32 = Color32::from_rgb(0x6b, 0x5a, 0x0a);

fn strip(ui: &mut Ui, fill: Color32, add: impl FnOnce(&mut Ui)) {
    egui::Frame::new()
        .fill(fill)
        .inner_margin(egui::Margin::symmetric(8, 4))
        .corner_radius(4)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal_wrapped(add);
        });
}

/// The demo-mode strip: impossible to mistake simulated numbers for the user's GPU.
pub fn demo_mode(ui: &mut Ui, source: &SourceKind) {
    if let SourceKind::Simulated { reason } = source {
        strip(ui, DEMO, |ui| {
            ui.label(
                RichText::new(crate::t!("banner-demo"))
                    .strong()
                    .color(Color32::WHITE),
            );
            ui.label(
                RichText::new(crate::t!("banner-demo-text", reason = reason)).color(Color32::WHITE),
            );
        });
    }
}

/// A read error from the sampler (a GPU that fell off the bus, a driver reset).
pub fn read_error(ui: &mut Ui, error: &str) {
    strip(ui, ERROR, |ui| {
        ui.label(
            RichText::new(crate::t!("banner-read-error", error = error)).color(Color32::WHITE),
        );
    });
}

/// Dismissable warnings. Returns the index of a warning the user dismissed.
pub fn warnings(ui: &mut Ui, warnings: &[String]) -> Option<usize> {
    let mut dismissed = None;
    for (i, text) in warnings.iter().enumerate() {
        strip(ui, WARNING, |ui| {
            ui.label(RichText::new(text).color(Color32::WHITE));
            if ui.button(crate::t!("banner-dismiss")).clicked() {
                dismissed = Some(i);
            }
        });
    }
    dismissed
}

/// Alerts firing now: one red strip each.
pub fn alerts(ui: &mut Ui, messages: &[String]) {
    for m in messages {
        strip(ui, ERROR, |ui| {
            ui.label(
                RichText::new(crate::t!("banner-alert"))
                    .strong()
                    .color(Color32::WHITE),
            );
            ui.label(RichText::new(m).color(Color32::WHITE));
        });
    }
}

/// A problem that stopped something (recording), in the error colour.
pub fn read_error_text(ui: &mut Ui, text: &str) {
    strip(ui, ERROR, |ui| {
        ui.label(RichText::new(text).color(Color32::WHITE));
    });
}
