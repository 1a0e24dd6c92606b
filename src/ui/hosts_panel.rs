//! Remote hosts: the window that adds and removes them, and the Free VRAM section a remote
//! GPU's card column shows instead of this machine's.

use crate::release::FreeLevel;
use crate::remote::{HostConfig, HostState, HostStatus, wire};
use egui::{RichText, Ui};
use std::time::Instant;

/// The hosts window's state.
#[derive(Debug, Default)]
pub struct HostsWindow {
    /// Shown.
    pub open: bool,
    /// The address being typed.
    pub address: String,
    /// The token being typed.
    pub token: String,
    /// Why the last Add was refused.
    pub error: Option<String>,
}

/// What the user asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum HostsAction {
    /// Start watching a host.
    Add(HostConfig),
    /// Stop watching the host added with this address.
    Remove(String),
}

/// One line on where a host's feed stands.
pub fn status_line(state: &HostState, now: Instant) -> (String, bool) {
    match &state.status {
        HostStatus::Connecting => (crate::t!("hosts-connecting"), false),
        HostStatus::Live => match state.stale_seconds(now) {
            Some(s) => (
                crate::t!("hosts-no-reading", seconds = format!("{s:.0}")),
                true,
            ),
            None => (crate::t!("hosts-live", count = state.gpus.len()), false),
        },
        HostStatus::Refused(why) => (crate::t!("hosts-refused", why = why), true),
        HostStatus::Retrying { error, retry_at } => {
            let wait = retry_at.saturating_duration_since(now).as_secs_f64().ceil();
            (
                crate::t!("hosts-retry", error = error, seconds = format!("{wait:.0}")),
                true,
            )
        }
    }
}

/// Draws the window; returns what the user asked for.
pub fn show(
    ctx: &egui::Context,
    window: &mut HostsWindow,
    hosts: &[(HostConfig, HostState)],
) -> Option<HostsAction> {
    let mut action = None;
    let mut open = window.open;
    egui::Window::new(crate::t!("hosts-title"))
        .open(&mut open)
        .collapsible(false)
        .default_width(520.0)
        .show(ctx, |ui| {
            ui.label(crate::t!("hosts-intro"));
            ui.add_space(6.0);
            let now = Instant::now();
            if hosts.is_empty() {
                ui.label(RichText::new(crate::t!("hosts-none")).weak());
            }
            egui::Grid::new("hosts")
                .num_columns(3)
                .striped(true)
                .show(ui, |ui| {
                    for (config, state) in hosts {
                        ui.label(RichText::new(&state.name).strong())
                            .on_hover_text(&config.address);
                        let (line, bad) = status_line(state, now);
                        let bad = bad || state.problem.is_some();
                        let line = match &state.problem {
                            Some(problem) => format!("{line} · {problem}"),
                            None => line,
                        };
                        let text = RichText::new(with_note(line, state));
                        ui.label(if bad {
                            text.color(ui.visuals().warn_fg_color)
                        } else {
                            text
                        });
                        if ui.button(crate::t!("hosts-remove")).clicked() {
                            action = Some(HostsAction::Remove(config.address.clone()));
                        }
                        ui.end_row();
                    }
                });
            ui.separator();
            egui::Grid::new("add_host").num_columns(2).show(ui, |ui| {
                let label = ui.label(crate::t!("hosts-address"));
                ui.add(
                    egui::TextEdit::singleline(&mut window.address)
                        .hint_text(crate::t!("hosts-address-hint"))
                        .desired_width(320.0),
                )
                .labelled_by(label.id);
                ui.end_row();
                let label = ui.label(crate::t!("hosts-token"));
                ui.add(
                    egui::TextEdit::singleline(&mut window.token)
                        .password(true)
                        .hint_text(crate::t!("hosts-token-hint"))
                        .desired_width(320.0),
                )
                .labelled_by(label.id);
                ui.end_row();
            });
            ui.horizontal(|ui| {
                if ui.button(crate::t!("hosts-add")).clicked() {
                    let token = window.token.trim();
                    let config = HostConfig {
                        address: window.address.trim().to_string(),
                        token: (!token.is_empty()).then(|| token.to_string()),
                    };
                    match config.endpoint() {
                        Ok(_) => action = Some(HostsAction::Add(config)),
                        Err(e) => window.error = Some(e),
                    }
                }
                ui.label(RichText::new(crate::t!("hosts-plain-http")).small().weak());
            });
            if let Some(e) = &window.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        });
    window.open = open;
    action
}

/// `line` and what the host says about itself ("gpu-box runs demo GPUs (…)", "over SSH"):
/// simulated GPUs on another machine are marked as such wherever the host is named.
fn with_note(line: String, state: &HostState) -> String {
    match &state.note {
        Some(note) => format!("{line} · {note}"),
        None => line,
    }
}

/// A line for each host that is not delivering readings (it has no card to say so, or its
/// cards show old values), above the cards.
pub fn troubles(ui: &mut Ui, hosts: &[(HostConfig, HostState)]) {
    let now = Instant::now();
    // One line per host, always, trouble or not: a line that came and went with each missed
    // reading moved every card below it under the pointer.
    for (config, state) in hosts {
        let (line, bad) = status_line(state, now);
        let line = match &state.problem {
            Some(problem) if !bad => format!("{line} · {problem}"),
            _ => line,
        };
        let text = format!("{}: {}", config.address, with_note(line, state));
        let rich = if bad || state.gpus.is_empty() || state.problem.is_some() {
            RichText::new(&text).color(ui.visuals().warn_fg_color)
        } else {
            RichText::new(&text).weak()
        };
        ui.add(egui::Label::new(rich).truncate())
            .on_hover_text(format!("{text}\n{}", crate::t!("hosts-list-hover")));
    }
    if !hosts.is_empty() {
        ui.add_space(4.0);
    }
}

/// Free VRAM for a remote GPU's host; returns true when the user pressed the button.
pub fn remote_free(ui: &mut Ui, state: &HostState, level: FreeLevel) -> bool {
    ui.label(RichText::new(crate::t!("hosts-release-on", host = &state.name)).strong());
    if !state.can_free {
        ui.label(RichText::new(crate::t!("hosts-ssh-watch-only")).weak());
        return false;
    }
    let running = state.free.as_ref().is_some_and(|f| f.running);
    let pressed = ui
        .add_enabled(
            !running,
            egui::Button::new(crate::t!(
                "hosts-free-on",
                host = &state.name,
                level = match level {
                    FreeLevel::Cache => crate::t!("rel-empty-cache"),
                    FreeLevel::Unload => crate::t!("rel-unload-models"),
                }
            )),
        )
        .on_hover_text(crate::t!("hosts-free-hover"))
        .clicked();
    if let Some(free) = &state.free {
        ui.label(free_line(free));
    }
    pressed
}

fn free_line(free: &wire::FreeStatusBody) -> String {
    let summary = free.summary.clone().unwrap_or_default();
    if free.running {
        crate::t!("hosts-working", summary = summary)
    } else {
        summary
    }
}
