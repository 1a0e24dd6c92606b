//! ComfyUI's own HTTP API, on loopback only: `GET /system_stats`, `GET /queue`, `POST /free`.
//!
//! Route shapes as in ComfyUI's `server.py` and `main.py` (0.3.64, checked against the source):
//! `/free` takes `{"unload_models": bool, "free_memory": bool}`, but records each flag only when
//! it is true, and the prompt worker reads a missing `unload_models` as equal to
//! `free_memory`; so `free_memory: true` always unloads every model and also clears the node
//! cache. The HTTP API therefore has no cache-only release: vramdeck sends only
//! `{"unload_models": true}` (models leave VRAM, the node cache stays) and only for the level
//! `unload`. The flags are acted on between prompts, after the running one ends. `/queue`
//! answers `{"queue_running": [[number, prompt_id, …]], "queue_pending": […]}`;
//! `/system_stats` answers `{"system": {...}, "devices": [{"name", "type", "index",
//! "vram_total", "vram_free", "torch_vram_total", "torch_vram_free"}]}`.
//!
//! Every exchange has one deadline for connecting, writing and reading together (a server
//! dripping a byte at a time cannot stall it), and the listener must belong to this user.

use super::ReleaseError;
use crate::text;
use serde::Deserialize;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default address of a local ComfyUI: the usual ports on this machine's loopback.
pub const DEFAULT_ADDRESS: &str = "localhost";
/// Ports tried when the address names none: ComfyUI's own, then ComfyUI Desktop's.
pub const USUAL_PORTS: [u16; 2] = [8188, 8000];
/// Longest a host name may take to resolve (once per address change).
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest `/system_stats` response read (it is a few hundred bytes).
const MAX_STATS_BYTES: u64 = 1024 * 1024;
/// Largest `/queue` response read (it carries whole workflows).
const MAX_QUEUE_BYTES: u64 = 32 * 1024 * 1024;

/// One device in `/system_stats`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ComfyDevice {
    /// Device name as torch reports it.
    #[serde(deserialize_with = "text::safe_string")]
    pub name: String,
    /// "cuda", "cpu", "mps", …
    #[serde(rename = "type", deserialize_with = "text::safe_string")]
    pub kind: String,
    /// Device index.
    pub index: Option<u32>,
    /// Total memory of the device, bytes (system RAM for a CPU device).
    pub vram_total: u64,
    /// Free memory, bytes.
    pub vram_free: u64,
    /// Memory torch has reserved, bytes.
    pub torch_vram_total: u64,
    /// Reserved but unallocated, bytes.
    pub torch_vram_free: u64,
}

impl ComfyDevice {
    /// True for a GPU with its own memory; ComfyUI also lists "cpu" (and Apple's "mps", which
    /// shares system memory) with the same fields, which are then not VRAM at all.
    pub fn has_vram(&self) -> bool {
        !matches!(self.kind.as_str(), "cpu" | "mps")
    }

    /// "GPU cuda:0", "CPU (no VRAM)", …, for lists.
    pub fn describe_kind(&self) -> &'static str {
        match self.kind.as_str() {
            "cpu" => "runs on the CPU (no VRAM)",
            "mps" => "runs on Apple MPS (shared memory, no VRAM)",
            _ => "GPU",
        }
    }
}

/// `/system_stats`, the parts vramdeck shows.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SystemStats {
    /// Devices ComfyUI uses.
    pub devices: Vec<ComfyDevice>,
}

/// `/queue`, reduced to the ids of running and waiting prompts.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct QueueState {
    /// Prompts executing now.
    pub queue_running: Vec<QueueEntry>,
    /// Prompts waiting.
    pub queue_pending: Vec<QueueEntry>,
}

/// One queue entry: `[number, prompt_id, prompt, extra_data, outputs]`; only the id is kept.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueEntry(pub String);

impl<'de> Deserialize<'de> for QueueEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = QueueEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a ComfyUI queue entry [number, prompt_id, …]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<QueueEntry, A::Error> {
                let _number: serde::de::IgnoredAny = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                let id: String = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(1, &self))?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(QueueEntry(text::sanitized(&id)))
            }
        }
        d.deserialize_seq(Visitor)
    }
}

impl QueueState {
    /// Ids of the prompts running now.
    pub fn running(&self) -> Vec<String> {
        self.queue_running.iter().map(|e| e.0.clone()).collect()
    }
}

/// A ComfyUI instance on this machine: the loopback addresses its name resolved to, with the
/// usual ports when none was given. Resolved once, when made.
#[derive(Clone, Debug)]
pub struct ComfyUi {
    candidates: Vec<SocketAddr>,
    text: String,
    /// The candidate that answered last, tried first next time.
    answered: Arc<Mutex<Option<SocketAddr>>>,
}

