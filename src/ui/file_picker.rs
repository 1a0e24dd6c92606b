//! An in-window file chooser, for systems where no desktop file dialog (an xdg-desktop-portal
//! or zenity) can be shown: a minimal container, a bare window manager, an SSH-forwarded X
//! display. Folders are listed on a thread, capped, so a slow or huge folder never holds a frame.
//!
//! Written here rather than taken from a crate: egui-file-dialog (the maintained one) follows
//! egui 0.36, this app egui 0.37.

use egui::{RichText, Ui};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};

/// Most entries listed from one folder; the rest are counted, not shown.
pub const MAX_ENTRIES: usize = 5_000;

/// One entry of a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// File or folder name.
    pub name: String,
    /// A folder (or a link to one).
    pub is_dir: bool,
}

/// A folder's listing, as read on the listing thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Folders first, then files, each sorted by name.
    pub entries: Vec<Entry>,
    /// Entries left out past [`MAX_ENTRIES`].
    pub left_out: usize,
    /// Why the folder could not be read.
    pub error: Option<String>,
}

/// Reads `dir` (at most [`MAX_ENTRIES`] entries), leaving out hidden names unless `hidden`.
pub fn list(dir: &Path, hidden: bool) -> Listing {
    let reader = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) => {
            return Listing {
                error: Some(crate::t!(
                    "cannot-read",
                    path = dir.display().to_string(),
                    error = e.to_string()
                )),
                ..Listing::default()
            };
        }
    };
    let mut listing = Listing::default();
    for entry in reader.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !hidden && name.starts_with('.') {
            continue;
        }
        if listing.entries.len() == MAX_ENTRIES {
            listing.left_out += 1;
            continue;
        }
        // A link to a folder opens like one; `metadata` follows the link.
        let is_dir = entry.path().metadata().map(|m| m.is_dir()).unwrap_or(false);
        listing.entries.push(Entry {
            name: crate::text::sanitized(&name),
            is_dir,
        });
    }
    listing
        .entries
        .sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    listing
}

/// What the user did with the chooser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Picked {
    /// This path.
    Path(PathBuf),
    /// Closed without choosing.
    Cancelled,
}

/// The chooser's state.
pub struct FilePicker {
    title: String,
    action: String,
    extensions: &'static [&'static str],
    note: Option<String>,
    dir: PathBuf,
    name: String,
    show_all: bool,
    listing: Listing,
    reading: Option<Receiver<Listing>>,
    problem: Option<String>,
    /// Saving: an existing file is replaced only after the user says so.
    saving: bool,
    /// The existing file the user is asked about.
    replace: Option<PathBuf>,
}

