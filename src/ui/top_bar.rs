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
        crate::t!("interval-ms", ms = ms.to_string())
    } else {
        crate::t!("interval-s", s = (ms / 1_000).to_string())
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

/// The interval and unit choices, used all the time: on the bar when there is room.
fn reading_settings(ui: &mut Ui, settings: &mut Settings) {
    egui::ComboBox::from_label(crate::t!("bar-sampling-interval"))
        .selected_text(interval_label(settings.sample_interval_ms))
        .show_ui(ui, |ui| {
            for ms in INTERVAL_CHOICES_MS {
                ui.selectable_value(&mut settings.sample_interval_ms, ms, interval_label(ms));
            }
        });
    unit_choices(ui, settings);
}

fn unit_choices(ui: &mut Ui, settings: &mut Settings) {
    ui.horizontal(|ui| {
        for unit in MemoryUnit::ALL {
            ui.selectable_value(&mut settings.memory_unit, unit, unit.symbol());
        }
    });
}

// Inside the View menu every choice is a row of buttons, never a combo box: a combo box there
// is a popup in a popup, and clicking it closed the menu instead of opening.

/// The interval and unit choices as the menu shows them (a narrow window).
fn reading_settings_in_menu(ui: &mut Ui, settings: &mut Settings) {
    ui.label(crate::t!("bar-sampling-interval"));
    ui.horizontal_wrapped(|ui| {
        for ms in INTERVAL_CHOICES_MS {
            ui.selectable_value(&mut settings.sample_interval_ms, ms, interval_label(ms));
        }
    });
    unit_choices(ui, settings);
    ui.separator();
}

/// The language and theme, chosen once: always in the View menu.
fn look_settings(ui: &mut Ui, settings: &mut Settings) {
    let system = crate::i18n::Language::of_system();
    let shown = settings.language.unwrap_or(system);
    ui.label(crate::t!("bar-language"));
    ui.horizontal(|ui| {
        for language in crate::i18n::Language::ALL {
            if ui
                .selectable_label(shown == language, language.native_name())
                .clicked()
            {
                settings.language = Some(language);
            }
        }
    });
    ui.separator();
    ui.label(crate::t!("bar-theme"));
    ui.horizontal(|ui| {
        for theme in Theme::ALL {
            ui.selectable_value(&mut settings.theme, theme, theme.text());
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
                    crate::t!("bar-live")
                } else {
                    crate::t!("bar-live-driver", version = driver_version)
                };
                ui.label(RichText::new(text).color(egui::Color32::from_rgb(0x3b, 0xa5, 0x5c)))
                    .on_hover_text(crate::t!("bar-driver", version = driver_version));
            }
            SourceKind::Simulated { .. } => {
                let text = if compact {
                    crate::t!("bar-demo")
                } else {
                    crate::t!("bar-demo-long")
                };
                ui.label(RichText::new(text).color(egui::Color32::from_rgb(0xe0, 0x9b, 0x22)));
            }
            SourceKind::RemoteOnly { reason } => {
                let text = if compact {
                    crate::t!("bar-remote")
                } else {
                    crate::t!("bar-remote-long")
                };
                ui.label(RichText::new(text).color(egui::Color32::from_rgb(0x3b, 0x8e, 0xd0)))
                    .on_hover_text(crate::t!("bar-this-machine", reason = reason));
            }
        }
        ui.separator();
        if compact {
            ui.menu_button(crate::t!("bar-view"), |ui| {
                reading_settings_in_menu(ui, settings);
                look_settings(ui, settings);
            });
        } else {
            reading_settings(ui, settings);
            ui.menu_button(crate::t!("bar-view"), |ui| look_settings(ui, settings));
        }
        ui.separator();
        if ui
            .selectable_label(
                recording,
                if recording {
                    crate::t!("bar-recording")
                } else {
                    crate::t!("bar-record")
                },
            )
            .on_hover_text(crate::t!("bar-record-hover"))
            .clicked()
        {
            action = Some(TopBarAction::ToggleRecording);
        }
        if ui
            .button(crate::t!("bar-open-log"))
            .on_hover_text(crate::t!("bar-open-log-hover"))
            .clicked()
        {
            action = Some(TopBarAction::OpenLog);
        }
        if ui
            .button(crate::t!("bar-export"))
            .on_hover_text(crate::t!("bar-export-hover"))
            .clicked()
        {
            action = Some(TopBarAction::Export);
        }
        if ui
            .button(crate::t!("bar-mini"))
            .on_hover_text(crate::t!("bar-mini-hover"))
            .clicked()
        {
            action = Some(TopBarAction::MiniView);
        }
        if ui
            .button(crate::t!("bar-hosts"))
            .on_hover_text(crate::t!("bar-hosts-hover"))
            .clicked()
        {
            action = Some(TopBarAction::Hosts);
        }
    });
    action
}
