//! "Busy but slow?": the diagnosis of the last minute under the charts, in a box of fixed height
//! (a verdict, three lines of evidence, what to do), so it never moves what is below it.

use crate::diagnosis::{Diagnosis, Verdict};
use egui::{RichText, Ui};

/// Seconds of activity the panel diagnoses.
pub const WINDOW_SECONDS: f64 = 60.0;
/// Evidence lines shown; more are on hover.
const EVIDENCE_LINES: usize = 3;

fn verdict_color(ui: &Ui, verdict: &Verdict) -> egui::Color32 {
    match verdict {
        Verdict::NotEnoughData | Verdict::Idle => ui.visuals().weak_text_color(),
        Verdict::GpuBound | Verdict::GpuBoundAtPowerLimit | Verdict::PartlyBusy => {
            super::pressure_color(0.0)
        }
        _ => super::pressure_color(0.8),
    }
}

/// One line that never wraps, the whole text on hover.
fn line(ui: &mut Ui, text: RichText, full: &str) {
    ui.add(egui::Label::new(text).truncate())
        .on_hover_text(full);
}

/// Draws the panel for `d`.
pub fn show(ui: &mut Ui, d: &Diagnosis) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.label(RichText::new(crate::t!("diag-title")).strong())
                .on_hover_text(crate::t!("diag-title-hover"));
            let headline = d.verdict.headline();
            line(
                ui,
                RichText::new(&headline)
                    .color(verdict_color(ui, &d.verdict))
                    .strong(),
                &headline,
            );
        });
        for i in 0..EVIDENCE_LINES {
            match d.evidence.get(i) {
                Some(e) => line(ui, RichText::new(format!("· {e}")), &d.evidence.join("\n")),
                None => {
                    ui.label("");
                }
            }
        }
        let advice = d.advice.first().cloned().unwrap_or_default();
        let measured = d.means.line();
        line(
            ui,
            RichText::new(if advice.is_empty() {
                String::new()
            } else {
                crate::t!("diag-what-to-do", advice = &advice)
            })
            .weak(),
            &crate::t!(
                "diag-advice-measured",
                advice = &advice,
                measured = measured
            ),
        );
    });
}
