//! Talking to one agent: connect with a timeout, check it is our user (the OS's word on a Unix
//! socket, the handshake on a loopback port), one request per call, replies read with a
//! deadline and a size cap.

use super::discovery::{Endpoint, Transport, current_uid};
use super::handshake::{self, Failure, Secret};
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
    ///
    /// A loopback endpoint has no credentials: its process must be alive before anything is
    /// sent (after it exits, anyone may listen on its port), the peer must prove it holds the
    /// secret before vramdeck proves it does, and `hello` must name the same pid.
    pub fn connect_as(
        endpoint: &Endpoint,
        timeout: Duration,
        expected_uid: u32,
    ) -> Result<Self, ReleaseError> {
        let target = format!("agent pid {}", endpoint.pid);
        if let Transport::Unreadable(reason) = &endpoint.transport {
            return Err(ReleaseError::Connect {
                target,
                reason: reason.clone(),
            });
        }
        if let Transport::Loopback { .. } = endpoint.transport
            && !process_alive(endpoint.pid)
        {
            return Err(ReleaseError::Gone(target));
        }
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
        if let Transport::Loopback { secret, port } = &endpoint.transport {
            let mut client = AgentClient {
                stream,
                target,
                pid: endpoint.pid,
                timeout,
                next_id: 1,
            };
            client.prove(secret, *port)?;
            return Ok(client);
        }
        let cannot_read = |reason: String| ReleaseError::Connect {
            target: target.clone(),
            reason: format!("cannot read peer credentials: {reason}"),
        };
        let peer = peer_credentials(&stream)
            .map_err(|e| cannot_read(e.to_string()))?
            .ok_or_else(|| cannot_read("the OS names no peer".into()))?;
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

    /// The loopback handshake: the agent proves it holds `secret`, then vramdeck does.
    fn prove(&mut self, secret: &Secret, port: u16) -> Result<(), ReleaseError> {
        let deadline = Instant::now() + self.timeout;
        let client_nonce = handshake::new_nonce().map_err(|e| ReleaseError::Connect {
            target: self.target.clone(),
            reason: e.to_string(),
        })?;
        let failed = |this: &Self, failure: Failure| match failure {
            Failure::Unproven => ReleaseError::Unproven {
                target: this.target.clone(),
                port,
            },
            Failure::Malformed(reason) => this.malformed(&reason),
            Failure::Refused(message) => ReleaseError::Refused {
                target: this.target.clone(),
                message,
            },
        };
        let limit = self.timeout;
        let reply = self.exchange(&handshake::opening(&client_nonce), deadline, limit)?;
        let agent_nonce = handshake::check_agent(&reply, secret, &client_nonce)
            .map_err(|failure| failed(self, failure))?;
        let reply = self.exchange(
            &handshake::proof_line(secret, &client_nonce, &agent_nonce),
            deadline,
            limit,
        )?;
        handshake::check_accepted(&reply).map_err(|failure| failed(self, failure))
    }

    /// Asks the agent who it is and what it holds.
    pub fn hello(&mut self) -> Result<AgentInfo, ReleaseError> {
        self.hello_telling(None)
    }

    /// [`hello`](Self::hello), telling the agent what is done when its app asks for room.
    pub fn hello_telling(
        &mut self,
        room: Option<super::arbiter::RoomPolicy>,
    ) -> Result<AgentInfo, ReleaseError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = Request {
            v: PROTOCOL_VERSION,
            id,
            op: "hello",
            level: None,
            need: None,
            granted: None,
            message: None,
            room,
        };
        let reply = self.send_request(request, self.timeout)?;
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
            need: None,
            granted: None,
            message: None,
            room: None,
        };
        self.send_request(request, timeout)
    }

    /// Answers the host's `need` request `need`: whether there is room, and what was done.
    pub fn answer_need(
        &mut self,
        need: u64,
        granted: bool,
        message: &str,
    ) -> Result<(), ReleaseError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = Request {
            v: PROTOCOL_VERSION,
            id,
            op: "need_answer",
            level: None,
            need: Some(need),
            granted: Some(granted),
            message: Some(message.chars().take(3_000).collect()),
            room: None,
        };
        self.send_request(request, self.timeout).map(|_| ())
    }

    fn send_request(
        &mut self,
        request: Request,
        timeout: Duration,
    ) -> Result<protocol::Reply, ReleaseError> {
        let id = request.id;
        let deadline = Instant::now() + timeout;
        let line = self.exchange(&request.encode(), deadline, timeout)?;
        let reply = protocol::decode_reply(&line, id).map_err(|reason| self.malformed(&reason))?;
        if !reply.ok {
            return Err(ReleaseError::Refused {
                target: self.target.clone(),
                message: reply.error.unwrap_or_else(|| "no reason given".into()),
            });
        }
        Ok(reply)
    }

    /// Sends one line and reads the answer's line, both by `deadline`; `limit` is the time the
    /// caller allowed, named when it runs out.
    fn exchange(
        &mut self,
        message: &[u8],
        deadline: Instant,
        limit: Duration,
    ) -> Result<Vec<u8>, ReleaseError> {
        let timed_out = || ReleaseError::Timeout {
            target: self.target.clone(),
            seconds: limit.as_secs_f64(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = self
            .stream
            .set_write_timeout(Some(left.max(Duration::from_millis(1))));
        self.stream.write_all(message).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                ReleaseError::Gone(self.target.clone())
            }
            _ => ReleaseError::Connect {
                target: self.target.clone(),
                reason: e.to_string(),
            },
        })?;
        read_line(&mut self.stream, deadline).map_err(|e| match e {
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
        })
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
    match &endpoint.transport {
        Transport::Loopback { port, .. } => agent_socket::connect_loopback(*port, timeout),
        _ => agent_socket::connect_unix(&endpoint.path, timeout),
    }
}

