//! Writing files so that a crash never leaves half of one, and the UI never waits for the disk.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Writes `text` to `path` atomically (temp file + fsync + rename), creating the directory.
pub fn atomic_write(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Writes files on a background thread; of several pending writes to one path only the newest
/// is written. Pending writes finish when it is dropped.
pub struct BackgroundWriter {
    sender: Option<Sender<(PathBuf, String)>>,
    thread: Option<JoinHandle<()>>,
    error: Arc<Mutex<Option<String>>>,
}

impl Default for BackgroundWriter {
    fn default() -> Self {
        Self::spawn()
    }
}

impl BackgroundWriter {
    /// Starts the writer thread.
    pub fn spawn() -> Self {
        let (sender, inbox) = mpsc::channel::<(PathBuf, String)>();
        let error = Arc::new(Mutex::new(None));
        let thread_error = Arc::clone(&error);
        let thread = std::thread::Builder::new()
            .name("vramdeck-writer".into())
            .spawn(move || {
                while let Ok(first) = inbox.recv() {
                    let mut pending = vec![first];
                    pending.extend(inbox.try_iter());
                    // Newest per path wins: keep the last occurrence of each path.
                    let mut latest: Vec<(PathBuf, String)> = Vec::new();
                    for (path, text) in pending {
                        latest.retain(|(p, _)| *p != path);
                        latest.push((path, text));
                    }
                    for (path, text) in latest {
                        let outcome = atomic_write(&path, &text)
                            .err()
                            .map(|e| format!("Could not save {}: {e}", path.display()));
                        *thread_error.lock().unwrap_or_else(|p| p.into_inner()) = outcome;
                    }
                }
            })
            .ok();
        BackgroundWriter {
            sender: Some(sender),
            thread,
            error,
        }
    }

    /// Queues a write.
    pub fn write(&self, path: PathBuf, text: String) {
        if let Some(sender) = &self.sender {
            let _ = sender.send((path, text));
        }
    }

    /// The last write's failure, if it failed.
    pub fn last_error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
