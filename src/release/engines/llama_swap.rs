//! llama-swap, a proxy that starts a model server per model (default port 8080). Routes from
//! its `proxy/proxymanager.go` (`GET /running` → `{"running": [{"model", "state", …}]}`, and
//! `/upstream/<model>/…` passed to that model's server) and `proxy/proxymanager_api.go`
//! (`POST /api/models/unload/<model>` stops one model's server at once).
//!
//! Stopping a server ends a generation in progress, so a model is stopped only while its
//! server (a llama-server, read through `/upstream/<model>/slots`) has no slot at work; for
//! an upstream that does not say, llama-swap is left alone when making room.

use super::{EngineKind, EngineStatus, Freed, encode_component, get_json, holding};
use crate::release::local_http::LocalService;
use crate::release::{FreeLevel, ReleaseError};
use serde::Deserialize;

/// llama-swap's port.
pub const USUAL_PORTS: [u16; 1] = [8080];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Running {
    model: String,
    state: String,
}

#[derive(Debug, Deserialize)]
struct RunningBody {
    running: Vec<Running>,
}

/// llama-swap on this machine.
#[derive(Debug)]
pub struct LlamaSwap {
    service: LocalService,
}

impl LlamaSwap {
    /// llama-swap at `service`.
    pub fn new(service: LocalService) -> Self {
        LlamaSwap { service }
    }
}

impl super::Engine for LlamaSwap {
    fn kind(&self) -> EngineKind {
        EngineKind::LlamaSwap
    }

    fn service(&self) -> &LocalService {
        &self.service
    }

    fn status(&self) -> Result<EngineStatus, ReleaseError> {
        let mut body: RunningBody = get_json(&self.service, "/running")?;
        body.running.truncate(super::MAX_MODELS);
        let mut status = EngineStatus::new(EngineKind::LlamaSwap, self.service.target());
        let mut at_work = 0usize;
        for r in &body.running {
            // Only a model whose server is up is asked (asking a stopped one would start it).
            if r.state == "ready" {
                let route = format!("/upstream/{}/slots", encode_component(&r.model));
                match get_json::<Vec<serde_json::Value>>(&self.service, &route) {
                    Ok(slots) => at_work += super::slots_processing(&slots),
                    Err(_) => status.busy_unknown = true,
                }
            }
            status.holds.push(holding(&r.model, 0, 0));
        }
        status.busy = (at_work > 0)
            .then(|| crate::t!("engine-requests", count = at_work, n = at_work.to_string()));
        Ok(status)
    }

    fn free_idle(&self, _level: FreeLevel, status: &EngineStatus) -> Result<Freed, ReleaseError> {
        let mut stopped = Vec::new();
        for h in status.holds.iter().filter(|h| !h.id.is_empty()) {
            let route = format!("/api/models/unload/{}", encode_component(&h.id));
            let answer =
                self.service
                    .post_json(&route, "{}", super::APP_TIMEOUT, super::MAX_STATUS_BYTES);
            super::recognised(&self.service, &route, answer)?;
            stopped.push(h.what.clone());
        }
        let note = if stopped.is_empty() {
            crate::t!("app-nothing-loaded")
        } else {
            crate::t!("engine-stopped", models = stopped.join(", "))
        };
        Ok(Freed::gave(None, vec![note]))
    }
}