impl PartialEq for ComfyUi {
    fn eq(&self, other: &Self) -> bool {
        self.candidates == other.candidates && self.text == other.text
    }
}

fn unusable(address: &str, reason: String) -> ReleaseError {
    ReleaseError::Connect {
        target: format!("ComfyUI at {address}"),
        reason,
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

impl ComfyUi {
    /// Parses "127.0.0.1:8188", "localhost", "[::1]:8000" or "http://localhost:8188/"; refuses
    /// anything that is not loopback. Without a port, ComfyUI's usual ports are tried.
    pub fn parse(address: &str) -> Result<Self, ReleaseError> {
        let trimmed = address.trim();
        if trimmed.starts_with("https://") {
            return Err(unusable(
                address,
                "https is not supported; ComfyUI on this machine speaks http".into(),
            ));
        }
        let trimmed = trimmed.trim_start_matches("http://").trim_end_matches('/');
        let (host, port) = split_host_port(trimmed).map_err(|e| unusable(address, e))?;
        let ips = resolve(&host).map_err(|e| unusable(address, e))?;
        if ips.iter().any(|ip| !ip.is_loopback()) {
            return Err(ReleaseError::NotLoopback(text::sanitized(address)));
        }
        let ports: Vec<u16> = match port {
            Some(p) => vec![p],
            None => USUAL_PORTS.to_vec(),
        };
        let candidates = ports
            .iter()
            .flat_map(|p| ips.iter().map(move |ip| SocketAddr::new(*ip, *p)))
            .collect();
        Ok(ComfyUi {
            candidates,
            text: text::sanitized(trimmed),
            answered: Arc::default(),
        })
    }

    /// The address as given.
    pub fn address(&self) -> &str {
        &self.text
    }

    /// Where it answered last ("127.0.0.1:8000"), else the address as given.
    pub fn found_at(&self) -> String {
        match *self.answered.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(a) => a.to_string(),
            None => self.text.clone(),
        }
    }

    /// The ports tried.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.candidates.iter().map(|a| a.port()).collect();
        ports.dedup();
        ports
    }

    /// True when ComfyUI answered on `port` last time (or `port` is the only one tried).
    pub fn is_on_port(&self, port: u16) -> bool {
        match *self.answered.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(a) => a.port() == port,
            None => self.ports() == [port],
        }
    }

    /// `GET /system_stats`.
    pub fn system_stats(&self, timeout: Duration) -> Result<SystemStats, ReleaseError> {
        let body = self.request("GET", "/system_stats", None, timeout, MAX_STATS_BYTES)?;
        serde_json::from_slice(&body).map_err(|e| ReleaseError::Malformed {
            target: self.target(),
            reason: format!("system_stats is not the expected JSON ({e})"),
        })
    }

    /// `GET /queue`: which prompts run and wait.
    pub fn queue(&self, timeout: Duration) -> Result<QueueState, ReleaseError> {
        let body = self.request("GET", "/queue", None, timeout, MAX_QUEUE_BYTES)?;
        serde_json::from_slice(&body).map_err(|e| ReleaseError::Malformed {
            target: self.target(),
            reason: format!("queue is not the expected JSON ({e})"),
        })
    }

    /// `POST /free {"unload_models": true}`: ComfyUI unloads its models between prompts (after
    /// the running one). Its node cache stays (that would take `free_memory`, which also
    /// unloads: there is no cache-only release over HTTP).
    pub fn unload_models(&self, timeout: Duration) -> Result<(), ReleaseError> {
        self.request(
            "POST",
            "/free",
            Some(r#"{"unload_models": true}"#),
            timeout,
            MAX_STATS_BYTES,
        )
        .map(|_| ())
    }

    fn target(&self) -> String {
        format!("ComfyUI at {}", self.found_at())
    }

    /// Connects to the first candidate that accepts, answered-last first, within `deadline`.
    fn connect(&self, deadline: Instant) -> Result<TcpStream, ReleaseError> {
        let mut order = self.candidates.clone();
        if let Some(last) = *self.answered.lock().unwrap_or_else(|p| p.into_inner()) {
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
                    self.check_owner(&stream, address)?;
                    *self.answered.lock().unwrap_or_else(|p| p.into_inner()) = Some(address);
                    return Ok(stream);
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => break,
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => refused = true,
                // e.g. IPv6 switched off: that candidate is simply not there.
                Err(e) => other = Some(e),
            }
        }
        Err(if refused {
            ReleaseError::Connect {
                target: format!("ComfyUI at {}", self.text),
                reason: format!(
                    "nothing listens there (is ComfyUI running? tried port {})",
                    self.ports()
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(" and ")
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

    /// Refuses a listener that belongs to another user (a squatter on ComfyUI's port).
    fn check_owner(&self, stream: &TcpStream, server: SocketAddr) -> Result<(), ReleaseError> {
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

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ReleaseError> {
        let deadline = Instant::now() + timeout;
        let timed_out = || ReleaseError::Timeout {
            target: self.target(),
            seconds: timeout.as_secs_f64(),
        };
        let mut stream = self.connect(deadline).map_err(|e| match e {
            ReleaseError::Timeout { .. } => timed_out(),
            e => e,
        })?;
        let io_error = |e: std::io::Error| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(),
            _ => ReleaseError::Connect {
                target: self.target(),
                reason: e.to_string(),
            },
        };
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vramdeck/{}\r\nAccept: application/json\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.found_at(),
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        stream.set_write_timeout(Some(left)).map_err(io_error)?;
        stream.write_all(head.as_bytes()).map_err(io_error)?;
        let mut response = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            // Each read may wait only for what is left of the whole exchange's time.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            stream.set_read_timeout(Some(left)).map_err(io_error)?;
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    response.extend_from_slice(&chunk[..n]);
                    if response.len() as u64 > max_bytes {
                        return Err(ReleaseError::Malformed {
                            target: self.target(),
                            reason: format!("response larger than {max_bytes} bytes"),
                        });
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        parse_response(&response).map_err(|reason| ReleaseError::Malformed {
            target: self.target(),
            reason,
        })
    }
}

/// Splits an HTTP/1.1 response, checks for 2xx, undoes chunked encoding; returns the body.
pub fn parse_response(raw: &[u8]) -> Result<Vec<u8>, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP header end")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "HTTP header is not text")?;
    let body = &raw[split + 4..];
    let status_line = head.lines().next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {:?}", text::sanitize(status_line)))?;
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {:?}", text::sanitize(size_text)))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size.saturating_add(2)..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(ComfyUi::parse("127.0.0.1:8188").is_ok());
        assert!(ComfyUi::parse("http://127.0.0.1:8188/").is_ok());
        assert!(ComfyUi::parse("[::1]:8188").is_ok());
        assert!(ComfyUi::parse("::1").is_ok());
        assert_eq!(
            ComfyUi::parse("10.0.0.5:8188"),
            Err(ReleaseError::NotLoopback("10.0.0.5:8188".into()))
        );
        assert!(ComfyUi::parse("127.0.0.1:notaport").is_err());
        assert!(ComfyUi::parse("https://127.0.0.1:8188").is_err());
    }

    #[test]
    fn localhost_means_both_loopbacks_and_no_port_means_the_usual_ones() {
        let c = ComfyUi::parse("localhost").unwrap();
        let expected: Vec<SocketAddr> = [
            "127.0.0.1:8188",
            "[::1]:8188",
            "127.0.0.1:8000",
            "[::1]:8000",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        assert_eq!(c.candidates, expected);
        let c = ComfyUi::parse("localhost:9000").unwrap();
        assert_eq!(c.ports(), vec![9000]);
        assert_eq!(c.candidates.len(), 2);
    }

    #[test]
    fn responses_are_parsed_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).unwrap(), b"{}");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), b"{\"a\":1}");
        assert_eq!(
            parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap_err(),
            "HTTP 404"
        );
        assert!(parse_response(b"garbage").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn system_stats_shape_from_comfyui_decodes() {
        let json = br#"{"system":{"os":"posix","python_version":"3.11"},"devices":[{"name":"cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync","type":"cuda","index":0,"vram_total":85520809984,"vram_free":84000000000,"torch_vram_total":0,"torch_vram_free":0}]}"#;
        let stats: SystemStats = serde_json::from_slice(json).unwrap();
        assert_eq!(stats.devices[0].index, Some(0));
        assert_eq!(stats.devices[0].vram_total, 85_520_809_984);
        assert!(stats.devices[0].has_vram());
        // A CPU ComfyUI (--cpu) reports system RAM in the same fields.
        let cpu = br#"{"devices":[{"name":"cpu","type":"cpu","index":null,"vram_total":33000000000,"vram_free":1,"torch_vram_total":33000000000,"torch_vram_free":1}]}"#;
        let stats: SystemStats = serde_json::from_slice(cpu).unwrap();
        assert!(!stats.devices[0].has_vram());
    }

    #[test]
    fn queue_entries_keep_only_their_prompt_id() {
        let json = br#"{"queue_running":[[3,"abc-123",{"1":{"class_type":"KSampler"}},{"client_id":"x"},["9"]]],"queue_pending":[[4,"def",{},{},[]]]}"#;
        let q: QueueState = serde_json::from_slice(json).unwrap();
        assert_eq!(q.running(), vec!["abc-123".to_string()]);
        assert_eq!(q.queue_pending.len(), 1);
        assert!(serde_json::from_slice::<QueueState>(br#"{"queue_running":[[1]]}"#).is_err());
    }
}
