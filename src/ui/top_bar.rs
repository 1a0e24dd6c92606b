//! Title, data source, and the settings a user changes while watching.

use crate::settings::{Settings, Theme};
use crate::telemetry::SourceKind;
use crate::units::MemoryUnit;
use egui::{RichText, Ui};

/// Sampling intervals offered in the menu, in milliseconds.
pub const INTERVAL_CHOICES_MS: [u64; 6] = [100, 250, 500, 1_000, 2_000, 5_000];

/// "500 ms", "1 s": how the menu and the status bar write an interval.
pub fn interval_label(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else {
        format!("{} s", ms / 1_000)
    }
}

/// Buttons of the bar that start something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopBarAction {
    /// Start or stop recording to CSV.
    ToggleRecording,
    /// Open a CSV or text log.
    OpenLog,
    /// Export what the plots show.
    Export,
    /// Switch to the compact view.
    MiniView,
    /// Open the remote hosts window.
    Hosts,
}

/// The interval, units and theme choices.
fn view_settings(ui: &mut Ui, settings: &mut Settings) {
    egui::ComboBox::from_label("sampling interval")
        .selected_text(interval_label(settings.sample_interval_ms))
        .show_ui(ui, |ui| {
            for ms in INTERVAL_CHOICES_MS {
                ui.selectable_value(&mut settings.sample_interval_ms, ms, interval_label(ms));
            }
        });
    ui.horizontal(|ui| {
        for unit in MemoryUnit::ALL {
            ui.selectable_value(&mut settings.memory_unit, unit, unit.symbol());
        }
    });
    egui::ComboBox::from_label("theme")
        .selected_text(settings.theme.label())
        .show_ui(ui, |ui| {
            for theme in Theme::ALL {
                ui.selectable_value(&mut settings.theme, theme, theme.label());
            }
        });
}

/// Draws the bar; edits `settings` in place and returns a clicked action. `compact` (a narrow
/// window) puts the view settings in a menu so the bar stays one row.
pub fn show(
    ui: &mut Ui,
    settings: &mut Settings,
    source: &SourceKind,
    recording: bool,
    compact: bool,
) -> Option<TopBarAction> {
    let mut action = None;
    ui.horizontal_wrapped(|ui| {
        ui.heading("vramdeck");
        match source {
            SourceKind::Nvml { driver_version } => {
                let text = if compact {
                    "LIVE".to_string()
                } else {
                    format!("LIVE · NVIDIA driver {driver_version}")
                };
                ui.label(RichText::new(text).color(egui::Color32::from_rgb(0x3b, 0xa5, 0x5c)))
                    .on_hover_text(format!("NVIDIA driver {driver_version}"));
            }
            SourceKind::Simulated { .. } => {
                let text = if compact { "DEMO" } else { "DEMO · simulated GPU" };
                ui.label(RichText::new(text).color(egui::Color32::from_rgb(0xe0, 0x9b, 0x22)));
            }
            SourceKind::RemoteOnly { reason } => {
                let text = if compact { "REMOTE" } else { "REMOTE · no GPU on this machine" };
                ui.label(RichText::new(text).color(egui::Color32::from_rgb(0x3b, 0x8e, 0xd0)))
                    .on_hover_text(format!("This machine: {reason}"));
            }
        }
        ui.separator();
        if compact {
            ui.menu_button("View", |ui| view_settings(ui, settings));
        } else {
            view_settings(ui, settings);
        }
        ui.separator();
        if ui
            .selectable_label(recording, if recording { "Recording" } else { "Record to CSV" })
            .on_hover_text("Append every sample to a CSV file in the data folder")
            .clicked()
        {
            action = Some(TopBarAction::ToggleRecording);
        }
        if ui
            .button("Open log...")
            .on_hover_text("An nvidia-smi CSV log to plot, or a console log to check for out-of-memory errors (or drop a file on the window)")
            .clicked()
        {
            action = Some(TopBarAction::OpenLog);
        }
        if ui.button("Export CSV...").on_hover_text("Save what the plots show").clicked() {
            action = Some(TopBarAction::Export);
        }
        if ui.button("Mini view").on_hover_text("A small always-on-top window").clicked() {
            action = Some(TopBarAction::MiniView);
        }
        if ui
            .button("Hosts...")
            .on_hover_text("Watch a remote GPU box (vramdeck serve, or nvidia-smi over SSH)")
            .clicked()
        {
            action = Some(TopBarAction::Hosts);
        }
    });
    action
}
