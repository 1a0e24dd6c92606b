//! ComfyUI's own HTTP API, on loopback only: `POST /free` and `GET /system_stats`.
//!
//! Route shapes as in ComfyUI's `server.py`: `/free` takes `{"unload_models": bool,
//! "free_memory": bool}`, sets flags on the prompt queue and answers 200 with an empty body (the
//! prompt worker unloads shortly after, so the effect is measured afterwards); `/system_stats`
//! answers `{"system": {...}, "devices": [{"name", "type", "index", "vram_total", "vram_free",
//! "torch_vram_total", "torch_vram_free"}]}`.

use super::ReleaseError;
use serde::Deserialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Default address of a local ComfyUI.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8188";
/// Largest response read (system_stats is a few hundred bytes).
const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// One device in `/system_stats`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ComfyDevice {
    /// Device name as torch reports it.
    pub name: String,
    /// "cuda", "cpu", …
    #[serde(rename = "type")]
    pub kind: String,
    /// Device index.
    pub index: Option<u32>,
    /// Total VRAM, bytes.
    pub vram_total: u64,
    /// Free VRAM, bytes.
    pub vram_free: u64,
    /// Memory torch has reserved, bytes.
    pub torch_vram_total: u64,
    /// Reserved but unallocated, bytes.
    pub torch_vram_free: u64,
}

/// `/system_stats`, the parts vramdeck shows.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SystemStats {
    /// Devices ComfyUI uses.
    pub devices: Vec<ComfyDevice>,
}

/// A ComfyUI instance on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComfyUi {
    address: SocketAddr,
    text: String,
}

impl ComfyUi {
    /// Parses "127.0.0.1:8188", "localhost:8188" or "http://127.0.0.1:8188/"; refuses anything
    /// that does not resolve to loopback.
    pub fn parse(address: &str) -> Result<Self, ReleaseError> {
        let trimmed = address
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let resolved: Vec<SocketAddr> = trimmed
            .to_socket_addrs()
            .map_err(|e| ReleaseError::Connect {
                target: format!("ComfyUI at {address}"),
                reason: format!("not an address ({e})"),
            })?
            .collect();
        let loopback = resolved
            .iter()
            .find(|a| a.ip().is_loopback())
            .copied()
            .ok_or_else(|| ReleaseError::NotLoopback(address.to_string()))?;
        if resolved.iter().any(|a| !a.ip().is_loopback()) {
            return Err(ReleaseError::NotLoopback(address.to_string()));
        }
        Ok(ComfyUi {
            address: loopback,
            text: trimmed.to_string(),
        })
    }

    /// The address as given.
    pub fn address(&self) -> &str {
        &self.text
    }

    /// `GET /system_stats`.
    pub fn system_stats(&self, timeout: Duration) -> Result<SystemStats, ReleaseError> {
        let body = self.request("GET", "/system_stats", None, timeout)?;
        serde_json::from_slice(&body).map_err(|e| ReleaseError::Malformed {
            target: self.target(),
            reason: format!("system_stats is not the expected JSON ({e})"),
        })
    }

    /// `POST /free`: releases cached memory, and unloads models when `unload_models`.
    pub fn free(&self, unload_models: bool, timeout: Duration) -> Result<(), ReleaseError> {
        let body = format!(r#"{{"unload_models": {unload_models}, "free_memory": true}}"#);
        self.request("POST", "/free", Some(&body), timeout)
            .map(|_| ())
    }

    fn target(&self) -> String {
        format!("ComfyUI at {}", self.text)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ReleaseError> {
        let io_error = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ReleaseError::Timeout {
                    target: self.target(),
                    seconds: timeout.as_secs_f64(),
                }
            }
            std::io::ErrorKind::ConnectionRefused => ReleaseError::Connect {
                target: self.target(),
                reason: "nothing listens there (is ComfyUI running?)".into(),
            },
            _ => ReleaseError::Connect {
                target: self.target(),
                reason: e.to_string(),
            },
        };
        let mut stream = TcpStream::connect_timeout(&self.address, timeout).map_err(io_error)?;
        stream.set_read_timeout(Some(timeout)).map_err(io_error)?;
        stream.set_write_timeout(Some(timeout)).map_err(io_error)?;
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vramdeck/{}\r\nAccept: application/json\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.text,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        stream.write_all(head.as_bytes()).map_err(io_error)?;
        stream.write_all(body.as_bytes()).map_err(io_error)?;
        let mut response = Vec::new();
        stream
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut response)
            .map_err(io_error)?;
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
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
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
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
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
        assert_eq!(
            ComfyUi::parse("10.0.0.5:8188"),
            Err(ReleaseError::NotLoopback("10.0.0.5:8188".into()))
        );
        assert!(ComfyUi::parse("no port").is_err());
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
    }
}
