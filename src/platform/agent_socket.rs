//! How vramdeck reaches the agents inside WebUI processes, and who is at the other end.
//!
//! Two transports, one protocol. On Unix an agent listens on `<pid>.sock`, a Unix socket in a
//! private per-user folder, and the kernel names the process and user behind a connection
//! (SO_PEERCRED). Where Python has no AF_UNIX (Windows), or when asked to, it listens on a
//! loopback port instead and names it, with a secret, in `<pid>.json` in the same folder; a
//! TCP connection says nothing about its peer, so both sides prove they hold the secret (see
//! `release::handshake`). Unix sockets do not exist in this Windows build.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
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
pub enum AgentStream {
    /// A Unix socket (the OS names the peer).
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
    /// A loopback TCP connection (the handshake proves the peer).
    Loopback(TcpStream),
}

impl AgentStream {
    /// Bounds each read (None: wait).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            AgentStream::Unix(s) => s.set_read_timeout(timeout),
            AgentStream::Loopback(s) => s.set_read_timeout(timeout),
        }
    }

    /// Bounds each write (None: wait).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            AgentStream::Unix(s) => s.set_write_timeout(timeout),
            AgentStream::Loopback(s) => s.set_write_timeout(timeout),
        }
    }
}

impl Read for AgentStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            #[cfg(unix)]
            AgentStream::Unix(s) => s.read(buf),
            AgentStream::Loopback(s) => s.read(buf),
        }
    }
}

impl Write for AgentStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            #[cfg(unix)]
            AgentStream::Unix(s) => s.write(buf),
            AgentStream::Loopback(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            AgentStream::Unix(s) => s.flush(),
            AgentStream::Loopback(s) => s.flush(),
        }
    }
}

/// Where agents put their sockets and endpoint files unless `VRAMDECK_AGENT_DIR` says: a
/// trusted base and the levels below it that must be private (the same rule as the agent).
pub fn default_dir() -> (PathBuf, Vec<OsString>) {
    imp::default_dir()
}

/// Connects to the agent socket at `path` within `timeout` (a hung agent whose backlog is
/// full would otherwise block).
pub fn connect_unix(path: &Path, timeout: Duration) -> io::Result<AgentStream> {
    imp::connect_unix(path, timeout)
}

/// Connects to an agent's port on 127.0.0.1 within `timeout`; never any other address.
pub fn connect_loopback(port: u16, timeout: Duration) -> io::Result<AgentStream> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = std::time::Instant::now() + timeout;
    // A connection request dropped by a full accept queue (another user flooding the port) is
    // sent again by the kernel only after a second: ask again sooner, within the caller's limit.
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left < Duration::from_millis(5) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        match TcpStream::connect_timeout(&address, left.min(RETRY_CONNECT_AFTER)) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true); // requests are single short lines
                return Ok(AgentStream::Loopback(stream));
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
            Err(e) => return Err(e),
        }
    }
}

/// How long one loopback connection attempt waits before a fresh one is made.
const RETRY_CONNECT_AFTER: Duration = Duration::from_millis(200);

/// The credentials of the process at the other end, where the OS can say (Unix sockets);
/// `None` for a loopback connection.
pub fn peer_credentials(stream: &AgentStream) -> io::Result<Option<PeerCredentials>> {
    match stream {
        #[cfg(unix)]
        AgentStream::Unix(s) => imp::peer_credentials(s).map(Some),
        AgentStream::Loopback(_) => Ok(None),
    }
}

#[cfg(unix)]
mod imp {
    use super::{AgentStream, PeerCredentials};
    use std::ffi::OsString;
    use std::io;
    use std::os::unix::net::UnixStream;
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

    pub fn connect_unix(path: &Path, timeout: Duration) -> io::Result<AgentStream> {
        let address = socket2::SockAddr::unix(path)?;
        let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
        socket.connect_timeout(&address, timeout)?;
        socket.set_nonblocking(false)?;
        Ok(AgentStream::Unix(socket.into()))
    }

    pub fn peer_credentials(stream: &UnixStream) -> io::Result<PeerCredentials> {
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
    use super::AgentStream;
    use std::ffi::OsString;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// `%LOCALAPPDATA%\vramdeck\agents`: inside the user's profile, whose access list admits
    /// only the user (and administrators); the agent creates the levels, which inherit it.
    pub fn default_dir() -> (PathBuf, Vec<OsString>) {
        let base = std::env::var_os("LOCALAPPDATA")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        (base, vec!["vramdeck".into(), "agents".into()])
    }

    pub fn connect_unix(_: &Path, _: Duration) -> io::Result<AgentStream> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "agents on Windows listen on loopback ports (<pid>.json), not Unix sockets",
        ))
    }
}
