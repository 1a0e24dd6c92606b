//! Files and folders: created for their owner only, opened so that a link or a FIFO someone
//! else planted cannot redirect or hang us, and who owns a folder and may change it.
//!
//! Unix answers with modes, owners and open flags. Windows keeps this in ACLs: the files and
//! folders vramdeck makes live in the user's profile (AppData), which only that user and the
//! administrators may open, so the owner and mode checks have nothing to look at there.

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

/// Whose a file or folder is and who else may use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// The owner's user id.
    pub uid: u32,
    /// The permission bits (including sticky, setuid and setgid).
    pub mode: u32,
}

/// The owner and mode bits, where the OS has them (Unix); `None` on Windows.
pub fn ownership(meta: &Metadata) -> Option<Ownership> {
    imp::ownership(meta)
}

/// This process's user id (Unix); 0 on Windows, where [`ownership`] is never compared with it.
pub fn current_uid() -> u32 {
    imp::current_uid()
}

/// Creates `path` for writing, failing when anything (a file, a link) is there already, so it
/// is never a file someone else prepared; readable by its owner only (0600 on Unix).
pub fn create_new_private(path: &Path) -> io::Result<File> {
    imp::create_new_private(path)
}

/// Makes the file at `path` readable by everyone, writable by its owner (0644 on Unix; on
/// Windows a new file already inherits its folder's access).
pub fn make_readable(path: &Path) -> io::Result<()> {
    imp::make_readable(path)
}

/// Opens `path` for reading without waiting for a writer if it is a FIFO; the file comes back
/// in blocking mode. Links are followed.
pub fn open_for_reading(path: &Path) -> io::Result<File> {
    imp::open_for_reading(path)
}

/// Opens `path` for reading, refusing a symbolic link in its last component (see
/// [`is_link_refusal`]) and not waiting on a FIFO.
pub fn open_no_follow(path: &Path) -> io::Result<File> {
    imp::open_no_follow(path)
}

/// True when `e` is [`open_no_follow`] refusing a link.
pub fn is_link_refusal(e: &io::Error) -> bool {
    imp::is_link_refusal(e)
}

/// What a non-regular file is, in words ("a directory", "a FIFO", "a device"…); `None` for a
/// regular file.
pub fn kind_name(meta: &Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else {
        Some(imp::special_kind(meta))
    }
}

/// True when `path` is a file this user could run (an executable bit on Unix; an .exe, .cmd
/// or .bat on Windows).
pub fn is_executable(path: &Path) -> bool {
    imp::is_executable(path)
}

/// Fills `buf` from the OS's random source.
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    getrandom::fill(buf).map_err(|e| io::Error::other(e.to_string()))
}

#[cfg(unix)]
mod imp {
    pub fn make_readable(path: &Path) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
    }

    use super::Ownership;
    use std::fs::{File, Metadata, OpenOptions};
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
    use std::path::Path;

    pub fn ownership(meta: &Metadata) -> Option<Ownership> {
        Some(Ownership {
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
        })
    }

    pub fn current_uid() -> u32 {
        // SAFETY: getuid has no preconditions and cannot fail.
        unsafe { libc::getuid() }
    }

    pub fn create_new_private(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600)
            .open(path)
    }

    pub fn open_for_reading(path: &Path) -> io::Result<File> {
        open_nonblocking(path, libc::O_CLOEXEC)
    }

    pub fn open_no_follow(path: &Path) -> io::Result<File> {
        open_nonblocking(path, libc::O_CLOEXEC | libc::O_NOFOLLOW)
    }

    /// O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever; cleared
    /// again once open, so reads behave as usual.
    fn open_nonblocking(path: &Path, flags: i32) -> io::Result<File> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(flags | libc::O_NONBLOCK)
            .open(path)?;
        // SAFETY: fcntl on a descriptor we own; F_SETFL with flags read just before.
        unsafe {
            let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
        Ok(file)
    }

    pub fn is_link_refusal(e: &io::Error) -> bool {
        e.raw_os_error() == Some(libc::ELOOP)
    }

    pub fn special_kind(meta: &Metadata) -> &'static str {
        let kind = meta.file_type();
        if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a plain file"
        }
    }

    pub fn is_executable(path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
}

#[cfg(windows)]
mod imp {
    pub fn make_readable(_path: &Path) -> io::Result<()> {
        Ok(())
    }

    use super::Ownership;
    use std::fs::{File, Metadata, OpenOptions};
    use std::io;
    use std::os::windows::fs::OpenOptionsExt;
    use std::path::Path;
    use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT;

    /// What [`open_no_follow`] says when it finds a link.
    const LINK_REFUSED: &str = "is a symbolic link or junction";

    pub fn ownership(_: &Metadata) -> Option<Ownership> {
        None
    }

    pub fn current_uid() -> u32 {
        0
    }

    pub fn create_new_private(path: &Path) -> io::Result<File> {
        // CREATE_NEW fails on anything already there, a link included.
        OpenOptions::new().write(true).create_new(true).open(path)
    }

    pub fn open_for_reading(path: &Path) -> io::Result<File> {
        // No FIFOs in Windows file systems; named pipes live under \\.\pipe\, which is not a
        // file a settings or log path names by accident, and is refused as not a file.
        OpenOptions::new().read(true).open(path)
    }

    pub fn open_no_follow(path: &Path) -> io::Result<File> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(path)?;
        if file.metadata()?.file_type().is_symlink() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, LINK_REFUSED));
        }
        Ok(file)
    }

    pub fn is_link_refusal(e: &io::Error) -> bool {
        e.kind() == io::ErrorKind::InvalidInput && e.to_string() == LINK_REFUSED
    }

    pub fn special_kind(meta: &Metadata) -> &'static str {
        if meta.file_type().is_symlink() {
            "a link"
        } else {
            "not a plain file"
        }
    }

    pub fn is_executable(path: &Path) -> bool {
        let runnable = path.extension().is_some_and(|x| {
            ["exe", "cmd", "bat", "com"]
                .iter()
                .any(|e| x.eq_ignore_ascii_case(e))
        });
        runnable && path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_private_file_is_never_one_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "planted").unwrap();
        assert_eq!(
            create_new_private(&path).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        let fresh = dir.path().join("fresh");
        create_new_private(&fresh).unwrap();
        if let Some(o) = ownership(&std::fs::metadata(&fresh).unwrap()) {
            assert_eq!(o.mode & 0o077, 0, "only its owner may read it");
            assert_eq!(o.uid, current_uid());
        }
    }

    #[test]
    fn random_bytes_differ() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn kinds_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            kind_name(&std::fs::metadata(dir.path()).unwrap()),
            Some("a directory")
        );
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert_eq!(kind_name(&std::fs::metadata(&file).unwrap()), None);
    }
}
