//! InvokeAI (default port 9090). From its source: `invokeai/app/api/routers/app_info.py`
//! (`GET /api/v1/app/version` → `{"version"}`), `session_queue.py` (`GET
//! /api/v1/queue/default/status` → `{"queue": {"in_progress", "pending", …}}`) and
//! `model_manager.py` (`GET /api/v2/models/stats` → `{"loaded_model_sizes": {name: bytes}}` or
//! null; `POST /api/v2/models/empty_model_cache` drops every cached model, which loads again
//! when a job needs it). Emptied only while no queue item is in progress.

use super::{EngineKind, EngineStatus, Freed, get_json, holding};
use crate::release::local_http::LocalService;
use crate::release::{FreeLevel, ReleaseError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// InvokeAI's port.
pub const USUAL_PORTS: [u16; 1] = [9090];

#[derive(Debug, Deserialize)]
struct Version {
    #[allow(dead_code)]
    version: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Queue {
    in_progress: u64,
}

#[derive(Debug, Deserialize)]
struct QueueStatus {
    queue: Queue,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Stats {
    loaded_model_sizes: BTreeMap<String, u64>,
}

/// InvokeAI on this machine.
#[derive(Debug)]
pub struct InvokeAi {
    service: LocalService,
}

impl InvokeAi {
    /// InvokeAI at `service`.
    pub fn new(service: LocalService) -> Self {
        InvokeAi { service }
    }
}

impl super::Engine for InvokeAi {
    fn kind(&self) -> EngineKind {
        EngineKind::InvokeAi
    }

    fn service(&self) -> &LocalService {
        &self.service
    }

    fn status(&self) -> Result<EngineStatus, ReleaseError> {
        get_json::<Version>(&self.service, "/api/v1/app/version")?;
        let mut status = EngineStatus::new(EngineKind::InvokeAi, self.service.target());
        let queue: QueueStatus = get_json(&self.service, "/api/v1/queue/default/status")?;
        let n = queue.queue.in_progress;
        status.busy = (n > 0).then(|| crate::t!("engine-jobs", count = n, n = n.to_string()));
        // null before the first model loads.
        let stats: Option<Stats> = get_json(&self.service, "/api/v2/models/stats").unwrap_or(None);
        status.holds = stats
            .unwrap_or_default()
            .loaded_model_sizes
            .iter()
            .take(super::MAX_MODELS)
            .map(|(name, size)| holding(name, *size, 0))
            .collect();
        Ok(status)
    }

    fn free_idle(&self, _level: FreeLevel, status: &EngineStatus) -> Result<Freed, ReleaseError> {
        let answer = self.service.post_json(
            "/api/v2/models/empty_model_cache",
            "",
            super::APP_TIMEOUT * 4,
            1 << 16,
        );
        super::recognised(&self.service, "/api/v2/models/empty_model_cache", answer)?;
        Ok(Freed::gave(
            Some(status.vram()).filter(|b| *b > 0),
            vec![crate::t!("engine-invokeai-emptied")],
        ))
    }
}
