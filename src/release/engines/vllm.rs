//! vLLM's OpenAI-compatible server (default port 8000, which ComfyUI Desktop also takes: vLLM
//! is known by its `/metrics`, whose names start `vllm:`). Memory goes back only in sleep
//! mode: `POST /sleep?level=1` (weights to host memory, KV cache dropped), `POST /wake_up`,
//! `GET /is_sleeping` → `{"is_sleeping": bool}`, routes that `vllm/entrypoints/openai/
//! api_server.py` adds only when `VLLM_SERVER_DEV_MODE=1` (and sleep needs
//! `--enable-sleep-mode`); running requests are the `vllm:num_requests_running` gauge
//! (`vllm/v1/metrics/loggers.py`), models `GET /v1/models`.

use super::{EngineKind, EngineStatus, Freed, get_json, holding};
use crate::release::local_http::LocalService;
use crate::release::{FreeLevel, ReleaseError};
use serde::Deserialize;

/// vLLM's port.
pub const USUAL_PORTS: [u16; 1] = [8000];
/// Largest /metrics page read (a few hundred lines).
const MAX_METRICS_BYTES: u64 = 4 << 20;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Model {
    id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Models {
    data: Vec<Model>,
}

#[derive(Debug, Deserialize)]
struct Sleeping {
    is_sleeping: bool,
}

/// The sum of a Prometheus gauge over its labels, from a text exposition.
pub fn gauge_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .sum()
}

/// A vLLM server on this machine.
#[derive(Debug)]
pub struct Vllm {
    service: LocalService,
}

impl Vllm {
    /// vLLM at `service`.
    pub fn new(service: LocalService) -> Self {
        Vllm { service }
    }

    /// Whether it sleeps; `None` when its sleep routes are off (no dev mode).
    fn sleeping(&self) -> Result<Option<bool>, ReleaseError> {
        match get_json::<Sleeping>(&self.service, "/is_sleeping") {
            Ok(s) => Ok(Some(s.is_sleeping)),
            Err(ReleaseError::Unrecognised { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl super::Engine for Vllm {
    fn kind(&self) -> EngineKind {
        EngineKind::Vllm
    }

    fn service(&self) -> &LocalService {
        &self.service
    }

    fn status(&self) -> Result<EngineStatus, ReleaseError> {
        let answer = self
            .service
            .get("/metrics", super::APP_TIMEOUT, MAX_METRICS_BYTES);
        let metrics = super::recognised(&self.service, "/metrics", answer)?;
        let metrics = String::from_utf8_lossy(&metrics);
        if !metrics.contains("vllm:") {
            return Err(super::unrecognised(&self.service, "/metrics"));
        }
        let mut status = EngineStatus::new(EngineKind::Vllm, self.service.target());
        let running = gauge_sum(&metrics, "vllm:num_requests_running") as u64;
        status.busy = (running > 0)
            .then(|| crate::t!("engine-requests", count = running, n = running.to_string()));
        let models: Models = get_json(&self.service, "/v1/models").unwrap_or_default();
        status.holds = models
            .data
            .iter()
            .take(super::MAX_MODELS)
            .map(|m| holding(&m.id, 0, 0))
            .collect();
        match self.sleeping()? {
            Some(asleep) => status.asleep = asleep,
            None => status.note = Some(crate::t!("engine-vllm-no-sleep")),
        }
        Ok(status)
    }

    fn free_idle(&self, _level: FreeLevel, status: &EngineStatus) -> Result<Freed, ReleaseError> {
        if status.asleep {
            return Ok(Freed::gave(None, vec![crate::t!("engine-already-asleep")]));
        }
        let answer = self
            .service
            .post_json("/sleep?level=1", "", super::APP_TIMEOUT * 20, 1 << 16);
        super::recognised(&self.service, "/sleep", answer)?;
        let mut freed = Freed::gave(None, vec![crate::t!("engine-vllm-slept")]);
        freed.slept = true;
        Ok(freed)
    }

    fn no_cache_level(&self) -> Option<String> {
        Some(crate::t!("engine-vllm-cache"))
    }

    fn wake(&self) -> Result<bool, ReleaseError> {
        let answer = self
            .service
            .post_json("/wake_up", "", super::APP_TIMEOUT * 20, 1 << 16);
        super::recognised(&self.service, "/wake_up", answer)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_requests_are_summed_over_engines_and_comments_skipped() {
        let metrics = "# HELP vllm:num_requests_running Number of requests in model execution batches.\n# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{engine=\"0\",model_name=\"Qwen/Qwen3-0.6B\"} 2.0\nvllm:num_requests_running{engine=\"1\",model_name=\"Qwen/Qwen3-0.6B\"} 1.0\nvllm:num_requests_running_total 9.0\nvllm:num_requests_waiting{engine=\"0\"} 4.0\n";
        assert_eq!(gauge_sum(metrics, "vllm:num_requests_running"), 3.0);
        assert_eq!(gauge_sum(metrics, "vllm:num_requests_waiting"), 4.0);
        assert_eq!(
            gauge_sum(
                "vllm:num_requests_running NaN\n",
                "vllm:num_requests_running"
            ),
            0.0
        );
    }
}
