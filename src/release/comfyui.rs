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
//! ComfyUI 2026 (read in its source) adds `system.comfy_package_versions`, `system.argv` and
//! `system.pytorch_version` to `/system_stats`: enough to tell whether Dynamic VRAM
//! (comfy-aimdo) is on. The exchanges go through [`super::local_http`].

use super::ReleaseError;
use super::local_http::LocalService;
use crate::text;
use serde::Deserialize;
use std::time::Duration;

/// Default address of a local ComfyUI: the usual ports on this machine's loopback.
pub const DEFAULT_ADDRESS: &str = "localhost";
/// Ports tried when the address names none: ComfyUI's own, then ComfyUI Desktop's.
pub const USUAL_PORTS: [u16; 2] = [8188, 8000];
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
    pub fn describe_kind(&self) -> String {
        match self.kind.as_str() {
            "cpu" => crate::t!("comfy-kind-cpu"),
            "mps" => crate::t!("comfy-kind-mps"),
            _ => "GPU".into(),
        }
    }
}

/// `/system_stats`, the parts vramdeck shows.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SystemStats {
    /// Devices ComfyUI uses.
    pub devices: Vec<ComfyDevice>,
    /// About ComfyUI itself.
    pub system: SystemInfo,
}

/// `/system_stats`' `system` object, the parts that say how ComfyUI manages memory.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SystemInfo {
    /// ComfyUI's version ("0.3.64").
    #[serde(deserialize_with = "text::safe_string")]
    pub comfyui_version: String,
    /// PyTorch's version ("2.8.0+cu128").
    #[serde(deserialize_with = "text::safe_string")]
    pub pytorch_version: String,
    /// ComfyUI's command line.
    #[serde(deserialize_with = "text::safe_strings")]
    pub argv: Vec<String>,
    /// Versions of the comfy* packages (ComfyUI 2026; `None` before).
    pub comfy_package_versions: Option<Vec<ComfyPackage>>,
}

/// One comfy* package and its installed version.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ComfyPackage {
    /// "comfy-aimdo", "comfy-kitchen", …
    #[serde(deserialize_with = "text::safe_string")]
    pub name: String,
    /// Installed version, `None` when missing.
    #[serde(deserialize_with = "text::safe_opt_string")]
    pub installed: Option<String>,
}

/// Arguments that turn Dynamic VRAM off (ComfyUI's `enables_dynamic_vram()`).
const DYNAMIC_VRAM_OFF: [&str; 5] = [
    "--disable-dynamic-vram",
    "--highvram",
    "--novram",
    "--gpu-only",
    "--cpu",
];

impl SystemStats {
    /// Whether ComfyUI runs with Dynamic VRAM (comfy-aimdo keeping idle models' weights in its
    /// own VRAM buffer): on by default for NVIDIA with PyTorch 2.8 or later and comfy-aimdo
    /// installed, unless an argument turns it off. `None` when this ComfyUI does not say
    /// (before 2026 it had no Dynamic VRAM).
    pub fn dynamic_vram(&self) -> Option<bool> {
        let packages = self.system.comfy_package_versions.as_ref()?;
        let aimdo = packages
            .iter()
            .any(|p| p.name == "comfy-aimdo" && p.installed.is_some());
        let off = self
            .system
            .argv
            .iter()
            .any(|a| DYNAMIC_VRAM_OFF.contains(&a.as_str()));
        let torch = {
            let mut n = self
                .system
                .pytorch_version
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|x| x.parse::<u32>().ok());
            (n.next().unwrap_or(0), n.next().unwrap_or(0))
        };
        let cuda = self.devices.iter().any(|d| d.kind == "cuda");
        Some(aimdo && !off && cuda && torch >= (2, 8))
    }
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

/// A ComfyUI instance on this machine (see [`LocalService`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ComfyUi {
    service: LocalService,
}

impl ComfyUi {
    /// Parses "127.0.0.1:8188", "localhost", "[::1]:8000" or "http://localhost:8188/"; refuses
    /// anything that is not loopback. Without a port, ComfyUI's usual ports are tried.
    pub fn parse(address: &str) -> Result<Self, ReleaseError> {
        Ok(ComfyUi {
            service: LocalService::parse("ComfyUI", address, &USUAL_PORTS)?,
        })
    }

    /// The address as given.
    pub fn address(&self) -> &str {
        self.service.address()
    }

    /// Where it answered last ("127.0.0.1:8000"), else the address as given.
    pub fn found_at(&self) -> String {
        self.service.found_at()
    }

    /// The ports tried.
    pub fn ports(&self) -> Vec<u16> {
        self.service.ports()
    }

    /// The process listening where ComfyUI answered last, when the system says.
    pub fn listener_pid(&self) -> Option<u32> {
        self.service.listener_pid()
    }

    /// True when this ComfyUI may be the one listening on `port` (where an agent says its
    /// ComfyUI listens): it answered there, or it has not answered yet and `port` is tried.
    pub fn may_be_on_port(&self, port: u16) -> bool {
        self.service.may_be_on_port(port)
    }

    /// Finds which address answers (a connection, no request), within `timeout`.
    pub fn locate(&self, timeout: Duration) -> Result<(), ReleaseError> {
        self.service
            .locate(std::time::Instant::now() + timeout)
            .map(|_| ())
    }

    /// `GET /system_stats`.
    pub fn system_stats(&self, timeout: Duration) -> Result<SystemStats, ReleaseError> {
        let body = self
            .service
            .get("/system_stats", timeout, MAX_STATS_BYTES)?;
        serde_json::from_slice(&body).map_err(|e| ReleaseError::Malformed {
            target: self.service.target(),
            reason: format!("system_stats is not the expected JSON ({e})"),
        })
    }

    /// `GET /queue`: which prompts run and wait.
    pub fn queue(&self, timeout: Duration) -> Result<QueueState, ReleaseError> {
        let body = self.service.get("/queue", timeout, MAX_QUEUE_BYTES)?;
        serde_json::from_slice(&body).map_err(|e| ReleaseError::Malformed {
            target: self.service.target(),
            reason: format!("queue is not the expected JSON ({e})"),
        })
    }

    /// `POST /free {"unload_models": true}`: ComfyUI unloads its models between prompts (after
    /// the running one). Its node cache stays (that would take `free_memory`, which also
    /// unloads: there is no cache-only release over HTTP).
    pub fn unload_models(&self, timeout: Duration) -> Result<(), ReleaseError> {
        self.service
            .post_json(
                "/free",
                r#"{"unload_models": true}"#,
                timeout,
                MAX_STATS_BYTES,
            )
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
