//! The alert rules editor.

use crate::alerts::AlertRules;
use egui::Ui;

/// Draws the rules; edits them in place.
pub fn show(ui: &mut Ui, rules: &mut AlertRules) {
    egui::CollapsingHeader::new(crate::t!("alerts-title")).show(ui, |ui| {
        ui.checkbox(&mut rules.enabled, crate::t!("alerts-on"));
        ui.add_enabled_ui(rules.enabled, |ui| {
            ui.horizontal(|ui| {
                ui.label(crate::t!("alerts-vram-above"));
                ui.add(
                    egui::DragValue::new(&mut rules.vram_percent)
                        .range(10.0..=100.0)
                        .suffix(" %"),
                );
                ui.label(crate::t!("alerts-for"));
                ui.add(
                    egui::DragValue::new(&mut rules.vram_seconds)
                        .range(0.0..=3_600.0)
                        .suffix(crate::t!("alerts-seconds-suffix")),
                );
            });
            ui.horizontal(|ui| {
                ui.label(crate::t!("alerts-temperature-above"));
                ui.add(
                    egui::DragValue::new(&mut rules.temperature_c)
                        .range(30.0..=120.0)
                        .suffix(" \u{b0}C"),
                );
            });
            ui.checkbox(
                &mut rules.process_changes,
                crate::t!("alerts-process-changes"),
            );
            ui.checkbox(
                &mut rules.desktop_notifications,
                crate::t!("alerts-desktop"),
            );
            if rules.desktop_notifications
                && let Some(why) = crate::platform::notify::unavailable()
            {
                ui.label(
                    egui::RichText::new(why)
                        .small()
                        .color(ui.visuals().warn_fg_color),
                );
            }
        });
    });
}
