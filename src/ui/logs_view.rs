//! Opened logs: an imported CSV shown in the plots and an OOM analysis window.

use crate::logs::{import::ImportedLog, oom::Analysis};
use egui::{RichText, Ui};

/// Opened logs.
#[derive(Default)]
pub struct LogsState {
    /// A CSV log shown instead of live data.
    pub imported: Option<ImportedLog>,
    /// Which of its GPUs.
    pub imported_slot: usize,
    /// An OOM analysis on screen: (file, result).
    pub analysis: Option<(String, Analysis)>,
}

/// The strip above an imported log's plots. Returns true when the user goes back to live data.
pub fn imported_header(ui: &mut Ui, log: &ImportedLog, slot: &mut usize) -> bool {
    let mut back = false;
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("Log: {}", log.origin)).heading());
        if ui.button("Back to live").clicked() {
            back = true;
        }
    });
    ui.label(RichText::new(log.summary()).weak());
    if log.gpus.len() > 1 {
        ui.horizontal_wrapped(|ui| {
            for (i, g) in log.gpus.iter().enumerate() {
                ui.selectable_value(slot, i, g.label());
            }
        });
    }
    back
}

/// The analysis window; closing it clears `analysis`.
pub fn analysis_window(ctx: &egui::Context, analysis: &mut Option<(String, Analysis)>) {
    let Some((origin, result)) = analysis.as_ref() else {
        return;
    };
    let mut open = true;
    egui::Window::new("Out-of-memory analysis")
        .open(&mut open)
        .default_size([640.0, 460.0])
        // Below the top bar, never over it.
        .default_pos(ctx.content_rect().left_top() + egui::vec2(40.0, 90.0))
        .vscroll(true)
        .show(ctx, |ui| {
            ui.label(RichText::new(origin).strong());
            let summary = result.summary();
            ui.label(format!("{}{}", summary[..1].to_uppercase(), &summary[1..]));
            for e in &result.events {
                ui.separator();
                let repeats = match e.repeats {
                    0 => String::new(),
                    n => format!(" (and {} more)", crate::units::count(n, "time", "times")),
                };
                ui.label(
                    RichText::new(format!("line {}: {}{repeats}", e.line, e.kind.label())).strong(),
                );
                ui.label(RichText::new(&e.text).monospace());
                if let Some(numbers) = e.numbers_line() {
                    ui.label(numbers);
                }
                for a in &e.advice {
                    ui.label(format!("- {a}"));
                }
            }
        });
    if !open {
        *analysis = None;
    }
}
