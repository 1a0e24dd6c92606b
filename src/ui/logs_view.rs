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
    /// The part of the log zoomed into (UNIX seconds); `None` shows all of it.
    pub view: Option<(f64, f64)>,
    /// Go back to the whole log on the next frame.
    pub reset: bool,
    /// The Paste button asked for the clipboard: its text is a log to analyse.
    pub paste_wanted: bool,
    /// A pasted or dropped text being analysed on its own thread.
    pub pasted: Option<std::sync::mpsc::Receiver<(String, Analysis)>>,
}

/// Largest text taken by pasting or dropping (a longer log is opened as a file, read in
/// bounded lines).
pub const MAX_PASTE_BYTES: usize = 32 << 20;

impl LogsState {
    /// Analyses `text` (pasted or dropped) on a thread; its result shows when ready. Text over
    /// [`MAX_PASTE_BYTES`] is refused in words.
    pub fn analyse_text(
        &mut self,
        ctx: &egui::Context,
        text: String,
        catalogue: crate::workloads::catalogue::Catalogue,
        calibration: crate::workloads::calibration::Calibration,
    ) -> Result<(), String> {
        if text.len() > MAX_PASTE_BYTES {
            return Err(crate::t!(
                "logs-paste-too-large",
                size = crate::units::MemoryUnit::MiB.format(crate::units::Bytes(text.len() as u64))
            ));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name("vramdeck-paste".into())
            .spawn(move || {
                let analysis = crate::logs::oom::analyze(&text, &catalogue, &calibration);
                let origin = crate::t!("logs-pasted", count = text.lines().count());
                let _ = tx.send((origin, analysis));
                ctx.request_repaint();
            })
            .map_err(|e| e.to_string())?;
        self.pasted = Some(rx);
        Ok(())
    }

    /// Takes a finished analysis of pasted text into the window.
    pub fn take_pasted(&mut self) {
        if let Some(result) = self.pasted.as_ref().and_then(|rx| rx.try_recv().ok()) {
            self.analysis = Some(result);
            self.pasted = None;
        }
    }
}

/// The span the charts show for `log`: at least a minute (a log of a few rows still gets a
/// readable axis).
pub fn full_span(log: &ImportedLog) -> (f64, f64) {
    let (t0, t1) = log.span;
    if t1 - t0 < 60.0 {
        let mid = (t0 + t1) / 2.0;
        (mid - 30.0, mid + 30.0)
    } else {
        (t0, t1)
    }
}

/// "Nov 22 14:00:03 – Nov 23 14:00:02 (24 h)": the dates always shown, so a day-long log never
/// reads 00:00 … 00:00.
pub fn visible_range_text(t0: f64, t1: f64) -> String {
    use super::plots::time_text;
    let span = t1 - t0;
    let length = if span >= 2.0 * 3_600.0 {
        crate::t!("span-hours", n = format!("{:.0}", span / 3_600.0))
    } else if span >= 120.0 {
        crate::t!("span-minutes", n = format!("{:.0}", span / 60.0))
    } else {
        crate::t!("span-seconds", n = format!("{span:.0}"))
    };
    format!(
        "{} – {} ({length})",
        time_text(t0, 1.0, true),
        time_text(t1, 1.0, true)
    )
}

/// The log's column: its file, dates, GPUs (one selected) with their peaks, and the way back
/// to live data. Returns true when the user goes back.
pub fn log_panel(
    ui: &mut Ui,
    log: &ImportedLog,
    slot: &mut usize,
    unit: crate::units::MemoryUnit,
) -> bool {
    use crate::telemetry::history::Metric;
    ui.label(RichText::new(crate::t!("logs-title")).heading());
    ui.add(egui::Label::new(RichText::new(&log.origin).strong()).truncate())
        .on_hover_text(&log.origin);
    ui.label(visible_range_text(log.span.0, log.span.1));
    ui.label(RichText::new(log.summary()).weak());
    let back = ui
        .button(crate::t!("logs-back"))
        .on_hover_text(crate::t!("logs-back-hover"))
        .clicked();
    ui.separator();
    for (i, g) in log.gpus.iter().enumerate() {
        let peak = log
            .history
            .stats(i, Metric::VramUsedMib, log.span.0, log.span.1);
        let util = log
            .history
            .stats(i, Metric::GpuUtil, log.span.0, log.span.1);
        let mut lines = vec![crate::t!("logs-rows", count = g.rows)];
        if let Some(p) = peak {
            lines.push(match g.total_mib {
                Some(total) => crate::t!(
                    "logs-vram-peak-of",
                    peak = unit.format_mib(p.max),
                    total = unit.format_mib(total)
                ),
                None => crate::t!("logs-vram-peak", peak = unit.format_mib(p.max)),
            });
        } else {
            lines.push(crate::t!("logs-vram-not-logged"));
        }
        if let Some(u) = util {
            lines.push(crate::t!("logs-util-mean", mean = format!("{:.0}", u.mean)));
        }
        let selected = *slot == i;
        let frame = egui::Frame::group(ui.style()).stroke(egui::Stroke::new(
            if selected { 2.0 } else { 1.0 },
            if selected {
                ui.visuals().selection.stroke.color
            } else {
                ui.visuals().widgets.noninteractive.bg_stroke.color
            },
        ));
        let response = frame
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.add(egui::Label::new(RichText::new(g.label()).strong()).truncate());
                for l in &lines {
                    ui.label(l);
                }
            })
            .response;
        let id = ui.scope_id().with(("log_gpu", i));
        if ui
            .interact(response.rect, id, egui::Sense::click())
            .on_hover_text(crate::t!("logs-gpu-hover"))
            .clicked()
        {
            *slot = i;
        }
        ui.add_space(4.0);
    }
    back
}

