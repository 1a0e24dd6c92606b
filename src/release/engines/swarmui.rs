//! SwarmUI (default port 7801). From its source: `src/WebAPI/BasicAPIFeatures.cs`
//! (`POST /API/GetNewSession {}` → `{"session_id"}`; `POST /API/GetCurrentStatus
//! {"session_id"}` → `{"status": {"waiting_gens", "loading_models", "waiting_backends",
//! "live_gens"}}`) and `src/WebAPI/BackendAPI.cs` (`POST /API/FreeBackendMemory {"session_id",
//! "system_ram": false, "backend": "all"}` → `{"result": bool, "count": n}`: each running
//! backend frees its VRAM; a ComfyUI backend does it between prompts). Freed only while no
//! generation is live or waiting.

use super::{EngineKind, EngineStatus, Freed, post_json};
use crate::release::local_http::LocalService;
use crate::release::{FreeLevel, ReleaseError};
use serde::Deserialize;

/// SwarmUI's port.
pub const USUAL_PORTS: [u16; 1] = [7801];

#[derive(Debug, Deserialize)]
struct Session {
    session_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Gens {
    waiting_gens: u64,
    live_gens: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Current {
    status: Gens,
    /// SwarmUI answers a refused call with 200 and an error id.
    error_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FreedBody {
    result: bool,
    count: u64,
    error_id: Option<String>,
}

/// SwarmUI on this machine.
#[derive(Debug)]
pub struct SwarmUi {
    service: LocalService,
}

impl SwarmUi {
    /// SwarmUI at `service`.
    pub fn new(service: LocalService) -> Self {
        SwarmUi { service }
    }

    fn session(&self) -> Result<String, ReleaseError> {
        let s: Session = post_json(&self.service, "/API/GetNewSession", "{}")?;
        Ok(s.session_id.chars().take(256).collect())
    }
}

impl super::Engine for SwarmUi {
    fn kind(&self) -> EngineKind {
        EngineKind::SwarmUi
    }

    fn service(&self) -> &LocalService {
        &self.service
    }

    fn status(&self) -> Result<EngineStatus, ReleaseError> {
        let session = self.session()?;
        let body = serde_json::json!({ "session_id": session }).to_string();
        let current: Current = post_json(&self.service, "/API/GetCurrentStatus", &body)?;
        if let Some(id) = current.error_id {
            return Err(ReleaseError::Refused {
                target: self.service.target(),
                message: crate::text::sanitized(&id).chars().take(80).collect(),
            });
        }
        let mut status = EngineStatus::new(EngineKind::SwarmUi, self.service.target());
        let n = current
            .status
            .live_gens
            .saturating_add(current.status.waiting_gens);
        status.busy = (n > 0).then(|| crate::t!("engine-jobs", count = n, n = n.to_string()));
        Ok(status)
    }

    fn free_idle(&self, _level: FreeLevel, _status: &EngineStatus) -> Result<Freed, ReleaseError> {
        let session = self.session()?;
        let body = serde_json::json!({
            "session_id": session, "system_ram": false, "backend": "all"
        })
        .to_string();
        let freed: FreedBody = post_json(&self.service, "/API/FreeBackendMemory", &body)?;
        if let Some(id) = freed.error_id {
            return Err(ReleaseError::Refused {
                target: self.service.target(),
                message: crate::text::sanitized(&id).chars().take(80).collect(),
            });
        }
        let note = if freed.result {
            crate::t!(
                "engine-swarm-freed",
                count = freed.count,
                n = freed.count.to_string()
            )
        } else {
            crate::t!("engine-swarm-none")
        };
        Ok(Freed::gave(None, vec![note]))
    }
}
