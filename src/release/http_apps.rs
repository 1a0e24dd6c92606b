//! The other AI apps sharing the GPU that unload over their own HTTP API, with no agent in
//! them: Ollama and Stable Diffusion WebUI (A1111, Forge). What each holds, and Free VRAM for
//! them: they have no cache level (their models are what they hold), so only "unload models"
//! touches them, and never in the middle of a running generation.

use super::a1111::A1111;
use super::free::{Follow, PendingRelease, TargetFreed, TargetResult};
use super::ollama::Ollama;
use super::{FreeLevel, ReleaseError};
use crate::units::Bytes;
use std::time::Duration;

/// Longest one look at an app takes.
pub const APP_TIMEOUT: Duration = Duration::from_secs(3);

/// Which app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppKind {
    /// Ollama.
    Ollama,
    /// Stable Diffusion WebUI (A1111) or Forge.
    A1111,
}

/// An app with its API on this machine.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpApp {
    /// Ollama.
    Ollama(Ollama),
    /// Stable Diffusion WebUI or Forge.
    A1111(A1111),
}

/// Something an app holds: a model, a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    /// "llama3.1:8b", "checkpoint", cleaned for the screen.
    pub what: String,
    /// The name as the app itself wrote it, for asking the app about it again (a cleaned or
    /// shortened name is not one the app knows).
    pub id: String,
    /// Bytes of it in VRAM.
    pub vram: u64,
    /// Bytes of it in host memory.
    pub host: u64,
}

/// An app as just seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppStatus {
    /// Which app.
    pub kind: AppKind,
    /// "Ollama at 127.0.0.1:11434".
    pub target: String,
    /// What it holds.
    pub holds: Vec<Holding>,
    /// The generation running now, if the app says.
    pub busy: Option<String>,
}

impl AppStatus {
    /// Bytes of VRAM it holds in all.
    pub fn vram(&self) -> u64 {
        self.holds
            .iter()
            .fold(0u64, |sum, h| sum.saturating_add(h.vram))
    }
}

