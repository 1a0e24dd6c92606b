//! Every process holding GPU memory, named after the app it belongs to: an agent's app or
//! label, an engine (its listener and every process descending from it: Ollama's and a
//! llama-server router's model runners, vLLM's engine core, SwarmUI's ComfyUI backend), or
//! ComfyUI; a process nobody manages says what would free it.

use super::discovery::LiveAgent;
use super::engines::EngineStatus;
use crate::platform::listeners;
use std::collections::{BTreeMap, HashMap};

/// Most processes named (the parent map holds at most as many).
const MAX_OWNED: usize = 8192;

/// Who started which processes: a root pid and the app it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Owners {
    /// Each owned pid and its app.
    pub by_pid: BTreeMap<u32, String>,
}

impl Owners {
    /// The owners of every process descending from an agent, an engine's listener or
    /// ComfyUI's listener, with `parents` the system's process tree.
    pub fn from_roots(roots: &[(u32, String)], parents: &HashMap<u32, u32>) -> Self {
        let mut by_pid = BTreeMap::new();
        for (root, app) in roots {
            by_pid.insert(*root, app.clone());
        }
        for &pid in parents.keys() {
            if by_pid.len() >= MAX_OWNED {
                break;
            }
            if let Some((_, app)) = roots
                .iter()
                .find(|(root, _)| listeners::descends_from(pid, *root, parents))
            {
                by_pid.entry(pid).or_insert_with(|| app.clone());
            }
        }
        Owners { by_pid }
    }

    /// The owners as the system shows them now.
    pub fn now(agents: &[LiveAgent], engines: &[EngineStatus], comfy_pid: Option<u32>) -> Self {
        Self::from_roots(&roots(agents, engines, comfy_pid), &listeners::parents())
    }

    /// The app holding `pid`'s memory, or what would free it when nobody manages it.
    pub fn describe(&self, pid: u32, process_name: &str) -> String {
        match self.by_pid.get(&pid) {
            Some(app) => app.clone(),
            None if process_name.to_ascii_lowercase().starts_with("python") => {
                crate::t!("holder-unmanaged-python")
            }
            None => crate::t!("holder-unmanaged"),
        }
    }
}

/// The root of each app: agents first (their own process is theirs), then engines.
pub fn roots(
    agents: &[LiveAgent],
    engines: &[EngineStatus],
    comfy_pid: Option<u32>,
) -> Vec<(u32, String)> {
    let mut roots: Vec<(u32, String)> = agents
        .iter()
        .map(|a| (a.endpoint.pid, super::free::app_name(&a.info)))
        .collect();
    roots.extend(comfy_pid.map(|p| (p, "ComfyUI".to_string())));
    roots.extend(
        engines
            .iter()
            .filter_map(|e| Some((e.pid?, e.kind.name().to_string()))),
    );
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runners_are_named_after_the_engine_that_started_them() {
        // ollama serve (100) → runner (101) → its helper (102); a python of nobody (200).
        let parents: HashMap<u32, u32> = [(100, 1), (101, 100), (102, 101), (200, 1), (300, 1)]
            .into_iter()
            .collect();
        let owners = Owners::from_roots(
            &[(100, "Ollama".into()), (300, "Wan2.1 T2V".into())],
            &parents,
        );
        assert_eq!(owners.describe(102, "llama-server"), "Ollama");
        assert_eq!(owners.describe(300, "python3"), "Wan2.1 T2V");
        assert!(owners.describe(200, "python3").contains("agent"));
        assert!(!owners.describe(201, "blender").is_empty());
    }
}
