//! How vramdeck reaches the agents inside WebUI processes, and who is at the other end.
//!
//! On Unix each agent listens on `<pid>.sock`, a Unix socket in a private per-user folder, and
//! the kernel names the process and user behind a connection (SO_PEERCRED). Windows has no
//! such socket for Python agents: there the connection is `AgentStream` = a TCP stream, and
//! [`connect`] says plainly that agents are not reachable on Windows yet (the Windows agent
//! transport is its own piece of work); everything else in Free VRAM (ComfyUI's HTTP API)
//! works.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Who is at the other end of an agent connection, as the OS says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    /// The process that created the peer socket (for a listener: the one that called listen).
    pub pid: u32,
    /// Its user.
    pub uid: u32,
}

/// A connection to one agent.
#[cfg(unix)]
pub type AgentStream = std::os::unix::net::UnixStream;
/// A connection to one agent.
#[cfg(windows)]
pub type AgentStream = std::net::TcpStream;

/// Where agents put their sockets unless `VRAMDECK_AGENT_DIR` says: a trusted base and the
/// levels below it that must be private (the same rule as the Python agent).
pub fn default_dir() -> (PathBuf, Vec<OsString>) {
    imp::default_dir()
}

/// Connects to the agent at `path` within `timeout` (a hung agent whose backlog is full would
/// otherwise block).
pub fn connect(path: &Path, timeout: Duration) -> io::Result<AgentStream> {
    imp::connect(path, timeout)
}

/// The credentials of the process at the other end.
pub fn peer_credentials(stream: &AgentStream) -> io::Result<PeerCredentials> {
    imp::peer_credentials(stream)
}

#[cfg(unix)]
mod imp {
    use super::{AgentStream, PeerCredentials};
    use std::ffi::OsString;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    pub fn default_dir() -> (PathBuf, Vec<OsString>) {
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(runtime) => (
                PathBuf::from(runtime),
                vec!["vramdeck".into(), "agents".into()],
            ),
            None => (
                PathBuf::from("/tmp"),
                vec![
                    format!("vramdeck-{}", super::super::files::current_uid()).into(),
                    "agents".into(),
                ],
            ),
        }
    }

    pub fn connect(path: &Path, timeout: Duration) -> io::Result<AgentStream> {
        let address = socket2::SockAddr::unix(path)?;
        let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
        socket.connect_timeout(&address, timeout)?;
        socket.set_nonblocking(false)?;
        Ok(socket.into())
    }

    pub fn peer_credentials(stream: &AgentStream) -> io::Result<PeerCredentials> {
        use std::os::fd::AsRawFd;
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are valid for writes and sized for SO_PEERCRED's ucred.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            Ok(PeerCredentials {
                pid: u32::try_from(cred.pid).unwrap_or(0),
                uid: cred.uid,
            })
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(windows)]
mod imp {
    use super::{AgentStream, PeerCredentials};
    use std::ffi::OsString;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    const NOT_YET: &str = "vramdeck cannot reach agents on Windows yet; ComfyUI is freed \
                           through its HTTP API";

    pub fn default_dir() -> (PathBuf, Vec<OsString>) {
        let base = std::env::var_os("LOCALAPPDATA")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        (base, vec!["vramdeck".into(), "agents".into()])
    }

    pub fn connect(_: &Path, _: Duration) -> io::Result<AgentStream> {
        Err(io::Error::new(io::ErrorKind::Unsupported, NOT_YET))
    }

    pub fn peer_credentials(_: &AgentStream) -> io::Result<PeerCredentials> {
        Err(io::Error::new(io::ErrorKind::Unsupported, NOT_YET))
    }
}
