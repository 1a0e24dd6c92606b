//! The one HTTP client for the APIs of apps on this machine (ComfyUI; the LLM servers and
//! WebUIs that unload over HTTP go through it too): ureq, the client the remote feeds use, with
//! one deadline for the whole exchange (a server dripping a byte at a time cannot stall it),
//! a size cap on every answer, no redirects, no proxy (a user's `HTTP_PROXY` must not see
//! loopback traffic), loopback addresses only, and a listener of another user refused.
//!
//! The listener's owner is read (from `/proc/net/tcp`) on a connection made just before the
//! request, to the same address: the port stays held by that listener while it runs, so a
//! squatter can only take it over between the two by outliving the app it replaces.

use super::ReleaseError;
use crate::text;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest a host name may take to resolve (once per address change).
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// An app's HTTP API on this machine: the loopback addresses its name resolved to (with its
/// usual ports when none was given), resolved once, when made.
#[derive(Clone, Debug)]
pub struct LocalService {
    /// What the app is called in messages ("ComfyUI", "Ollama").
    app: &'static str,
    candidates: Vec<SocketAddr>,
    text: String,
    /// The candidate that answered last, tried first next time.
    answered: Arc<Mutex<Option<SocketAddr>>>,
    /// The process found listening there, re-checked cheaply at each look.
    listener: Arc<Mutex<Option<(SocketAddr, u32)>>>,
    agent: ureq::Agent,
}

impl PartialEq for LocalService {
    fn eq(&self, other: &Self) -> bool {
        self.app == other.app && self.candidates == other.candidates && self.text == other.text
    }
}

/// Splits "host:port", "[v6]:port", "host" or "v6" into a host and an optional port.
fn split_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed '['")?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| format!("bad port {p:?}"))?),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected {after:?} after the address")),
        };
        return Ok((host.to_string(), port));
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Ok((text.to_string(), None));
    }
    match text.rsplit_once(':') {
        Some((host, p)) => Ok((
            host.to_string(),
            Some(p.parse().map_err(|_| format!("bad port {p:?}"))?),
        )),
        None => Ok((text.to_string(), None)),
    }
}