/// The apps configured: each address ("localhost", "127.0.0.1:11434"; "none" turns it off),
/// and a sentence for each address that cannot be used.
pub fn configured(ollama: &str, a1111: &str) -> (Vec<HttpApp>, Vec<String>) {
    let (mut apps, mut problems) = (Vec::new(), Vec::new());
    let off = |a: &str| a.trim().is_empty() || a.trim().eq_ignore_ascii_case("none");
    if !off(ollama) {
        match Ollama::parse(ollama) {
            Ok(o) => apps.push(HttpApp::Ollama(o)),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !off(a1111) {
        match A1111::parse(a1111) {
            Ok(w) => apps.push(HttpApp::A1111(w)),
            Err(e) => problems.push(e.to_string()),
        }
    }
    (apps, problems)
}

impl HttpApp {
    /// Which app.
    pub fn kind(&self) -> AppKind {
        match self {
            HttpApp::Ollama(_) => AppKind::Ollama,
            HttpApp::A1111(_) => AppKind::A1111,
        }
    }

    /// "Ollama at 127.0.0.1:11434".
    pub fn target(&self) -> String {
        match self {
            HttpApp::Ollama(o) => o.target(),
            HttpApp::A1111(w) => w.target(),
        }
    }

    /// What it holds and whether it is generating; an error when it is not running (or not
    /// with its API).
    pub fn status(&self) -> Result<AppStatus, ReleaseError> {
        match self {
            HttpApp::Ollama(o) => {
                let holds = o
                    .loaded(APP_TIMEOUT)?
                    .into_iter()
                    .map(|m| Holding {
                        host: m.size_host(),
                        vram: m.size_vram,
                        what: m.shown(),
                        id: m.name,
                    })
                    .collect();
                Ok(AppStatus {
                    kind: AppKind::Ollama,
                    target: o.target(),
                    holds,
                    busy: None,
                })
            }
            HttpApp::A1111(w) => {
                let busy = w.running(APP_TIMEOUT)?.map(|j| j.0);
                let holds = w
                    .memory(APP_TIMEOUT)?
                    .filter(|m| m.reserved > 0)
                    .map(|m| Holding {
                        what: crate::t!("a1111-torch"),
                        id: "torch".into(),
                        vram: m.reserved,
                        host: 0,
                    })
                    .into_iter()
                    .collect();
                Ok(AppStatus {
                    kind: AppKind::A1111,
                    target: w.target(),
                    holds,
                    busy,
                })
            }
        }
    }

    /// Frees what it holds at `level`; a release waiting for a generation comes back pending.
    pub fn free(&self, level: FreeLevel) -> (TargetResult, Option<PendingRelease>) {
        let target = self.target();
        let result = |outcome| TargetResult {
            target: target.clone(),
            outcome,
        };
        // Only an app that answers is "left alone"; one that is not running is not there.
        let status = match self.status() {
            Ok(s) => s,
            Err(e) => return (result(Err(e)), None),
        };
        if level == FreeLevel::Cache {
            let skipped = Some(crate::t!("app-no-cache-level", app = self.name()));
            return (
                result(Ok(TargetFreed {
                    skipped,
                    ..TargetFreed::default()
                })),
                None,
            );
        }
        match self {
            HttpApp::Ollama(o) => free_ollama(o, &status, result),
            HttpApp::A1111(w) => free_a1111(w, &status, result),
        }
    }

    /// "Ollama", "Stable Diffusion WebUI".
    pub fn name(&self) -> &'static str {
        match self {
            HttpApp::Ollama(_) => "Ollama",
            HttpApp::A1111(_) => "Stable Diffusion WebUI",
        }
    }
}

/// Unloads every model; those still listed after are in use, and follow.
fn free_ollama(
    o: &Ollama,
    status: &AppStatus,
    result: impl Fn(Result<TargetFreed, ReleaseError>) -> TargetResult,
) -> (TargetResult, Option<PendingRelease>) {
    for h in &status.holds {
        if let Err(e) = o.unload(&h.id, APP_TIMEOUT) {
            return (result(Err(e)), None);
        }
    }
    let still: Vec<String> = match o.loaded(APP_TIMEOUT) {
        Ok(now) => now
            .into_iter()
            .map(|m| m.name)
            .filter(|n| status.holds.iter().any(|h| &h.id == n))
            .collect(),
        Err(e) => return (result(Err(e)), None),
    };
    let gone: u64 = status
        .holds
        .iter()
        .filter(|h| !still.contains(&h.id))
        .fold(0u64, |sum, h| sum.saturating_add(h.vram));
    let freed = TargetFreed {
        reported: Some(Bytes(gone)),
        notes: (status.holds.is_empty())
            .then(|| crate::t!("app-nothing-loaded"))
            .into_iter()
            .collect(),
        ..TargetFreed::default()
    };
    let pending = (!still.is_empty()).then(|| PendingRelease {
        target: o.target(),
        reason: crate::t!(
            "ollama-after-request",
            models = still
                .iter()
                .map(|n| super::ollama::shown_name(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        follow: Follow::OllamaModels {
            ollama: o.clone(),
            models: still,
        },
    });
    (result(Ok(freed)), pending)
}

/// Unloads the checkpoint when no job runs; otherwise waits for the job to end.
fn free_a1111(
    w: &A1111,
    status: &AppStatus,
    result: impl Fn(Result<TargetFreed, ReleaseError>) -> TargetResult,
) -> (TargetResult, Option<PendingRelease>) {
    if let Some(job) = &status.busy {
        let pending = PendingRelease {
            target: w.target(),
            reason: crate::t!("a1111-after-job", job = job.clone()),
            follow: Follow::A1111Job { webui: w.clone() },
        };
        return (result(Ok(TargetFreed::default())), Some(pending));
    }
    let before = status.vram();
    if let Err(e) = w.unload(APP_TIMEOUT) {
        return (result(Err(e)), None);
    }
    let after = w
        .memory(APP_TIMEOUT)
        .ok()
        .flatten()
        .map(|m| m.reserved)
        .unwrap_or(before);
    let freed = TargetFreed {
        reported: Some(Bytes(before.saturating_sub(after))),
        ..TargetFreed::default()
    };
    (result(Ok(freed)), None)
}

/// One look at a deferred release of an app: `Ok(true)` once it happened. A WebUI whose job
/// ended is asked to unload now.
pub fn follow(follow: &Follow) -> Result<bool, ReleaseError> {
    match follow {
        Follow::OllamaModels { ollama, models } => {
            let now = ollama.loaded(APP_TIMEOUT)?;
            Ok(!now.iter().any(|m| models.contains(&m.name)))
        }
        Follow::A1111Job { webui } => {
            if webui.running(APP_TIMEOUT)?.is_some() {
                return Ok(false);
            }
            webui.unload(APP_TIMEOUT)?;
            Ok(true)
        }
        _ => Ok(true),
    }
}
