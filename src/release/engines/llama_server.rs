//! llama.cpp's `llama-server` (default port 8080). Routes and answers from llama.cpp's
//! `tools/server/server.cpp` (route table), `server-models.cpp` (router mode:
//! `get_router_props` answers `{"role": "router", …}`, `get_router_models` lists
//! `{"data": [{"id", "status": {"value": "loaded" | "loading" | "sleeping" | "unloaded" | …}}]}`,
//! `post_router_models_unload` takes `{"model"}`, `is_autoload` reads `?autoload=`) and
//! `server-context.cpp` (`get_res_props`: `model_path`, `build_info`, `is_sleeping`;
//! `server_slot::to_json`: `is_processing`), as vendored by llama-cpp-python 0.3.36.
//!
//! A router unloads a model by telling its child process to exit, which ends a generation in
//! progress; so a model is unloaded only while none of its slots is processing (read through
//! the router with `autoload=false`, so the look never loads a model). A server started with
//! one model cannot unload it: vramdeck says so, and what would free it.

use super::{
    EngineKind, EngineStatus, Freed, Waiting, encode_component, get_json, holding, slots_processing,
};
use crate::release::local_http::LocalService;
use crate::release::{FreeLevel, ReleaseError};
use serde::Deserialize;

/// llama-server's port.
pub const USUAL_PORTS: [u16; 1] = [8080];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Props {
    role: String,
    model_path: String,
    model_alias: String,
    is_sleeping: bool,
    build_info: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ModelStatus {
    value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RouterModel {
    id: String,
    status: ModelStatus,
}

#[derive(Debug, Deserialize)]
struct RouterModels {
    data: Vec<RouterModel>,
}

/// A llama-server on this machine.
#[derive(Debug)]
pub struct LlamaServer {
    service: LocalService,
}

impl LlamaServer {
    /// The server at `service`.
    pub fn new(service: LocalService) -> Self {
        LlamaServer { service }
    }

    fn props(&self) -> Result<Props, ReleaseError> {
        let props: Props = get_json(&self.service, "/props")?;
        // Every llama-server names its build; another program's /props does not.
        if props.build_info.is_none() {
            return Err(super::unrecognised(&self.service, "/props"));
        }
        Ok(props)
    }

    /// Slots at work, `None` when the server does not say (started with `--no-slots`).
    fn processing(&self, model: Option<&str>) -> Option<usize> {
        let route = match model {
            Some(m) => format!("/slots?model={}&autoload=false", encode_component(m)),
            None => "/slots".to_string(),
        };
        get_json::<Vec<serde_json::Value>>(&self.service, &route)
            .ok()
            .map(|s| slots_processing(&s))
    }

    /// Models a router runs now (loaded, loading or asleep).
    fn running(&self) -> Result<Vec<RouterModel>, ReleaseError> {
        let mut models: RouterModels = get_json(&self.service, "/models")?;
        models.data.truncate(super::MAX_MODELS);
        models
            .data
            .retain(|m| matches!(m.status.value.as_str(), "loaded" | "loading" | "sleeping"));
        Ok(models.data)
    }
}

impl super::Engine for LlamaServer {
    fn kind(&self) -> EngineKind {
        EngineKind::LlamaServer
    }

    fn service(&self) -> &LocalService {
        &self.service
    }

    fn status(&self) -> Result<EngineStatus, ReleaseError> {
        let props = self.props()?;
        let mut status = EngineStatus::new(EngineKind::LlamaServer, self.service.target());
        if props.role == "router" {
            let mut at_work = 0usize;
            for m in self.running()? {
                if m.status.value == "loaded" {
                    match self.processing(Some(&m.id)) {
                        Some(n) => at_work += n,
                        None => status.busy_unknown = true,
                    }
                }
                let mut h = holding(&m.id, 0, 0);
                if m.status.value != "loaded" {
                    h.what = format!("{} ({})", h.what, crate::text::sanitized(&m.status.value));
                }
                status.holds.push(h);
            }
            status.busy = (at_work > 0)
                .then(|| crate::t!("engine-requests", count = at_work, n = at_work.to_string()));
            return Ok(status);
        }
        let name = if props.model_alias.is_empty() {
            props
                .model_path
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or("model")
                .to_string()
        } else {
            props.model_alias
        };
        status.holds.push(holding(&name, 0, 0));
        status.asleep = props.is_sleeping;
        match self.processing(None) {
            Some(n) if n > 0 => {
                status.busy = Some(crate::t!("engine-requests", count = n, n = n.to_string()))
            }
            Some(_) => {}
            None => status.busy_unknown = true,
        }
        status.note = Some(crate::t!("engine-llama-single"));
        Ok(status)
    }

    fn free_idle(&self, _level: FreeLevel, status: &EngineStatus) -> Result<Freed, ReleaseError> {
        let ids: Vec<String> = status
            .holds
            .iter()
            .filter(|h| !h.id.is_empty())
            .map(|h| h.id.clone())
            .collect();
        if ids.is_empty() {
            return Ok(Freed::gave(None, vec![crate::t!("app-nothing-loaded")]));
        }
        for id in &ids {
            let body = serde_json::json!({ "model": id }).to_string();
            super::post_json::<serde_json::Value>(&self.service, "/models/unload", &body)?;
        }
        // The child exits when told; the router lists the model until it has.
        let mut freed = Freed::gave(None, Vec::new());
        freed.later = Some((
            crate::t!(
                "engine-models-leaving",
                app = "llama.cpp server",
                models = status
                    .holds
                    .iter()
                    .map(|h| h.what.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Waiting::Leave(ids),
        ));
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_props_and_models_decode_as_the_router_writes_them() {
        let props: Props = serde_json::from_str(r#"{"role":"router","max_instances":4,"models_autoload":true,"model_alias":"llama-server","model_path":"none","default_generation_settings":{"params":{},"n_ctx":0},"ui_settings":{},"build_info":"b1-abc","cors_proxy_enabled":false}"#).unwrap();
        assert_eq!(props.role, "router");
        let models: RouterModels = serde_json::from_str(r#"{"data":[{"id":"tiny-a","aliases":[],"tags":[],"object":"model","owned_by":"llamacpp","created":1,"status":{"value":"loaded","args":["llama-server"]},"architecture":{},"source":"models_dir","can_remove":false},{"id":"tiny-b","status":{"value":"unloaded","args":[]}}],"object":"list"}"#).unwrap();
        assert_eq!(models.data[0].status.value, "loaded");
        assert_eq!(models.data[1].id, "tiny-b");
    }
}
