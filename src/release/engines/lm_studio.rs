//! LM Studio's local server (default port 1234), through its REST API as its documentation
//! gives it (lmstudio.ai/docs/developer/rest: `GET /api/v1/models` lists each model with its
//! `loaded_instances` `[{"id", "config"}]`; `POST /api/v1/models/unload {"instance_id"}`
//! unloads one instance). LM Studio before 0.4 has only `/api/v0/models` (`state: "loaded"`),
//! with no unload route: vramdeck shows what it holds and says how to free it.
//!
//! The REST API does not say whether a model is answering a request, so LM Studio is never
//! unloaded to make room for another app; only when the user frees LM Studio itself.

use super::{EngineKind, EngineStatus, Freed, Holding, get_json, holding};
use crate::release::local_http::LocalService;
use crate::release::{FreeLevel, ReleaseError};
use serde::Deserialize;

/// LM Studio's port.
pub const USUAL_PORTS: [u16; 1] = [1234];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Instance {
    id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Model {
    key: String,
    display_name: String,
    size_bytes: u64,
    loaded_instances: Vec<Instance>,
}

#[derive(Debug, Deserialize)]
struct Models {
    models: Vec<Model>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OldModel {
    id: String,
    state: String,
}

#[derive(Debug, Deserialize)]
struct OldModels {
    data: Vec<OldModel>,
}

/// LM Studio on this machine.
#[derive(Debug)]
pub struct LmStudio {
    service: LocalService,
}

impl LmStudio {
    /// LM Studio at `service`.
    pub fn new(service: LocalService) -> Self {
        LmStudio { service }
    }
}

impl super::Engine for LmStudio {
    fn kind(&self) -> EngineKind {
        EngineKind::LmStudio
    }

    fn service(&self) -> &LocalService {
        &self.service
    }

    fn status(&self) -> Result<EngineStatus, ReleaseError> {
        let mut status = EngineStatus::new(EngineKind::LmStudio, self.service.target());
        status.busy_unknown = true;
        match get_json::<Models>(&self.service, "/api/v1/models") {
            Ok(mut models) => {
                models.models.truncate(super::MAX_MODELS);
                for m in &models.models {
                    for i in m.loaded_instances.iter().take(super::MAX_MODELS) {
                        let name = if m.display_name.is_empty() {
                            &m.key
                        } else {
                            &m.display_name
                        };
                        status.holds.push(Holding {
                            what: super::shown_name(&format!("{name} [{}]", i.id)),
                            // The model's size on disk: close to what a full offload holds.
                            ..holding(&i.id, m.size_bytes, 0)
                        });
                    }
                }
            }
            Err(ReleaseError::Unrecognised { .. }) => {
                let mut old: OldModels = get_json(&self.service, "/api/v0/models")?;
                old.data.truncate(super::MAX_MODELS);
                status.holds = old
                    .data
                    .iter()
                    .filter(|m| m.state == "loaded")
                    .map(|m| holding(&m.id, 0, 0))
                    .collect();
                status.note = Some(crate::t!("engine-lmstudio-old"));
            }
            Err(e) => return Err(e),
        }
        Ok(status)
    }

    fn free_idle(&self, _level: FreeLevel, status: &EngineStatus) -> Result<Freed, ReleaseError> {
        let mut gone = 0u64;
        for h in status.holds.iter().filter(|h| !h.id.is_empty()) {
            let body = serde_json::json!({ "instance_id": h.id }).to_string();
            super::post_json::<serde_json::Value>(&self.service, "/api/v1/models/unload", &body)?;
            gone = gone.saturating_add(h.vram);
        }
        let notes = status
            .holds
            .is_empty()
            .then(|| crate::t!("app-nothing-loaded"))
            .into_iter()
            .collect();
        Ok(Freed::gave(Some(gone), notes))
    }
}
