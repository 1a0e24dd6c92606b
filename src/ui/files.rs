//! Opening and saving files from the window. The desktop's own dialog (xdg-desktop-portal or
//! zenity, through rfd) when the system has one; otherwise, or when it fails to appear, the
//! in-window chooser. Reading and writing always run on a thread.

use super::file_picker::{FilePicker, Picked};
use crate::logs::{OpenedLog, open_log};
use crate::workloads::calibration::Calibration;
use crate::workloads::catalogue::{self, Catalogue, Workload};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// What a file is wanted for.
pub enum Purpose {
    /// A CSV log to plot or a console log to analyse (advice needs the presets).
    OpenLog(Box<(Catalogue, Calibration)>),
    /// Save this CSV text; the suggested file name.
    ExportCsv(String, String),
    /// A presets file to add.
    ImportPresets,
    /// Save the user's presets (this TOML text).
    ExportPresets(String),
}

impl Purpose {
    fn title(&self) -> String {
        match self {
            Purpose::OpenLog(_) => crate::t!("file-open-log"),
            Purpose::ExportCsv(..) => crate::t!("file-export-csv"),
            Purpose::ImportPresets => crate::t!("file-import-presets"),
            Purpose::ExportPresets(_) => crate::t!("file-export-presets"),
        }
    }

    fn is_save(&self) -> bool {
        matches!(self, Purpose::ExportCsv(..) | Purpose::ExportPresets(_))
    }

    fn extensions(&self) -> &'static [&'static str] {
        match self {
            Purpose::OpenLog(_) => &["csv", "log", "txt"],
            Purpose::ExportCsv(..) => &["csv"],
            Purpose::ImportPresets | Purpose::ExportPresets(_) => &["toml"],
        }
    }

    fn suggested_name(&self) -> String {
        match self {
            Purpose::ExportCsv(_, name) => name.clone(),
            Purpose::ExportPresets(_) => "vramdeck-presets.toml".into(),
            _ => String::new(),
        }
    }

    /// Does the reading or writing (on a file thread).
    fn run(self, path: PathBuf) -> FileOutcome {
        let write = |text: &str| {
            crate::persist::atomic_write_readable(&path, text)
                .map(|()| path.clone())
                .map_err(|e| {
                    crate::t!(
                        "cannot-write",
                        path = path.display().to_string(),
                        error = e.to_string()
                    )
                })
        };
        match self {
            Purpose::OpenLog(context) => {
                FileOutcome::Opened(open_log(&path, &context.0, &context.1))
            }
            Purpose::ExportCsv(text, _) => FileOutcome::Exported(write(&text)),
            Purpose::ExportPresets(text) => FileOutcome::PresetsExported(write(&text)),
            Purpose::ImportPresets => FileOutcome::PresetsImported(
                crate::persist::read_small(&path, crate::persist::CONFIG_FILE_LIMIT)
                    .map_err(|e| {
                        crate::t!(
                            "cannot-read",
                            path = path.display().to_string(),
                            error = e.to_string()
                        )
                    })
                    .and_then(|bytes| {
                        catalogue::parse(
                            &String::from_utf8_lossy(&bytes),
                            &path.display().to_string(),
                        )
                    }),
            ),
        }
    }
}

/// What a file operation ended with.
pub enum FileOutcome {
    /// A log was opened (or could not be).
    Opened(Result<OpenedLog, String>),
    /// Plotted readings were saved (or could not be).
    Exported(Result<PathBuf, String>),
    /// Presets were read (or could not be).
    PresetsImported(Result<Vec<Workload>, String>),
    /// The user's presets were saved (or could not be).
    PresetsExported(Result<PathBuf, String>),
    /// The user closed the dialog.
    Cancelled,
}

/// Which chooser to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chooser {
    /// The desktop's dialog when one exists, else the in-window one.
    Auto,
    /// Always the in-window chooser (`VRAMDECK_FILE_DIALOG=in-window`, and tests).
    InWindow,
}

impl Chooser {
    /// From `VRAMDECK_FILE_DIALOG` (`in-window` forces the in-window chooser).
    pub fn from_env() -> Self {
        match std::env::var("VRAMDECK_FILE_DIALOG").as_deref() {
            Ok("in-window") => Chooser::InWindow,
            _ => Chooser::Auto,
        }
    }
}

/// A system dialog that returns "cancelled" faster than this never reached the screen: no
/// person dismisses a file dialog in a quarter of a second.
const NO_DIALOG_WITHIN: Duration = Duration::from_millis(250);