impl FilePicker {
    /// A chooser titled `title` whose button says `action` ("Open", "Save"), listing files
    /// ending in one of `extensions` (all files once the user asks), starting in `dir` with
    /// `name` filled in.
    pub fn new(
        title: &str,
        action: String,
        extensions: &'static [&'static str],
        dir: PathBuf,
        name: String,
    ) -> Self {
        let mut picker = FilePicker {
            title: title.to_string(),
            action,
            extensions,
            note: None,
            dir,
            name,
            show_all: false,
            listing: Listing::default(),
            reading: None,
            problem: None,
            saving: false,
            replace: None,
        };
        picker.read_dir();
        picker
    }

    /// Chooses where to save: an existing file is replaced only after the user says so.
    pub fn saving(mut self) -> Self {
        self.saving = true;
        self
    }

    /// Says why this chooser is shown instead of the system's.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The folder shown.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read_dir(&mut self) {
        let (tx, rx) = mpsc::channel();
        let (dir, hidden) = (self.dir.clone(), self.show_all);
        let spawned = std::thread::Builder::new()
            .name("vramdeck-list-folder".into())
            .spawn(move || {
                let _ = tx.send(list(&dir, hidden));
            });
        self.reading = spawned.ok().map(|_| rx);
    }

    fn enter(&mut self, dir: PathBuf) {
        self.dir = dir;
        self.problem = None;
        self.read_dir();
    }

    fn shown(&self, e: &Entry) -> bool {
        e.is_dir
            || self.show_all
            || self.extensions.iter().any(|x| {
                Path::new(&e.name)
                    .extension()
                    .is_some_and(|ext| ext.eq_ignore_ascii_case(x))
            })
    }

    /// The path the text field names: absolute as typed, `~/…` from home, else in the folder.
    fn typed_path(&self) -> Option<PathBuf> {
        let typed = self.name.trim();
        if typed.is_empty() {
            return None;
        }
        if let Some(rest) = typed.strip_prefix("~/")
            && let Some(home) = std::env::var_os("HOME")
        {
            return Some(PathBuf::from(home).join(rest));
        }
        Some(self.dir.join(typed))
    }

    /// Accepts the typed path: a folder is entered, a file chosen.
    fn accept(&mut self) -> Option<Picked> {
        let Some(path) = self.typed_path() else {
            self.problem = Some(crate::t!("picker-type-a-name"));
            return None;
        };
        // One stat on the UI thread, for a path the user just typed: a local file system call
        // that returns at once (the folder listing itself runs on a thread).
        if path.is_dir() {
            self.name.clear();
            self.enter(path);
            return None;
        }
        if self.saving && path.exists() {
            self.replace = Some(path);
            return None;
        }
        Some(Picked::Path(path))
    }

    /// Draws the chooser; returns what the user chose, once.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<Picked> {
        if let Some(rx) = &self.reading
            && let Ok(listing) = rx.try_recv()
        {
            self.listing = listing;
            self.reading = None;
        }
        let mut picked = None;
        let mut open = true;
        let max = ctx.content_rect().size() - egui::vec2(40.0, 60.0);
        egui::Window::new(&self.title)
            .id(egui::Id::unique("vramdeck-file-picker"))
            .open(&mut open)
            .collapsible(false)
            .resizable(true)
            .default_size(egui::vec2(560.0, 400.0).min(max))
            .max_size(max)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| picked = self.contents(ui));
        if !open || ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
            picked = Some(Picked::Cancelled);
        }
        picked
    }

    fn contents(&mut self, ui: &mut Ui) -> Option<Picked> {
        let mut picked = None;
        if let Some(note) = &self.note {
            ui.label(RichText::new(note).weak());
        }
        ui.horizontal(|ui| {
            let parent = self.dir.parent().map(Path::to_path_buf);
            if ui
                .add_enabled(parent.is_some(), egui::Button::new(crate::t!("picker-up")))
                .clicked()
                && let Some(p) = parent
            {
                self.enter(p);
            }
            if let Some(home) = std::env::var_os("HOME")
                && ui.button(crate::t!("picker-home")).clicked()
            {
                self.enter(PathBuf::from(home));
            }
            let shown = self.dir.display().to_string();
            ui.add(egui::Label::new(RichText::new(&shown).monospace()).truncate())
                .on_hover_text(&shown);
        });
        ui.separator();
        let list_height = (ui.available_height() - 70.0).max(80.0);
        egui::ScrollArea::vertical()
            .max_height(list_height)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                if self.reading.is_some() {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(crate::t!("picker-reading"));
                    });
                }
                if let Some(e) = &self.listing.error {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                let (mut enter, mut select) = (None, None);
                for e in self.listing.entries.iter().filter(|e| self.shown(e)) {
                    let label = if e.is_dir {
                        format!("{}/", e.name)
                    } else {
                        e.name.clone()
                    };
                    let r = ui.selectable_label(!e.is_dir && self.name == e.name, label);
                    if e.is_dir && (r.double_clicked() || r.clicked()) {
                        enter = Some(self.dir.join(&e.name));
                    } else if r.double_clicked() {
                        picked = Some(Picked::Path(self.dir.join(&e.name)));
                    } else if r.clicked() {
                        select = Some(e.name.clone());
                    }
                }
                if let Some(name) = select {
                    self.name = name;
                }
                if self.listing.left_out > 0 {
                    ui.label(
                        RichText::new(crate::t!(
                            "picker-more-entries",
                            n = crate::units::group_thousands(self.listing.left_out as u64)
                        ))
                        .weak(),
                    );
                }
                if let Some(dir) = enter {
                    self.enter(dir);
                }
            });
        ui.separator();
        ui.horizontal(|ui| {
            let l = ui.label(crate::t!("picker-file"));
            let field = ui.add(
                egui::TextEdit::singleline(&mut self.name)
                    .desired_width(f32::INFINITY)
                    .hint_text(crate::t!("picker-name-hint")),
            );
            let field = field.labelled_by(l.id);
            if field.changed() {
                self.replace = None;
            }
            if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                picked = picked.take().or_else(|| self.accept());
            }
        });
        if let Some(existing) = self.replace.clone() {
            let name = existing
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    crate::t!("picker-exists", name = crate::text::sanitized(&name)),
                );
                if ui.button(crate::t!("picker-replace")).clicked() {
                    picked = Some(Picked::Path(existing.clone()));
                }
                if ui.button(crate::t!("picker-keep")).clicked() {
                    self.replace = None;
                }
            });
        }
        ui.horizontal(|ui| {
            if ui.button(&self.action).clicked() {
                picked = picked.take().or_else(|| self.accept());
            }
            if ui.button(crate::t!("picker-cancel")).clicked() {
                picked = Some(Picked::Cancelled);
            }
            let before = self.show_all;
            ui.checkbox(&mut self.show_all, crate::t!("picker-show-all"));
            if self.show_all != before {
                self.read_dir();
            }
            if let Some(p) = &self.problem {
                ui.colored_label(ui.visuals().error_fg_color, p);
            }
        });
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_lists_folders_first_and_hides_dot_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("zeta")).unwrap();
        std::fs::write(dir.path().join("a.csv"), "").unwrap();
        std::fs::write(dir.path().join(".hidden.csv"), "").unwrap();
        let l = list(dir.path(), false);
        let names: Vec<&str> = l.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["zeta", "a.csv"]);
        assert!(l.entries[0].is_dir);
        assert_eq!(list(dir.path(), true).entries.len(), 3);
    }

    #[test]
    fn a_huge_folder_is_capped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_ENTRIES + 7 {
            std::fs::write(dir.path().join(format!("{i}.csv")), "").unwrap();
        }
        let l = list(dir.path(), false);
        assert_eq!(l.entries.len(), MAX_ENTRIES);
        assert_eq!(l.left_out, 7);
    }

    #[test]
    fn an_unreadable_folder_is_a_sentence() {
        let l = list(Path::new("/nonexistent/folder"), false);
        assert!(l.error.unwrap().contains("/nonexistent/folder"));
    }
}
