//! The bearer token that guards `vramdeck serve`'s actions: made on first start from the
//! kernel's random source, kept in a file only its owner can read.

use crate::platform::files;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where the token lives unless `--token-file` says otherwise.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "vramdeck").map(|d| d.config_dir().join("serve-token"))
}

/// The token in `path`, made (0600, owner only) when there is none. A file that others can
/// read, that another user owns, or that is a symlink is refused: a token anyone can read
/// guards nothing. So is a folder others may change (unless sticky, as /tmp is): they could
/// swap the file.
pub fn load_or_create(path: &Path) -> anyhow::Result<String> {
    if let Some(dir) = path.parent().filter(|d| d.exists()) {
        check_folder(dir)?;
    }
    // Opened once, without following a link and without blocking on a FIFO, and every check
    // made on what was opened: a check by path and then an open by path can be raced.
    let file = match files::open_no_follow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return create(path),
        Err(e) if files::is_link_refusal(&e) => anyhow::bail!(
            "{} is not a plain file; remove it (a new token is made on the next start)",
            path.display()
        ),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        anyhow::bail!(
            "{} is not a plain file; remove it (a new token is made on the next start)",
            path.display()
        );
    }
    if let Some(own) = files::ownership(&meta) {
        if own.uid != files::current_uid() {
            anyhow::bail!(
                "{} belongs to uid {}, not to you; remove it or pass --token-file",
                path.display(),
                own.uid
            );
        }
        if own.mode & 0o077 != 0 {
            anyhow::bail!(
                "{} can be read by other users (mode {:o}); run `chmod 600 {}`",
                path.display(),
                own.mode & 0o777,
                path.display()
            );
        }
    }
    let mut text = String::new();
    file.take(1024).read_to_string(&mut text)?;
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

/// Refuses a folder that users other than its owner may change without the sticky bit (which
/// keeps them from renaming or removing others' files).
fn check_folder(dir: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
    let Some(own) = files::ownership(&meta) else {
        return Ok(());
    };
    let mode = own.mode;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        anyhow::bail!(
            "{} can be changed by other users (mode {:o}), who could swap the token file: keep \
             it in a private folder (--token-file), or `chmod go-w {}`",
            dir.display(),
            mode & 0o7777,
            dir.display()
        );
    }
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        check_folder(dir)?;
    }
    let token = random_token()?;
    // create_new: never follows or reuses what someone put there in the meantime.
    let mut file = files::create_new_private(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    file.write_all(format!("{token}\n").as_bytes())?;
    file.sync_all()?;
    Ok(token)
}

/// 32 random bytes as 64 hex digits.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    files::fill_random(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read the system's random source for a token: {e}"))?;
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
        if let Some(own) = files::ownership(&std::fs::metadata(&path).unwrap()) {
            assert_eq!(own.mode & 0o777, 0o600);
        }
        assert_eq!(load_or_create(&path).unwrap(), made);
        assert_ne!(random_token().unwrap(), made);
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_file_or_a_symlink_is_refused() {
        use std::os::unix::fs::PermissionsExt;
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(load_or_create(&path).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn another_user_cannot_swap_the_token_in_a_folder_they_may_change() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        if crate::release::discovery::current_uid() != 0 {
            eprintln!("skipped: acting as a second user needs root (CI runs as root)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let path = shared.join("serve-token");
        std::fs::write(&path, format!("{}\n", "a".repeat(64))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        // The attack review: nobody (uid 65534) renames its own token over ours in a loop;
        // checks by path, then an open by path, read theirs in 95 of 400 starts.
        let theirs = "b".repeat(64);
        let mut swapper = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while :; do printf '{theirs}\\n' > {d}/t.$$; chmod 600 {d}/t.$$; \
                 mv -f {d}/t.$$ {d}/serve-token 2>/dev/null; done",
                d = shared.display()
            ))
            .uid(65534)
            .gid(65534)
            .process_group(0)
            .spawn()
            .unwrap();
        // The attack runs: their file stands where ours was.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(&path).unwrap_or_default().trim() != theirs {
            assert!(
                std::time::Instant::now() < deadline,
                "the swapper never swapped"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let results: Vec<_> = (0..400).map(|_| load_or_create(&path)).collect();
        // SAFETY: signalling the process group the swapper leads (its mv children too).
        unsafe { libc::kill(-(swapper.id() as libc::pid_t), libc::SIGKILL) };
        let _ = swapper.wait();
        assert!(results.iter().all(|r| r.as_ref().ok() != Some(&theirs)));
        let e = results[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("can be changed by other users"), "{e}");
        // In a sticky folder (as /tmp) others cannot rename over our file: it loads.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let _ = std::fs::remove_file(&path);
        let ours = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap(), ours);
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
