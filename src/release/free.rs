//! One "Free VRAM" action: ask agents (and ComfyUI) to release memory, and measure with NVML
//! what actually came back, so the user sees both "reported" and "measured".

use super::comfyui::ComfyUi;
use super::discovery::{self, Endpoint};
use super::{FreeLevel, ReleaseError, client::AgentClient};
use crate::telemetry::GpuSource;
use crate::telemetry::sampler::{SharedTelemetry, lock};
use crate::units::{Bytes, MemoryUnit, group_thousands};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// How long connecting and hello may take per agent.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an agent's free (its unload hooks included) may take.
pub const FREE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to watch NVML for the drop after the agents answered (ComfyUI unloads
/// asynchronously, after its `/free` has already returned).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads total VRAM used across GPUs, as fresh as asked.
pub trait UsedMemoryProbe: Send {
    /// VRAM used on all GPUs by a reading taken at or after `not_before`; `None` if unknown.
    /// A simulated GPU is never a measurement: it answers `None`.
    fn used_since(&mut self, not_before: SystemTime) -> Option<Bytes>;
}

impl UsedMemoryProbe for Box<dyn GpuSource> {
    fn used_since(&mut self, _not_before: SystemTime) -> Option<Bytes> {
        if self.kind().is_simulated() {
            return None;
        }
        let gpus = self.sample().ok()?;
        Some(Bytes(gpus.iter().map(|g| g.memory.used.0).sum()))
    }
}

/// Reads the sampler's telemetry, waiting (briefly) for a reading new enough.
pub struct TelemetryProbe(pub SharedTelemetry);

impl UsedMemoryProbe for TelemetryProbe {
    fn used_since(&mut self, not_before: SystemTime) -> Option<Bytes> {
        let wait = {
            let t = lock(&self.0);
            if t.source.is_simulated() {
                return None;
            }
            t.interval * 2 + Duration::from_millis(500)
        };
        let deadline = Instant::now() + wait;
        loop {
            {
                let t = lock(&self.0);
                if let Some(s) = t.latest.as_ref().filter(|s| s.time >= not_before) {
                    return Some(Bytes(s.gpus.iter().map(|g| g.memory.used.0).sum()));
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What to free.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FreeTarget {
    /// Every agent, and ComfyUI if it is running.
    All,
    /// One agent, by pid.
    Agent(u32),
    /// ComfyUI only.
    ComfyUi,
}

/// One target's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetResult {
    /// "python3 (pid 437, Wan2.1 T2V 14B)" or "ComfyUI at 127.0.0.1:8188".
    pub target: String,
    /// What it released, or why it could not.
    pub outcome: Result<TargetFreed, ReleaseError>,
}

/// What a target reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetFreed {
    /// Bytes the target says went back to the driver (`None`: it cannot tell, e.g. ComfyUI).
    pub reported: Option<Bytes>,
    /// Hooks that failed.
    pub hook_errors: Vec<String>,
}

/// The whole action's result.
#[derive(Clone, Debug, PartialEq)]
pub struct FreeReport {
    /// When the action started.
    pub at: SystemTime,
    /// Level asked for.
    pub level: FreeLevel,
    /// Per target.
    pub results: Vec<TargetResult>,
    /// NVML used before, all GPUs.
    pub used_before: Option<Bytes>,
    /// NVML used after.
    pub used_after: Option<Bytes>,
    /// Time until every target answered.
    pub elapsed: Duration,
}

impl FreeReport {
    /// Sum of what targets reported.
    pub fn reported_total(&self) -> Option<Bytes> {
        let reported: Vec<u64> = self
            .results
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok()?.reported.map(|b| b.0))
            .collect();
        (!reported.is_empty()).then(|| Bytes(reported.iter().sum()))
    }

    /// NVML used before minus after (positive = released).
    pub fn measured_release(&self) -> Option<i64> {
        Some(self.used_before?.0 as i64 - self.used_after?.0 as i64)
    }

    /// One line for a toast or a terminal: "Released 9.8 GiB in 40 ms · ...". Plain ASCII
    /// punctuation: egui's built-in font has no arrows.
    pub fn summary(&self) -> String {
        if self.results.is_empty() {
            return "Nothing to free: no vramdeck agent is running and ComfyUI did not answer. \
                    Add `vramdeck_agent.start()` to your WebUI."
                .into();
        }
        let ok = self.results.iter().filter(|r| r.outcome.is_ok()).count();
        let headline = match (self.measured_release(), self.reported_total()) {
            (Some(measured), _) if measured > 0 => format!(
                "Released {} in {} ms",
                MemoryUnit::GiB.format(Bytes(measured as u64)),
                self.elapsed.as_millis()
            ),
            (_, Some(reported)) => format!(
                "Released {} (reported) in {} ms",
                MemoryUnit::GiB.format(reported),
                self.elapsed.as_millis()
            ),
            _ if ok == 0 => "Free VRAM failed".to_string(),
            _ => format!("Nothing was released ({} ms)", self.elapsed.as_millis()),
        };
        let mut parts = vec![headline];
        if let Some(reported) = self.reported_total() {
            parts.push(format!(
                "reported by agents: {}",
                MemoryUnit::GiB.format(reported)
            ));
        }
        if self.used_before.is_none() {
            parts.push("no NVML measurement (demo mode or no NVIDIA driver)".into());
        }
        if let (Some(before), Some(after)) = (self.used_before, self.used_after) {
            let delta = after.whole_mib() as i64 - before.whole_mib() as i64;
            parts.push(format!(
                "NVML used {} to {} MiB ({}{} MiB)",
                group_thousands(before.whole_mib()),
                group_thousands(after.whole_mib()),
                if delta < 0 { "-" } else { "+" },
                group_thousands(delta.unsigned_abs())
            ));
        }
        for r in &self.results {
            match &r.outcome {
                Err(e) => parts.push(e.to_string()),
                Ok(freed) => parts.extend(
                    freed
                        .hook_errors
                        .iter()
                        .map(|e| format!("{}: unload hook failed: {e}", r.target)),
                ),
            }
        }
        parts.join(" · ")
    }
}

/// Where to look and whom to ask.
#[derive(Clone, Debug)]
pub struct FreeRequest {
    /// What to free.
    pub target: FreeTarget,
    /// How much.
    pub level: FreeLevel,
    /// Agent socket directory.
    pub agent_dir: PathBuf,
    /// ComfyUI, when configured.
    pub comfyui: Option<ComfyUi>,
}

fn describe(info: &super::protocol::AgentInfo) -> String {
    match &info.label {
        Some(label) => format!("{} (pid {}, {label})", info.process_name, info.pid),
        None => format!("{} (pid {})", info.process_name, info.pid),
    }
}

/// Performs a free and measures it.
pub fn perform(request: &FreeRequest, probe: &mut dyn UsedMemoryProbe) -> FreeReport {
    let at = SystemTime::now();
    let used_before = probe.used_since(at);
    let started = Instant::now();
    let mut results = Vec::new();

    let agents: Vec<Endpoint> = match discovery::endpoints(&request.agent_dir) {
        Ok(all) => all
            .into_iter()
            .filter(|e| match request.target {
                FreeTarget::All => true,
                FreeTarget::Agent(pid) => e.pid == pid,
                FreeTarget::ComfyUi => false,
            })
            .collect(),
        Err(e) => {
            results.push(TargetResult {
                target: "agents".into(),
                outcome: Err(e),
            });
            Vec::new()
        }
    };
    if let FreeTarget::Agent(pid) = request.target
        && agents.is_empty()
        && results.is_empty()
    {
        results.push(TargetResult {
            target: format!("agent pid {pid}"),
            outcome: Err(ReleaseError::Gone(format!("agent pid {pid}"))),
        });
    }
    for endpoint in &agents {
        let mut target = format!("agent pid {}", endpoint.pid);
        let outcome = AgentClient::connect(endpoint, HELLO_TIMEOUT).and_then(|mut client| {
            if let Ok(info) = client.hello() {
                target = describe(&info);
            }
            client.free(request.level, FREE_TIMEOUT)
        });
        if matches!(outcome, Err(ReleaseError::Gone(_))) {
            // A crashed agent's socket: tidy up and say nothing more about it.
            let _ = std::fs::remove_file(&endpoint.path);
            if request.target == FreeTarget::All {
                continue;
            }
        }
        results.push(TargetResult {
            target,
            outcome: outcome.map(|freed| TargetFreed {
                reported: freed.released_bytes.map(Bytes),
                hook_errors: freed.hook_errors,
            }),
        });
    }

    let ask_comfy = matches!(request.target, FreeTarget::All | FreeTarget::ComfyUi);
    let mut comfy_asked = false;
    if let (true, Some(comfy)) = (ask_comfy, &request.comfyui) {
        let outcome = comfy.free(request.level == FreeLevel::Unload, HELLO_TIMEOUT * 3);
        let not_running = matches!(&outcome, Err(ReleaseError::Connect { .. }));
        // "Free all" with no ComfyUI running is not an error worth showing.
        if !(not_running && request.target == FreeTarget::All) {
            comfy_asked = outcome.is_ok();
            results.push(TargetResult {
                target: format!("ComfyUI at {}", comfy.address()),
                outcome: outcome.map(|()| TargetFreed::default()),
            });
        }
    }
    let elapsed = started.elapsed();

    // Watch NVML until the reported release shows up, or ComfyUI had time to unload.
    let reported = results
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok()?.reported)
        .map(|b| b.0)
        .sum::<u64>();
    let settle_until = Instant::now() + SETTLE_TIMEOUT;
    let mut used_after;
    loop {
        used_after = probe.used_since(SystemTime::now());
        let dropped = match (used_before, used_after) {
            (Some(b), Some(a)) => b.0.saturating_sub(a.0),
            _ => 0,
        };
        let satisfied = if comfy_asked {
            false // ComfyUI reports nothing: give it the whole settle time
        } else {
            reported == 0 || dropped as f64 >= reported as f64 * 0.9
        };
        if satisfied || Instant::now() >= settle_until || used_before.is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    FreeReport {
        at,
        level: request.level,
        results,
        used_before,
        used_after,
        elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(results: Vec<TargetResult>, before: u64, after: u64) -> FreeReport {
        FreeReport {
            at: SystemTime::UNIX_EPOCH,
            level: FreeLevel::Cache,
            results,
            used_before: Some(Bytes::from_mib(before)),
            used_after: Some(Bytes::from_mib(after)),
            elapsed: Duration::from_millis(40),
        }
    }

    #[test]
    fn summary_shows_measured_and_reported() {
        let r = report(
            vec![TargetResult {
                target: "python3 (pid 1)".into(),
                outcome: Ok(TargetFreed {
                    reported: Some(Bytes::from_mib(10_240)),
                    hook_errors: vec![],
                }),
            }],
            10_858,
            358,
        );
        assert_eq!(
            r.summary(),
            "Released 10.3 GiB in 40 ms · reported by agents: 10.0 GiB · NVML used 10,858 to 358 MiB (-10,500 MiB)"
        );
    }

    #[test]
    fn summary_names_failures() {
        let r = report(
            vec![TargetResult {
                target: "agent pid 9".into(),
                outcome: Err(ReleaseError::Timeout {
                    target: "agent pid 9".into(),
                    seconds: 20.0,
                }),
            }],
            100,
            100,
        );
        assert!(
            r.summary().starts_with("Free VRAM failed"),
            "{}",
            r.summary()
        );
        assert!(
            r.summary()
                .contains("agent pid 9 did not answer within 20.0 s")
        );
    }

    #[test]
    fn a_simulated_gpu_is_not_passed_off_as_a_measurement() {
        let mut demo: Box<dyn GpuSource> =
            Box::new(crate::telemetry::sim::SimulatedGpus::demo("test"));
        assert_eq!(demo.used_since(SystemTime::now()), None);
        let mut r = report(
            vec![TargetResult {
                target: "python3 (pid 1)".into(),
                outcome: Ok(TargetFreed {
                    reported: Some(Bytes::from_mib(1_024)),
                    hook_errors: vec![],
                }),
            }],
            0,
            0,
        );
        (r.used_before, r.used_after) = (None, None);
        assert_eq!(
            r.summary(),
            "Released 1.0 GiB (reported) in 40 ms · reported by agents: 1.0 GiB · no NVML measurement (demo mode or no NVIDIA driver)"
        );
    }

    #[test]
    fn nothing_to_free_says_what_to_do() {
        assert!(
            report(vec![], 1, 1)
                .summary()
                .contains("vramdeck_agent.start()")
        );
    }
}