/// The addresses `host` names, within [`RESOLVE_TIMEOUT`]; "localhost" never asks a resolver.
fn resolve(host: &str) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
    }
    if host.is_empty() {
        return Err("no host name".into());
    }
    // A dead resolver blocks for many seconds: resolve on a helper thread, wait a bounded time.
    let (tx, rx) = std::sync::mpsc::channel();
    let name = format!("{host}:0");
    std::thread::Builder::new()
        .name("vramdeck-resolve".into())
        .spawn(move || {
            let _ = tx.send(
                name.to_socket_addrs()
                    .map(|a| a.map(|s| s.ip()).collect::<Vec<_>>()),
            );
        })
        .map_err(|e| e.to_string())?;
    match rx.recv_timeout(RESOLVE_TIMEOUT) {
        Ok(Ok(ips)) if !ips.is_empty() => Ok(ips),
        Ok(Ok(_)) => Err("the name resolves to no address".into()),
        Ok(Err(e)) => Err(format!("not an address ({e})")),
        Err(_) => Err(format!(
            "the name did not resolve within {} s",
            RESOLVE_TIMEOUT.as_secs()
        )),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(concat!("vramdeck/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

impl LocalService {
    /// Parses "127.0.0.1:8188", "localhost", "[::1]:8000" or "http://localhost:8188/" for
    /// `app`; refuses anything that is not loopback. Without a port, `usual_ports` are tried.
    pub fn parse(
        app: &'static str,
        address: &str,
        usual_ports: &[u16],
    ) -> Result<Self, ReleaseError> {
        let unusable = |reason: String| ReleaseError::Connect {
            target: format!("{app} at {address}"),
            reason,
        };
        let trimmed = address.trim();
        if trimmed.starts_with("https://") {
            return Err(unusable(format!(
                "https is not supported; {app} on this machine speaks http"
            )));
        }
        let trimmed = trimmed.trim_start_matches("http://").trim_end_matches('/');
        let (host, port) = split_host_port(trimmed).map_err(unusable)?;
        let ips = resolve(&host).map_err(unusable)?;
        if ips.iter().any(|ip| !ip.is_loopback()) {
            return Err(ReleaseError::NotLoopback(text::sanitized(address)));
        }
        let ports: Vec<u16> = match port {
            Some(p) => vec![p],
            None => usual_ports.to_vec(),
        };
        let candidates = ports
            .iter()
            .flat_map(|p| ips.iter().map(move |ip| SocketAddr::new(*ip, *p)))
            .collect();
        Ok(LocalService {
            app,
            candidates,
            text: text::sanitized(trimmed),
            answered: Arc::default(),
            listener: Arc::default(),
            agent: agent(),
        })
    }

    /// The address as given.
    pub fn address(&self) -> &str {
        &self.text
    }

    /// Every address tried, in order.
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.candidates
    }

    fn answered(&self) -> Option<SocketAddr> {
        *self.answered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where it answered last ("127.0.0.1:8000"), else the address as given.
    pub fn found_at(&self) -> String {
        match self.answered() {
            Some(a) => a.to_string(),
            None => self.text.clone(),
        }
    }

    /// The process listening where the app answered last, when the system says. The pid found
    /// is kept and re-checked (one process's descriptors), so a look every two seconds does not
    /// read every process's descriptors each time.
    pub fn listener_pid(&self) -> Option<u32> {
        use crate::platform::listeners;
        let address = self.answered()?;
        let mut known = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, pid)) = *known
            && at == address
            && listeners::listens_on(pid, address)
        {
            return Some(pid);
        }
        let pid = listeners::listener_pid(address);
        *known = pid.map(|p| (address, p));
        pid
    }

    /// The ports tried.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.candidates.iter().map(|a| a.port()).collect();
        ports.dedup();
        ports
    }

    /// True when the app may be the one listening on `port`: it answered there last time, or,
    /// before it has answered anywhere, `port` is one of those tried.
    pub fn may_be_on_port(&self, port: u16) -> bool {
        match self.answered() {
            Some(a) => a.port() == port,
            None => self.ports().contains(&port),
        }
    }

    /// "ComfyUI at 127.0.0.1:8188", for messages.
    pub fn target(&self) -> String {
        format!("{} at {}", self.app, self.found_at())
    }

    /// Finds the candidate that accepts (answered-last first) within `deadline`, checking the
    /// listener's owner; remembers it.
    pub fn locate(&self, deadline: Instant) -> Result<SocketAddr, ReleaseError> {
        use std::io::ErrorKind;
        let mut order = self.candidates.clone();
        if let Some(last) = self.answered() {
            order.retain(|a| *a != last);
            order.insert(0, last);
        }
        let (mut refused, mut other) = (false, None);
        for address in order {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(&address, left) {
                Ok(stream) => {
                    check_owner(&stream, address)?;
                    *self.answered.lock().unwrap_or_else(|p| p.into_inner()) = Some(address);
                    return Ok(address);
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => break,
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => refused = true,
                // e.g. IPv6 switched off: that candidate is simply not there.
                Err(e) => other = Some(e),
            }
        }
        Err(if refused {
            ReleaseError::Connect {
                target: crate::t!("err-app-at", app = self.app, address = &self.text),
                reason: crate::t!(
                    "err-nothing-listens",
                    app = self.app,
                    ports = self
                        .ports()
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(" / ")
                ),
            }
        } else if let Some(e) = other {
            ReleaseError::Connect {
                target: self.target(),
                reason: e.to_string(),
            }
        } else {
            ReleaseError::Timeout {
                target: self.target(),
                seconds: 0.0,
            }
        })
    }

    /// `GET path`: the body of a 2xx answer, at most `max_bytes`, all within `timeout`.
    pub fn get(
        &self,
        path: &str,
        timeout: Duration,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ReleaseError> {
        self.exchange(None, path, timeout, max_bytes)
    }

    /// `POST path` with a JSON `body`: as [`LocalService::get`].
    pub fn post_json(
        &self,
        path: &str,
        body: &str,
        timeout: Duration,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ReleaseError> {
        self.exchange(Some(body), path, timeout, max_bytes)
    }

    fn exchange(
        &self,
        post: Option<&str>,
        path: &str,
        timeout: Duration,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ReleaseError> {
        let deadline = Instant::now() + timeout;
        let timed_out = || ReleaseError::Timeout {
            target: self.target(),
            seconds: timeout.as_secs_f64(),
        };
        let address = self.locate(deadline).map_err(|e| match e {
            ReleaseError::Timeout { .. } => timed_out(),
            e => e,
        })?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        let url = format!("http://{address}{path}");
        let sent = match post {
            None => self
                .agent
                .get(&url)
                .header("Accept", "application/json")
                .config()
                .timeout_global(Some(left))
                .build()
                .call(),
            Some(body) => self
                .agent
                .post(&url)
                .header("Accept", "application/json")
                .content_type("application/json")
                .config()
                .timeout_global(Some(left))
                .build()
                .send(body),
        };
        let error = |e: ureq::Error| match e {
            ureq::Error::Timeout(_) => timed_out(),
            ureq::Error::BodyExceedsLimit(_) => ReleaseError::Malformed {
                target: self.target(),
                reason: format!("response larger than {max_bytes} bytes"),
            },
            ureq::Error::Io(e) => ReleaseError::Connect {
                target: self.target(),
                reason: e.to_string(),
            },
            e => ReleaseError::Malformed {
                target: self.target(),
                reason: text::sanitized(&e.to_string()),
            },
        };
        let mut response = sent.map_err(error)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(max_bytes)
            .read_to_vec()
            .map_err(error)?;
        if !(200..300).contains(&status) {
            return Err(ReleaseError::Malformed {
                target: self.target(),
                reason: format!("HTTP {status}"),
            });
        }
        Ok(body)
    }
}

/// Refuses a listener that belongs to another user (a squatter on the app's port).
fn check_owner(stream: &TcpStream, server: SocketAddr) -> Result<(), ReleaseError> {
    // Windows names the listener's process; its token says whose it is.
    if let Some(pid) = crate::platform::listeners::another_users_listener(server) {
        return Err(ReleaseError::OtherUsersProcess {
            target: format!("the listener at {server}"),
            pid,
        });
    }
    let Ok(local) = stream.local_addr() else {
        return Ok(());
    };
    match super::loopback_owner::server_uid(local, server) {
        Some(uid) if uid != super::discovery::current_uid() && uid != 0 => {
            Err(ReleaseError::OtherUser {
                target: format!("the listener at {server}"),
                uid,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        let ok = |a: &str| LocalService::parse("ComfyUI", a, &[8188]).is_ok();
        assert!(ok("127.0.0.1:8188"));
        assert!(ok("http://127.0.0.1:8188/"));
        assert!(ok("[::1]:8188"));
        assert!(ok("::1"));
        assert_eq!(
            LocalService::parse("ComfyUI", "10.0.0.5:8188", &[]),
            Err(ReleaseError::NotLoopback("10.0.0.5:8188".into()))
        );
        assert!(!ok("127.0.0.1:notaport"));
        assert!(!ok("https://127.0.0.1:8188"));
    }

    #[test]
    fn localhost_means_both_loopbacks_and_no_port_means_the_usual_ones() {
        let c = LocalService::parse("ComfyUI", "localhost", &[8188, 8000]).unwrap();
        let expected: Vec<SocketAddr> = [
            "127.0.0.1:8188",
            "[::1]:8188",
            "127.0.0.1:8000",
            "[::1]:8000",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        assert_eq!(c.candidates(), expected.as_slice());
        // Before it answered anywhere, either usual port may be it.
        assert!(c.may_be_on_port(8188) && c.may_be_on_port(8000) && !c.may_be_on_port(9000));
        let c = LocalService::parse("ComfyUI", "localhost:9000", &[8188]).unwrap();
        assert_eq!(c.ports(), vec![9000]);
        assert_eq!(c.candidates().len(), 2);
    }
}
