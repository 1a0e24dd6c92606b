//! Talking to one agent: connect with a timeout, check it is our user, one request per call,
//! replies read with a deadline and a size cap.

use super::discovery::{Endpoint, current_uid};
use super::protocol::{self, AgentInfo, Freed, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, Request};
use super::{FreeLevel, ReleaseError};
pub use crate::platform::agent_socket::PeerCredentials;
use crate::platform::agent_socket::{self, AgentStream};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

/// A connection to one agent.
pub struct AgentClient {
    stream: AgentStream,
    target: String,
    /// The listener's pid from its credentials.
    pid: u32,
    timeout: Duration,
    next_id: u64,
}

impl AgentClient {
    /// Connects within `timeout` and checks the peer runs as this user.
    pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Self, ReleaseError> {
        Self::connect_as(endpoint, timeout, current_uid())
    }

    /// As [`connect`](Self::connect), accepting only a peer running as `expected_uid`.
    ///
    /// The peer credentials name the process that called `listen()`. It must be the pid in the
    /// socket's name, and alive: a WebUI that was killed while a forked child kept its
    /// listening socket open accepts connections that nobody will ever answer, so it counts
    /// as gone, not as hung.
    pub fn connect_as(
        endpoint: &Endpoint,
        timeout: Duration,
        expected_uid: u32,
    ) -> Result<Self, ReleaseError> {
        let target = format!("agent pid {}", endpoint.pid);
        let stream = connect_with_timeout(endpoint, timeout).map_err(|e| match e.kind() {
            ErrorKind::ConnectionRefused | ErrorKind::NotFound => {
                ReleaseError::Gone(target.clone())
            }
            ErrorKind::TimedOut | ErrorKind::WouldBlock => ReleaseError::Timeout {
                target: target.clone(),
                seconds: timeout.as_secs_f64(),
            },
            _ => ReleaseError::Connect {
                target: target.clone(),
                reason: e.to_string(),
            },
        })?;
        let peer = peer_credentials(&stream).map_err(|e| ReleaseError::Connect {
            target: target.clone(),
            reason: format!("cannot read peer credentials: {e}"),
        })?;
        if peer.uid != expected_uid {
            return Err(ReleaseError::OtherUser {
                target,
                uid: peer.uid,
            });
        }
        if !process_alive(peer.pid) {
            return Err(ReleaseError::Gone(target));
        }
        if peer.pid != endpoint.pid {
            return Err(ReleaseError::Impostor {
                target,
                served_by: peer.pid,
            });
        }
        Ok(AgentClient {
            stream,
            target,
            pid: peer.pid,
            timeout,
            next_id: 1,
        })
    }

    /// Asks the agent who it is and what it holds.
    pub fn hello(&mut self) -> Result<AgentInfo, ReleaseError> {
        let reply = self.call("hello", None, self.timeout)?;
        let info = reply
            .agent
            .ok_or_else(|| self.malformed("hello reply without agent"))?;
        // What the agent says of itself must agree with what the kernel says of it.
        if info.pid != self.pid {
            return Err(self.malformed(&format!(
                "it says it is pid {} but the socket belongs to pid {}",
                info.pid, self.pid
            )));
        }
        Ok(info)
    }

    /// Asks the agent to release memory; `timeout` bounds how long its hooks may take.
    pub fn free(&mut self, level: FreeLevel, timeout: Duration) -> Result<Freed, ReleaseError> {
        let reply = self.call("free", Some(level), timeout)?;
        reply
            .freed
            .ok_or_else(|| self.malformed("free reply without result"))
    }

    fn malformed(&self, reason: &str) -> ReleaseError {
        ReleaseError::Malformed {
            target: self.target.clone(),
            reason: reason.into(),
        }
    }

    fn call(
        &mut self,
        op: &'static str,
        level: Option<FreeLevel>,
        timeout: Duration,
    ) -> Result<protocol::Reply, ReleaseError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = Request {
            v: PROTOCOL_VERSION,
            id,
            op,
            level,
        };
        let deadline = Instant::now() + timeout;
        let timed_out = || ReleaseError::Timeout {
            target: self.target.clone(),
            seconds: timeout.as_secs_f64(),
        };
        let _ = self.stream.set_write_timeout(Some(timeout));
        self.stream
            .write_all(&request.encode())
            .map_err(|e| match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => {
                    ReleaseError::Gone(self.target.clone())
                }
                _ => ReleaseError::Connect {
                    target: self.target.clone(),
                    reason: e.to_string(),
                },
            })?;
        let line = read_line(&mut self.stream, deadline).map_err(|e| match e {
            LineError::Timeout => timed_out(),
            LineError::Closed => ReleaseError::Malformed {
                target: self.target.clone(),
                reason: crate::t!("err-connection-closed"),
            },
            LineError::TooLong => {
                self.malformed(&format!("reply longer than {MAX_MESSAGE_BYTES} bytes"))
            }
            LineError::Io(reason) => ReleaseError::Connect {
                target: self.target.clone(),
                reason,
            },
        })?;
        let reply = protocol::decode_reply(&line, id).map_err(|reason| self.malformed(&reason))?;
        if !reply.ok {
            return Err(ReleaseError::Refused {
                target: self.target.clone(),
                message: reply.error.unwrap_or_else(|| "no reason given".into()),
            });
        }
        Ok(reply)
    }
}

enum LineError {
    Timeout,
    Closed,
    TooLong,
    Io(String),
}

/// Reads up to the first newline, giving up at `deadline` or past the size cap, so a hung or
/// flooding peer costs at most the timeout and 64 KiB.
fn read_line(stream: &mut AgentStream, deadline: Instant) -> Result<Vec<u8>, LineError> {
    let mut line = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LineError::Timeout);
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut chunk) {
            Ok(0) => return Err(LineError::Closed),
            Ok(n) => {
                if let Some(end) = chunk[..n].iter().position(|b| *b == b'\n') {
                    line.extend_from_slice(&chunk[..end]);
                    return if line.len() > MAX_MESSAGE_BYTES {
                        Err(LineError::TooLong)
                    } else {
                        Ok(line)
                    };
                }
                line.extend_from_slice(&chunk[..n]);
                if line.len() > MAX_MESSAGE_BYTES {
                    return Err(LineError::TooLong);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(LineError::Timeout);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Err(LineError::Closed),
            Err(e) => return Err(LineError::Io(e.to_string())),
        }
    }
}

/// `connect` bounded by `timeout`: a hung agent whose backlog is full would otherwise block.
fn connect_with_timeout(endpoint: &Endpoint, timeout: Duration) -> std::io::Result<AgentStream> {
    agent_socket::connect(&endpoint.path, timeout)
}

/// The credentials of the process at the other end.
pub fn peer_credentials(stream: &AgentStream) -> std::io::Result<PeerCredentials> {
    agent_socket::peer_credentials(stream)
}

/// True while `pid` runs (a zombie, killed but not yet reaped, does not count).
pub fn process_alive(pid: u32) -> bool {
    crate::platform::process::alive(pid)
}
