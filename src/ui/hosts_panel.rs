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
        HostStatus::Connecting => ("connecting…".into(), false),
        HostStatus::Live => match state.stale_seconds(now) {
            Some(s) => (format!("no reading for {s:.0} s"), true),
            None => (
                format!(
                    "live · {} GPU{}",
                    state.gpus.len(),
                    if state.gpus.len() == 1 { "" } else { "s" }
                ),
                false,
            ),
        },
        HostStatus::Refused(why) => (format!("refused: {why}"), true),
        HostStatus::Retrying { error, retry_at } => {
            let wait = retry_at.saturating_duration_since(now).as_secs_f64().ceil();
            (format!("{error} · trying again in {wait:.0} s"), true)
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
    egui::Window::new("Remote hosts")
        .open(&mut open)
        .collapsible(false)
        .default_width(520.0)
        .show(ctx, |ui| {
            ui.label(
                "Watch a GPU box beside this machine's GPUs: a box running `vramdeck serve` \
                 (http://box:9401 and its token: `vramdeck serve --print-token` there), or any box with the NVIDIA \
                 driver over SSH (ssh user@box: your keys and ~/.ssh/config).",
            );
            ui.add_space(6.0);
            let now = Instant::now();
            if hosts.is_empty() {
                ui.label(RichText::new("No remote host yet.").weak());
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
                        let text = RichText::new(line);
                        ui.label(if bad {
                            text.color(ui.visuals().warn_fg_color)
                        } else {
                            text
                        });
                        if ui.button("Remove").clicked() {
                            action = Some(HostsAction::Remove(config.address.clone()));
                        }
                        ui.end_row();
                    }
                });
            ui.separator();
            egui::Grid::new("add_host").num_columns(2).show(ui, |ui| {
                let label = ui.label("Address");
                ui.add(
                    egui::TextEdit::singleline(&mut window.address)
                        .hint_text("http://gpu-box:9401  or  ssh user@gpu-box")
                        .desired_width(320.0),
                )
                .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Token");
                ui.add(
                    egui::TextEdit::singleline(&mut window.token)
                        .password(true)
                        .hint_text("vramdeck serve --print-token (on the box)")
                        .desired_width(320.0),
                )
                .labelled_by(label.id);
                ui.end_row();
            });
            ui.horizontal(|ui| {
                if ui.button("Add host").clicked() {
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
                ui.label(
                    RichText::new("Plain http:// sends readings unencrypted; see README for TLS.")
                        .small()
                        .weak(),
                );
            });
            if let Some(e) = &window.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        });
    window.open = open;
    action
}

/// A line for each host that is not delivering readings (it has no card to say so, or its
/// cards show old values), above the cards.
pub fn troubles(ui: &mut Ui, hosts: &[(HostConfig, HostState)]) {
    let now = Instant::now();
    for (config, state) in hosts {
        let (line, bad) = status_line(state, now);
        let line = match &state.problem {
            Some(problem) if !bad => format!("{line} · {problem}"),
            _ => line,
        };
        if bad || state.gpus.is_empty() || state.problem.is_some() {
            ui.add(
                egui::Label::new(
                    RichText::new(format!("{}: {line}", config.address))
                        .color(ui.visuals().warn_fg_color),
                )
                .wrap(),
            )
            .on_hover_text("Hosts... lists every remote host");
            ui.add_space(4.0);
        }
    }
}

/// Free VRAM for a remote GPU's host; returns true when the user pressed the button.
pub fn remote_free(ui: &mut Ui, state: &HostState, level: FreeLevel) -> bool {
    ui.label(RichText::new(format!("Release cached VRAM on {}", state.name)).strong());
    if !state.can_free {
        ui.label(RichText::new("Not from here: a host over SSH can only be watched.").weak());
        return false;
    }
    let running = state.free.as_ref().is_some_and(|f| f.running);
    let pressed = ui
        .add_enabled(
            !running,
            egui::Button::new(format!("Free VRAM on {} ({})", state.name, level.as_str())),
        )
        .on_hover_text("The box's vramdeck serve asks its own agents and ComfyUI, as this machine's button does here")
        .clicked();
    if let Some(free) = &state.free {
        ui.label(free_line(free));
    }
    pressed
}

fn free_line(free: &wire::FreeStatusBody) -> String {
    let summary = free.summary.clone().unwrap_or_default();
    if free.running {
        format!("Working: {summary}")
    } else {
        summary
    }
}
