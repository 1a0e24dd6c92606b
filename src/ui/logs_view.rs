//! Opened logs: an imported CSV shown in the plots, an OOM analysis window, and the file
//! dialogs (run on their own thread: a native dialog blocks until the user answers).

use crate::logs::{OpenedLog, import::ImportedLog, oom::Analysis, open_log};

use crate::workloads::calibration::Calibration;
use crate::workloads::catalogue::Catalogue;
use egui::{RichText, Ui};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};

/// What a file operation ended with.
pub enum FileOutcome {
    /// A log was opened (or could not be).
    Opened(Result<OpenedLog, String>),
    /// An export was written (or could not be).
    Exported(Result<PathBuf, String>),
    /// The user closed the dialog.
    Cancelled,
}

/// Opened logs and file operations in flight.
#[derive(Default)]
pub struct LogsState {
    /// A CSV log shown instead of live data.
    pub imported: Option<ImportedLog>,
    /// Which of its GPUs.
    pub imported_slot: usize,
    /// An OOM analysis on screen: (file, result).
    pub analysis: Option<(String, Analysis)>,
    /// A file operation running.
    pub pending: Option<Receiver<FileOutcome>>,
}

fn spawn(work: impl FnOnce() -> FileOutcome + Send + 'static) -> Option<Receiver<FileOutcome>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("vramdeck-file".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .ok()
        .map(|_| rx)
}

/// Opens `path`, or asks for one with a dialog when `None`.
pub fn open(
    path: Option<PathBuf>,
    catalogue: Catalogue,
    calibration: Calibration,
) -> Option<Receiver<FileOutcome>> {
    spawn(move || {
        let path = match path {
            Some(p) => p,
            None => match rfd::FileDialog::new()
                .add_filter("logs", &["csv", "log", "txt"])
                .add_filter("all files", &["*"])
                .pick_file()
            {
                Some(p) => p,
                None => return FileOutcome::Cancelled,
            },
        };
        FileOutcome::Opened(open_log(&path, &catalogue, &calibration))
    })
}

/// Asks where to save `text` and writes it there.
pub fn export(text: String, suggested_name: String) -> Option<Receiver<FileOutcome>> {
    spawn(move || {
        match rfd::FileDialog::new()
            .add_filter("CSV", &["csv"])
            .set_file_name(&suggested_name)
            .save_file()
        {
            None => FileOutcome::Cancelled,
            Some(path) => FileOutcome::Exported(
                crate::persist::atomic_write(&path, &text)
                    .map(|()| path.clone())
                    .map_err(|e| format!("Cannot write {}: {e}", path.display())),
            ),
        }
    })
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