/// What the file thread sends back.
enum Message {
    Done(FileOutcome),
    /// No system dialog could be shown (why): ask in the window instead.
    NoDialog(Purpose, String),
}

/// File operations of the window: at most one at a time.
pub struct Files {
    chooser: Chooser,
    start_dir: Option<PathBuf>,
    working: Option<Receiver<Message>>,
    picker: Option<(FilePicker, Purpose)>,
}

impl Files {
    /// Files chosen with `chooser`; the in-window chooser starts in `start_dir` (else home).
    pub fn new(chooser: Chooser, start_dir: Option<PathBuf>) -> Self {
        Files {
            chooser,
            start_dir,
            working: None,
            picker: None,
        }
    }

    /// True while a dialog is open or a file is being read or written.
    pub fn busy(&self) -> bool {
        self.working.is_some() || self.picker.is_some()
    }

    /// Asks for a file for `purpose`, then reads or writes it. Ignored while busy.
    pub fn request(&mut self, purpose: Purpose) {
        if self.busy() {
            return;
        }
        match self.chooser {
            Chooser::InWindow => self.open_picker(purpose, None),
            Chooser::Auto => {
                self.working = spawn(move || {
                    if let Some(why) = crate::platform::file_dialog::unavailable() {
                        return Message::NoDialog(purpose, why);
                    }
                    let started = Instant::now();
                    match system_dialog(&purpose) {
                        Some(path) => Message::Done(purpose.run(path)),
                        None if started.elapsed() < NO_DIALOG_WITHIN => {
                            Message::NoDialog(purpose, crate::t!("file-dialog-did-not-appear"))
                        }
                        None => Message::Done(FileOutcome::Cancelled),
                    }
                });
            }
        }
    }

    /// Opens `path` for `purpose` without asking (a file dropped on the window, or named on
    /// the command line). Ignored while busy.
    pub fn run_on(&mut self, purpose: Purpose, path: PathBuf) {
        if self.busy() {
            return;
        }
        self.working = spawn(move || Message::Done(purpose.run(path)));
    }

    fn open_picker(&mut self, purpose: Purpose, note: Option<String>) {
        let dir = self
            .start_dir
            .clone()
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let action = if purpose.is_save() {
            crate::t!("picker-save")
        } else {
            crate::t!("picker-open")
        };
        let mut picker = FilePicker::new(
            &purpose.title(),
            action,
            purpose.extensions(),
            dir,
            purpose.suggested_name(),
        );
        if let Some(note) = note {
            picker = picker.with_note(note);
        }
        if purpose.is_save() {
            picker = picker.saving();
        }
        self.picker = Some((picker, purpose));
    }

    /// Draws the in-window chooser if open and collects a finished operation.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<FileOutcome> {
        if let Some((picker, _)) = &mut self.picker
            && let Some(picked) = picker.show(ctx)
        {
            let (picker, purpose) = self.picker.take().expect("open");
            // The next chooser starts where this one ended.
            self.start_dir = Some(picker.dir().to_path_buf());
            match picked {
                Picked::Cancelled => return Some(FileOutcome::Cancelled),
                Picked::Path(path) => self.run_on(purpose, path),
            }
        }
        let rx = self.working.as_ref()?;
        let message = match rx.try_recv() {
            Ok(m) => m,
            Err(mpsc::TryRecvError::Empty) => return None,
            Err(mpsc::TryRecvError::Disconnected) => {
                self.working = None;
                return Some(FileOutcome::Cancelled);
            }
        };
        self.working = None;
        match message {
            Message::Done(outcome) => Some(outcome),
            Message::NoDialog(purpose, why) => {
                let note = crate::t!("file-no-dialog-note", why = why);
                self.open_picker(purpose, Some(note));
                None
            }
        }
    }
}

fn spawn(work: impl FnOnce() -> Message + Send + 'static) -> Option<Receiver<Message>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("vramdeck-file".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .ok()
        .map(|_| rx)
}

fn system_dialog(purpose: &Purpose) -> Option<PathBuf> {
    let dialog = rfd::FileDialog::new().set_title(purpose.title());
    let dialog = purpose
        .extensions()
        .iter()
        .fold(dialog, |d, x| d.add_filter(x.to_uppercase(), &[*x]))
        .add_filter(crate::t!("file-all-files"), &["*"]);
    if purpose.is_save() {
        dialog.set_file_name(purpose.suggested_name()).save_file()
    } else {
        dialog.pick_file()
    }
}