/// The credentials of the process at the other end (none for a loopback connection).
pub fn peer_credentials(stream: &AgentStream) -> std::io::Result<Option<PeerCredentials>> {
    agent_socket::peer_credentials(stream)
}

/// True while `pid` runs (a zombie, killed but not yet reaped, does not count).
pub fn process_alive(pid: u32) -> bool {
    crate::platform::process::alive(pid)
}

/// The loopback transport end to end inside one process, so that it also runs as a Windows
/// binary under Wine: a stand-in agent on a thread, written from PROTOCOL.md (the real Python
/// agent is driven by tests/agent_loopback.rs and packaging/python/tests/test_loopback.py).
#[cfg(test)]
mod loopback_tests {
    use super::*;
    use crate::release::discovery::{self, AgentDir};
    use ring::hmac;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// Serves one connection as an agent holding `secret` would, and returns what it read.
    fn stand_in_agent(secret: [u8; 32]) -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let handle = std::thread::spawn(move || {
            // A failing test must not hang on a connection that never comes.
            let deadline = Instant::now() + Duration::from_secs(10);
            let stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => return String::new(),
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut seen = String::new();
            let mut next = |seen: &mut String| {
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                seen.push_str(&line);
                serde_json::from_str::<serde_json::Value>(&line).unwrap_or_default()
            };
            let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
            let opening = next(&mut seen);
            let client = hex::decode(opening["nonce"].as_str().unwrap()).unwrap();
            let agent = [9u8; 32];
            let proof = hmac::sign(
                &key,
                &[b"vramdeck agent proof\n", &client[..], &agent].concat(),
            );
            let reply = serde_json::json!({"v":1,"id":0,"ok":true,
                "auth":{"nonce":hex::encode(agent),"proof":hex::encode(proof.as_ref())}});
            writeln!(writer, "{reply}").unwrap();
            let theirs = next(&mut seen);
            let Some(theirs) = theirs["proof"].as_str() else {
                return seen;
            };
            let message = [b"vramdeck client proof\n", &agent[..], &client[..]].concat();
            if hmac::verify(&key, &message, &hex::decode(theirs).unwrap()).is_err() {
                writeln!(writer, r#"{{"v":1,"id":0,"ok":false,"error":"proof"}}"#).unwrap();
                return seen;
            }
            writeln!(
                writer,
                r#"{{"v":1,"id":0,"ok":true,"auth":{{"accepted":true}}}}"#
            )
            .unwrap();
            let hello = next(&mut seen);
            let reply = serde_json::json!({"v":1,"id":hello["id"],"ok":true,"agent":{
                "pid":std::process::id(),"process_name":"python.exe","label":"ComfyUI portable",
                "agent_version":"0.4.0","torch":null,"torch_missing_reason":"stand-in",
                "device":null,"allocated":null,"reserved":null,"levels":["cache"]}});
            writeln!(writer, "{reply}").unwrap();
            seen
        });
        (port, handle)
    }

    /// A private folder, as agent directories must be.
    fn agent_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        dir
    }

    fn endpoint_file(dir: &std::path::Path, pid: u32, port: u16, secret: [u8; 32]) {
        let body = serde_json::json!({"format":"vramdeck-agent-endpoint","version":1,"pid":pid,
            "transport":"tcp","host":"127.0.0.1","port":port,"secret":hex::encode(secret)});
        std::fs::write(dir.join(format!("{pid}.json")), body.to_string()).unwrap();
    }

    #[test]
    fn an_agent_with_the_secret_is_found_and_answers() {
        let dir = agent_dir();
        let (port, agent) = stand_in_agent([1; 32]);
        endpoint_file(dir.path(), std::process::id(), port, [1; 32]);
        let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(5));
        assert!(found.problems.is_empty(), "{:?}", found.problems);
        assert_eq!(found.agents.len(), 1);
        assert_eq!(
            found.agents[0].info.label.as_deref(),
            Some("ComfyUI portable")
        );
        let seen = agent.join().unwrap();
        assert!(
            !seen.contains(&hex::encode([1u8; 32])),
            "the secret never crosses"
        );
    }

    #[test]
    fn a_listener_without_the_secret_never_gets_our_proof() {
        let dir = agent_dir();
        let (port, squatter) = stand_in_agent([2; 32]);
        endpoint_file(dir.path(), std::process::id(), port, [3; 32]);
        let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(5));
        assert!(found.agents.is_empty());
        assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
        // The stand-in reads until we hang up: only the opening came.
        drop(found);
        let seen = squatter.join().unwrap();
        assert_eq!(seen.lines().count(), 1, "{seen}");
        assert!(seen.contains("\"nonce\""));
    }

    #[test]
    fn an_endpoint_of_a_process_that_is_gone_is_removed_untouched() {
        let dir = agent_dir();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let gone = u32::MAX - 3;
        endpoint_file(
            dir.path(),
            gone,
            listener.local_addr().unwrap().port(),
            [4; 32],
        );
        let found = discovery::discover(&AgentDir::at(dir.path()), Duration::from_secs(2));
        assert!(
            found.agents.is_empty() && found.problems.is_empty(),
            "{found:?}"
        );
        assert_eq!(found.removed_stale.len(), 1);
        assert!(listener.accept().is_err(), "nobody connected");
    }
}
