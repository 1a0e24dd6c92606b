//! SGLang's server (default port 30000). From `python/sglang/srt/entrypoints/http_server.py`:
//! `GET /server_info` (older: `/get_server_info`) returns the server's arguments, among them
//! `enable_memory_saver`; `POST /release_memory_occupation {}` hands the weights and KV cache
//! back to the driver and `POST /resume_memory_occupation {}` takes them again; both work only
//! when the server runs with `--enable-memory-saver` (without it they free nothing). Requests
//! at work come from `GET /v1/loads` (`{"loads": [{"num_reqs"}]}`; older `GET /get_load`,
//! `[{"num_reqs"}]`).

use super::{EngineKind, EngineStatus, Freed, get_json, holding};
use crate::release::local_http::LocalService;
use crate::release::{FreeLevel, ReleaseError};
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};

/// SGLang's port.
pub const USUAL_PORTS: [u16; 1] = [30000];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ServerInfo {
    enable_memory_saver: Option<bool>,
    model_path: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Load {
    num_reqs: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Loads {
    loads: Vec<Load>,
}

/// An SGLang server on this machine.
#[derive(Debug)]
pub struct Sglang {
    service: LocalService,
    /// Released by vramdeck and not resumed since (SGLang does not report it).
    released: AtomicBool,
}

impl Sglang {
    /// SGLang at `service`.
    pub fn new(service: LocalService) -> Self {
        Sglang {
            service,
            released: AtomicBool::new(false),
        }
    }

    fn info(&self) -> Result<ServerInfo, ReleaseError> {
        let info = match get_json::<ServerInfo>(&self.service, "/server_info") {
            Err(ReleaseError::Unrecognised { .. }) => {
                get_json::<ServerInfo>(&self.service, "/get_server_info")?
            }
            other => other?,
        };
        // Every SGLang lists its memory saver among its arguments; another program does not.
        if info.enable_memory_saver.is_none() {
            return Err(super::unrecognised(&self.service, "/server_info"));
        }
        Ok(info)
    }

    /// Requests at work, `None` when the server does not say.
    fn at_work(&self) -> Option<u64> {
        if let Ok(l) = get_json::<Loads>(&self.service, "/v1/loads") {
            return Some(l.loads.iter().map(|l| l.num_reqs).sum());
        }
        get_json::<Vec<Load>>(&self.service, "/get_load")
            .ok()
            .map(|l| l.iter().map(|l| l.num_reqs).sum())
    }
}

impl super::Engine for Sglang {
    fn kind(&self) -> EngineKind {
        EngineKind::Sglang
    }

    fn service(&self) -> &LocalService {
        &self.service
    }

    fn status(&self) -> Result<EngineStatus, ReleaseError> {
        let info = self.info()?;
        let mut status = EngineStatus::new(EngineKind::Sglang, self.service.target());
        if !info.model_path.is_empty() {
            status.holds.push(holding(&info.model_path, 0, 0));
        }
        match self.at_work() {
            Some(n) if n > 0 => {
                status.busy = Some(crate::t!("engine-requests", count = n, n = n.to_string()))
            }
            Some(_) => {}
            None => status.busy_unknown = true,
        }
        status.asleep = self.released.load(Ordering::Relaxed);
        if info.enable_memory_saver != Some(true) {
            status.note = Some(crate::t!("engine-sglang-no-saver"));
        }
        Ok(status)
    }

    fn free_idle(&self, _level: FreeLevel, status: &EngineStatus) -> Result<Freed, ReleaseError> {
        if status.asleep {
            return Ok(Freed::gave(None, vec![crate::t!("engine-already-asleep")]));
        }
        let answer = self.service.post_json(
            "/release_memory_occupation",
            "{}",
            super::APP_TIMEOUT * 20,
            1 << 16,
        );
        super::recognised(&self.service, "/release_memory_occupation", answer)?;
        self.released.store(true, Ordering::Relaxed);
        let mut freed = Freed::gave(None, vec![crate::t!("engine-sglang-released")]);
        freed.slept = true;
        Ok(freed)
    }

    fn no_cache_level(&self) -> Option<String> {
        Some(crate::t!("engine-sglang-cache"))
    }

    fn wake(&self) -> Result<bool, ReleaseError> {
        let answer = self.service.post_json(
            "/resume_memory_occupation",
            "{}",
            super::APP_TIMEOUT * 20,
            1 << 16,
        );
        super::recognised(&self.service, "/resume_memory_occupation", answer)?;
        self.released.store(false, Ordering::Relaxed);
        Ok(true)
    }
}
