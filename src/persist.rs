//! Writing files so that a crash never leaves half of one, and the UI never waits for the disk.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Writes `text` to `path` atomically: a new temp file with an unpredictable name beside it
/// (created exclusively, never through a link another user planted), fsync, rename. The file
/// is its owner's only (settings hold tokens).
pub fn atomic_write(path: &Path, text: &str) -> std::io::Result<()> {
    write_atomically(path, text, false)
}

/// [`atomic_write`] for a document the user exports (a CSV, presets to share): readable by
/// everyone, as a file saved by any editor is (0644 on Unix).
pub fn atomic_write_readable(path: &Path, text: &str) -> std::io::Result<()> {
    write_atomically(path, text, true)
}

fn write_atomically(path: &Path, text: &str, readable: bool) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let (mut file, tmp) = {
        let mut attempt = 0;
        loop {
            let mut tmp_name = format!(".{name}.{:016x}.tmp", random_u64());
            tmp_name.truncate(250);
            let tmp = path.with_file_name(tmp_name);
            match crate::platform::files::create_new_private(&tmp) {
                Ok(file) => break (file, tmp),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        }
    };
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| {
            if readable {
                crate::platform::files::make_readable(&tmp)
            } else {
                Ok(())
            }
        })
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// 64 bits from the kernel's random source (temp names must not be guessable).
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if crate::platform::files::fill_random(&mut bytes).is_err() {
        // No getrandom: still unpredictable enough to an outsider, and O_EXCL keeps it safe.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return now.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
    }
    u64::from_ne_bytes(bytes)
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It does not exist.
    #[error("not found")]
    NotFound,
    /// It is a FIFO, a device, a directory…: reading it could block or never end.
    #[error("not a regular file ({0})")]
    NotAFile(&'static str),
    /// It is bigger than this kind of file ever is.
    #[error("{size} bytes, more than the {limit} bytes such a file may have")]
    TooBig {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Anything else the OS said.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Opens `path` for reading only if it is a regular file (a FIFO would block the caller, a
/// device like /dev/zero would never end). Links are followed: users keep dotfiles in repos.
pub fn open_regular(path: &Path) -> Result<std::fs::File, ReadError> {
    let file = crate::platform::files::open_for_reading(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::NotFound,
        _ => ReadError::Io(e),
    })?;
    if let Some(kind) = crate::platform::files::kind_name(&file.metadata()?) {
        return Err(ReadError::NotAFile(kind));
    }
    Ok(file)
}

/// Reads a small file (settings, presets, calibration) whole, refusing anything that is not
/// a regular file or is over `limit` bytes, so a hostile or broken file costs at most `limit`.
pub fn read_small(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let file = open_regular(path)?;
    let size = file.metadata()?.len();
    if size > limit {
        return Err(ReadError::TooBig { size, limit });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooBig {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// The most a settings, presets or calibration file may hold (real ones are a few KiB).
pub const CONFIG_FILE_LIMIT: u64 = 1024 * 1024;

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
                        let outcome = atomic_write(&path, &text).err().map(|e| {
                            crate::t!(
                                "could-not-save",
                                path = path.display().to_string(),
                                error = e.to_string()
                            )
                        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_planted_link_at_the_old_temp_name_cannot_redirect_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("export.csv");
        // What an attacker in a shared folder plants: the name the old code always used.
        std::os::unix::fs::symlink(&victim, dir.path().join("export.csv.tmp")).unwrap();
        atomic_write(&target, "new contents").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new contents");
        // No temp file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp") && n != "export.csv.tmp")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn temp_names_are_not_predictable() {
        assert_ne!(random_u64(), random_u64());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_at_once_instead_of_hanging() {
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("settings.toml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        let err = read_small(&fifo, CONFIG_FILE_LIMIT).unwrap_err();
        assert!(matches!(err, ReadError::NotAFile("a FIFO")), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_links_to_them_are_refused() {
        if !Path::new("/dev/zero").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("presets.toml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_small(&link, CONFIG_FILE_LIMIT),
            Err(ReadError::NotAFile("a device"))
        ));
    }

    #[test]
    fn an_oversized_file_is_refused_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("calibration.toml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(1 << 30).unwrap(); // a sparse 1 GiB file: reading it whole would take 1 GiB
        let err = read_small(&big, CONFIG_FILE_LIMIT).unwrap_err();
        assert!(
            err.to_string().contains("more than the 1048576 bytes"),
            "{err}"
        );
        assert!(matches!(
            read_small(&dir.path().join("missing"), 10),
            Err(ReadError::NotFound)
        ));
    }
}