/// The log's header where there is no room for its column. Returns true on "Back to live".
pub fn log_header(ui: &mut Ui, log: &ImportedLog, slot: &mut usize) -> bool {
    let mut back = false;
    ui.horizontal(|ui| {
        if ui.button(crate::t!("logs-back")).clicked() {
            back = true;
        }
        ui.add(
            egui::Label::new(
                RichText::new(crate::t!("logs-header", origin = &log.origin)).strong(),
            )
            .truncate(),
        )
        .on_hover_text(log.summary());
    });
    if log.gpus.len() > 1 {
        ui.horizontal_wrapped(|ui| {
            for (i, g) in log.gpus.iter().enumerate() {
                ui.selectable_value(slot, i, g.label());
            }
        });
    }
    back
}

/// The processes holding each GPU's memory now, largest first (five per GPU), as "ComfyUI:
/// python3 (pid 4242) 9.1 GiB".
pub fn holding_now(
    snapshot: &crate::telemetry::Snapshot,
    owners: &crate::release::holders::Owners,
) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for g in &snapshot.gpus {
        let mut ps: Vec<_> = g.processes.iter().collect();
        ps.sort_by_key(|p| std::cmp::Reverse(p.used.map(|b| b.0).unwrap_or(0)));
        for p in ps.into_iter().take(5) {
            let held = p
                .used
                .map(|b| crate::units::MemoryUnit::GiB.format(b))
                .unwrap_or_else(|| crate::t!("na"));
            out.push((
                g.index,
                format!(
                    "{}: {} (pid {}) {held}",
                    owners.describe(p.pid, &p.name),
                    p.name,
                    p.pid
                ),
            ));
        }
    }
    out
}

/// The analysis window, kept inside `area` (below the top bar, above the status bar); closing
/// it clears `analysis`.
pub fn analysis_window(
    ctx: &egui::Context,
    analysis: &mut Option<(String, Analysis)>,
    holding_now: &[(u32, String)],
    area: egui::Rect,
) {
    let Some((origin, result)) = analysis.as_ref() else {
        return;
    };
    let mut open = true;
    egui::Window::new(crate::t!("logs-oom-title"))
        .open(&mut open)
        .default_size([720.0, 480.0])
        .default_pos(area.left_top() + egui::vec2(24.0, 24.0))
        .constrain_to(area)
        .vscroll(true)
        .show(ctx, |ui| {
            ui.label(RichText::new(origin).strong());
            let summary = result.summary();
            let mut chars = summary.chars();
            ui.label(match chars.next() {
                Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
                None => String::new(),
            });
            for e in &result.events {
                ui.separator();
                ui.label(RichText::new(e.headline()).strong());
                // The line as the log printed it, readable: a code block at the body's size.
                egui::Frame::new()
                    .fill(ui.visuals().extreme_bg_color)
                    .inner_margin(6)
                    .corner_radius(4)
                    .show(ui, |ui| {
                        ui.set_width(ui.available_width());
                        ui.label(
                            RichText::new(&e.text)
                                .monospace()
                                .color(ui.visuals().strong_text_color()),
                        );
                    });
                if let Some(numbers) = e.numbers_line() {
                    ui.label(numbers);
                }
                for a in &e.advice {
                    ui.label(format!("- {a}"));
                }
                // An engine that could not load, or another app in the way: who holds that
                // card now, by app, from the live process list.
                let gpu = e.numbers.gpu.unwrap_or(0);
                let now: Vec<&str> = holding_now
                    .iter()
                    .filter(|(g, _)| *g == gpu)
                    .map(|(_, who)| who.as_str())
                    .collect();
                if !now.is_empty() && e.cause != crate::logs::oom::Cause::NotOutOfMemory {
                    ui.label(
                        RichText::new(crate::t!(
                            "logs-holding-now",
                            gpu = gpu.to_string(),
                            list = now.join(", ")
                        ))
                        .weak(),
                    );
                }
            }
        });
    if !open {
        *analysis = None;
    }
}
