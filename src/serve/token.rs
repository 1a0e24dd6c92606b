//! The bearer token that guards `vramdeck serve`'s actions: made on first start from the
//! kernel's random source, kept in a file only its owner can read.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the token lives unless `--token-file` says otherwise.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "vramdeck").map(|d| d.config_dir().join("serve-token"))
}

/// The token in `path`, made (0600, owner only) when there is none. A file that others can
/// read, that another user owns, or that is a symlink is refused: a token anyone can read
/// guards nothing.
pub fn load_or_create(path: &Path) -> anyhow::Result<String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if meta.file_type().is_symlink() || !meta.is_file() {
                anyhow::bail!(
                    "{} is not a plain file; remove it (a new token is made on the next start)",
                    path.display()
                );
            }
            if meta.uid() != crate::release::discovery::current_uid() {
                anyhow::bail!(
                    "{} belongs to uid {}, not to you; remove it or pass --token-file",
                    path.display(),
                    meta.uid()
                );
            }
            if meta.permissions().mode() & 0o077 != 0 {
                anyhow::bail!(
                    "{} can be read by other users (mode {:o}); run `chmod 600 {}`",
                    path.display(),
                    meta.permissions().mode() & 0o777,
                    path.display()
                );
            }
            let mut text = String::new();
            std::fs::File::open(path)?
                .take(1024)
                .read_to_string(&mut text)?;
            let token = text.trim().to_string();
            if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_graphic()) {
                anyhow::bail!(
                    "{} does not hold a usable token (32 or more printable characters); remove \
                     it and a new one is made",
                    path.display()
                );
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

fn create(path: &Path) -> anyhow::Result<String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let token = random_token()?;
    // create_new: never follows or reuses what someone put there in the meantime.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    file.write_all(format!("{token}\n").as_bytes())?;
    file.sync_all()?;
    Ok(token)
}

/// 32 random bytes as 64 hex digits.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| anyhow::anyhow!("cannot read /dev/urandom for a token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares in time independent of where the strings differ, so response timing does not
/// reveal the token a byte at a time.
pub fn matches(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, expected) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ expected);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_is_private_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/serve-token");
        let made = load_or_create(&path).unwrap();
        assert_eq!(made.len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&path).unwrap(), made);
        assert_ne!(random_token().unwrap(), made);
    }

    #[test]
    fn a_readable_file_or_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve-token");
        load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("can be read by other users"), "{e}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = load_or_create(&link).unwrap_err().to_string();
        assert!(e.contains("not a plain file"), "{e}");
    }

    #[test]
    fn a_short_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve-token");
        std::fs::write(&path, "short\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_or_create(&path).is_err());
    }

    #[test]
    fn only_the_exact_token_matches() {
        let token = "a".repeat(64);
        assert!(matches(&token, &token));
        assert!(!matches(&"a".repeat(63), &token));
        assert!(!matches(&"a".repeat(65), &token));
        assert!(!matches("", &token));
        assert!(!matches(&format!("b{}", "a".repeat(63)), &token));
    }
}
