//! Ollama on this machine, through its own HTTP API (no agent inside it): `GET /api/ps` lists
//! the loaded models with their size and the part of it in VRAM; `POST /api/generate` with an
//! empty prompt and `keep_alive: 0` unloads one (answer `done_reason: "unload"`). Formats from
//! Ollama's `api/types.go` (ProcessModelResponse, GenerateResponse) and `server/routes.go`
//! (the unload branch of GenerateHandler), v0.3 to v0.12.
//!
//! Ollama never cuts a running request for an unload: its scheduler marks the runner expired
//! and drops it when its last request ends (`expireRunner`: only with no references left).
//! So a model still listed after the unload is in use, and its release is followed.

use super::{APP_TIMEOUT, Engine, EngineKind, EngineStatus, Freed, Waiting, shown_name};
use crate::release::local_http::LocalService;
use crate::release::{FreeLevel, ReleaseError};
use serde::Deserialize;
use std::time::Duration;

/// Ollama's port.
pub const USUAL_PORTS: [u16; 1] = [11434];
/// Largest `/api/ps` answer read: a model entry is a few hundred bytes.
const MAX_PS_BYTES: u64 = 256 << 10;
/// Largest answer to an unload.
const MAX_UNLOAD_BYTES: u64 = 16 << 10;

/// One loaded model, as `/api/ps` lists it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LoadedModel {
    /// "llama3.1:8b", as Ollama wrote it: never shown without [`LoadedModel::shown`].
    pub name: String,
    /// Bytes it takes in all.
    pub size: u64,
    /// Bytes of it in VRAM (the rest is in host memory).
    pub size_vram: u64,
    /// When Ollama drops it if idle (RFC 3339), as Ollama wrote it.
    pub expires_at: String,
}

impl LoadedModel {
    /// Its name for the screen (see [`shown_name`]).
    pub fn shown(&self) -> String {
        shown_name(&self.name)
    }

    /// Bytes of it in host memory.
    pub fn size_host(&self) -> u64 {
        self.size.saturating_sub(self.size_vram)
    }
}

#[derive(Deserialize)]
struct PsBody {
    #[serde(default)]
    models: Vec<LoadedModel>,
}

#[derive(Deserialize)]
struct GenerateBody {
    #[serde(default)]
    done_reason: String,
}

/// An Ollama server on this machine (see [`LocalService`]).
#[derive(Debug)]
pub struct Ollama {
    service: LocalService,
}

impl Ollama {
    /// Ollama at `service`.
    pub fn new(service: LocalService) -> Self {
        Ollama { service }
    }

    /// The models loaded now.
    pub fn loaded(&self, timeout: Duration) -> Result<Vec<LoadedModel>, ReleaseError> {
        let answer = self.service.get("/api/ps", timeout, MAX_PS_BYTES);
        let body = super::recognised(&self.service, "/api/ps", answer)?;
        let mut ps: PsBody = super::decode(&self.service, "/api/ps", &body)?;
        ps.models.truncate(super::MAX_MODELS);
        for m in &mut ps.models {
            // The name stays as Ollama wrote it (it is sent back to unload the model); only
            // its length is bounded, and `shown` cleans it for the screen.
            if m.name.len() > super::MAX_NAME_BYTES {
                m.name.clear(); // longer than any model name: not one to ask about
            }
            m.expires_at = crate::text::sanitized(&m.expires_at)
                .chars()
                .take(64)
                .collect();
        }
        Ok(ps.models)
    }

    /// Asks Ollama to unload `model` (now, or when its running request ends).
    pub fn unload(&self, model: &str, timeout: Duration) -> Result<(), ReleaseError> {
        let body = serde_json::json!({ "model": model, "keep_alive": 0 }).to_string();
        let answer = self
            .service
            .post_json("/api/generate", &body, timeout, MAX_UNLOAD_BYTES)?;
        let reply: GenerateBody =
            serde_json::from_slice(&answer).map_err(|e| ReleaseError::Malformed {
                target: self.service.target(),
                reason: format!("the unload answer is not Ollama's JSON ({e})"),
            })?;
        if reply.done_reason != "unload" {
            return Err(ReleaseError::Refused {
                target: self.service.target(),
                message: format!(
                    "asked to unload {model}, it answered done_reason {:?}",
                    crate::text::sanitized(&reply.done_reason)
                ),
            });
        }
        Ok(())
    }
}

impl Engine for Ollama {
    fn kind(&self) -> EngineKind {
        EngineKind::Ollama
    }

    fn service(&self) -> &LocalService {
        &self.service
    }

    fn status(&self) -> Result<EngineStatus, ReleaseError> {
        let mut status = EngineStatus::new(EngineKind::Ollama, self.service.target());
        status.holds = self
            .loaded(APP_TIMEOUT)?
            .into_iter()
            .map(|m| super::holding(&m.name, m.size_vram, m.size_host()))
            .collect();
        Ok(status)
    }

    /// Unloads every model; Ollama drops one in use when its request ends (followed), never
    /// cutting it.
    fn free_idle(&self, _level: FreeLevel, status: &EngineStatus) -> Result<Freed, ReleaseError> {
        for h in status.holds.iter().filter(|h| !h.id.is_empty()) {
            self.unload(&h.id, APP_TIMEOUT)?;
        }
        let now = self.loaded(APP_TIMEOUT)?;
        let still: Vec<String> = status
            .holds
            .iter()
            .filter(|h| now.iter().any(|m| m.name == h.id))
            .map(|h| h.id.clone())
            .collect();
        let gone = status
            .holds
            .iter()
            .filter(|h| !still.contains(&h.id))
            .fold(0u64, |sum, h| sum.saturating_add(h.vram));
        let notes = status
            .holds
            .is_empty()
            .then(|| crate::t!("app-nothing-loaded"))
            .into_iter()
            .collect();
        let mut freed = Freed::gave(Some(gone), notes);
        if !still.is_empty() {
            let models = still.iter().map(|n| shown_name(n)).collect::<Vec<_>>();
            freed.later = Some((
                crate::t!("ollama-after-request", models = models.join(", ")),
                Waiting::Leave(still),
            ));
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_as_ollama_writes_it_decodes_and_splits_vram_from_host_memory() {
        let json = br#"{"models":[{"name":"llama3.1:8b","model":"llama3.1:8b","size":6654289920,"digest":"42182419e950","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"8.0B","quantization_level":"Q4_K_M"},"expires_at":"2026-12-01T10:05:00.123456789Z","size_vram":5234289920,"context_length":4096}]}"#;
        let ps: PsBody = serde_json::from_slice(json).unwrap();
        assert_eq!(ps.models[0].name, "llama3.1:8b");
        assert_eq!(ps.models[0].size_vram, 5_234_289_920);
        assert_eq!(ps.models[0].size_host(), 1_420_000_000);
        // Nothing loaded: an empty list (Ollama writes `[]`).
        let empty: PsBody = serde_json::from_slice(br#"{"models":[]}"#).unwrap();
        assert!(empty.models.is_empty());
    }

    #[test]
    fn only_loopback_addresses_are_taken() {
        assert!(EngineKind::Ollama.open("localhost").is_ok());
        assert!(EngineKind::Ollama.open("127.0.0.1:11434").is_ok());
        assert!(EngineKind::Ollama.open("10.0.0.7:11434").is_err());
    }
}
