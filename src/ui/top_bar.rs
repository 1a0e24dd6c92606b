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
    /// Analyse the clipboard's text as a log.
    PasteLog,
    /// Export what the plots show.
    Export,
    /// Switch to the compact view.
    MiniView,
    /// Open the remote hosts window.
    Hosts,
    /// Free VRAM in every agent at the chosen level.
    FreeVram,
    /// Start with the session (true) or not.
    SetAutostart(bool),
}

/// What the bar shows besides the settings.
pub struct BarState<'a> {
    /// Where readings come from.
    pub source: &'a SourceKind,
    /// Recording to CSV now.
    pub recording: bool,
    /// A narrow window: the view settings go in a menu so the bar stays one row.
    pub compact: bool,
    /// Free VRAM: `None` where this machine has nothing to free, `Some(true)` while running.
    pub freeing: Option<bool>,
    /// Why there is no tray icon, if there is none.
    pub tray_error: Option<&'a str>,
    /// The session starts vramdeck.
    pub autostart: bool,
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

/// How the window behaves on the desktop: in the View menu.
fn window_settings(
    ui: &mut Ui,
    settings: &mut Settings,
    bar: &BarState<'_>,
) -> Option<TopBarAction> {
    ui.separator();
    ui.label(crate::t!("bar-window"));
    ui.checkbox(&mut settings.always_on_top, crate::t!("bar-always-on-top"));
    let tray = bar.tray_error.is_none();
    let close = ui.add_enabled(
        tray,
        egui::Checkbox::new(&mut settings.close_to_tray, crate::t!("bar-close-to-tray")),
    );
    match bar.tray_error {
        None => close.on_hover_text(crate::t!("bar-close-to-tray-hover")),
        Some(e) => close.on_disabled_hover_text(crate::t!("bar-no-tray", error = e)),
    };
    let mut autostart = bar.autostart;
    if ui
        .checkbox(&mut autostart, crate::t!("bar-autostart"))
        .on_hover_text(crate::t!(
            "bar-autostart-hover",
            location = crate::platform::autostart::location()
        ))
        .changed()
    {
        return Some(TopBarAction::SetAutostart(autostart));
    }
    None
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
pub fn show(ui: &mut Ui, settings: &mut Settings, bar: &BarState<'_>) -> Option<TopBarAction> {
    let (source, recording, compact) = (bar.source, bar.recording, bar.compact);
    let mut action = None;
    ui.horizontal_wrapped(|ui| {
        ui.heading("vramdeck");
        // Free VRAM first after the name: in view at every width, whatever the panels below.
        if let Some(freeing) = bar.freeing {
            if ui
                .add_enabled(
                    !freeing,
                    egui::Button::new(RichText::new(crate::t!("free-vram")).strong()),
                )
                .on_hover_text(crate::t!("bar-free-hover"))
                .clicked()
            {
                action = Some(TopBarAction::FreeVram);
            }
            if freeing {
                ui.spinner();
            }
        }
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
            SourceKind::Wddm { adapters } => {
                ui.label(
                    RichText::new(crate::t!("bar-live"))
                        .color(egui::Color32::from_rgb(0x3b, 0xa5, 0x5c)),
                )
                .on_hover_text(crate::t!("bar-wddm", adapters = adapters));
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
                if let Some(a) = window_settings(ui, settings, bar) {
                    action = Some(a);
                }
            });
        } else {
            reading_settings(ui, settings);
            ui.menu_button(crate::t!("bar-view"), |ui| {
                look_settings(ui, settings);
                if let Some(a) = window_settings(ui, settings, bar) {
                    action = Some(a);
                }
            });
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
            .button(crate::t!("bar-paste-log"))
            .on_hover_text(crate::t!("bar-paste-log-hover"))
            .clicked()
        {
            action = Some(TopBarAction::PasteLog);
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
