//! Stable Diffusion WebUI (AUTOMATIC1111) and Forge on this machine, started with `--api`,
//! through their own HTTP API: `GET /sdapi/v1/progress` says whether a job runs
//! (`state.job_count`), `GET /sdapi/v1/memory` gives torch's own numbers
//! (`cuda.reserved.current`, `cuda.allocated.current`), `POST /sdapi/v1/unload-checkpoint`
//! moves the checkpoint's weights off the GPU. Formats from `modules/api/api.py` (progressapi,
//! get_memory, unloadapi) and `modules/shared_state.py` (State.dict), A1111 v1.10 and Forge's
//! copy of the same file.
//!
//! The unload route does not take the queue lock: asked during a generation it would pull the
//! weights from under it. So vramdeck asks only while no job runs, and otherwise waits for the
//! job to end, as it does for ComfyUI.

use super::{APP_TIMEOUT, Engine, EngineKind, EngineStatus, Freed, Holding};
use crate::release::local_http::LocalService;
use crate::release::{FreeLevel, ReleaseError};
use serde::Deserialize;

/// The WebUI's port (A1111 and Forge).
pub const USUAL_PORTS: [u16; 1] = [7860];
/// Largest answer read (progress without its image, memory, unload).
const MAX_BYTES: u64 = 64 << 10;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JobState {
    job: String,
    job_count: i64,
    job_no: i64,
}

#[derive(Debug, Deserialize)]
struct ProgressBody {
    state: JobState,
}

/// The job a progress answer says is running ("txt2img, image 2 of 4"), any numbers it gives.
fn running_job(s: &JobState) -> Option<RunningJob> {
    (s.job_count > 0).then(|| {
        let job = crate::text::sanitized(&s.job)
            .chars()
            .take(80)
            .collect::<String>();
        RunningJob(crate::t!(
            "a1111-job",
            job = if job.is_empty() {
                "job".to_string()
            } else {
                job
            },
            // job_no is the WebUI's own count: at i64's end it must not overflow.
            n = s.job_no.saturating_add(1).clamp(1, s.job_count).to_string(),
            count = s.job_count.to_string()
        ))
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Current {
    current: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CudaBody {
    reserved: Current,
    allocated: Current,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MemoryBody {
    cuda: CudaBody,
}

/// torch's memory in the WebUI's process, as `/sdapi/v1/memory` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TorchMemory {
    /// Bytes torch's allocator holds from the driver.
    pub reserved: u64,
    /// Bytes in live tensors (the checkpoint while loaded).
    pub allocated: u64,
}

/// A job running in the WebUI: "txt2img (1 of 4)".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningJob(pub String);

/// A WebUI on this machine (see [`LocalService`]).
#[derive(Debug)]
pub struct A1111 {
    service: LocalService,
}

impl A1111 {
    /// The WebUI at `service`.
    pub fn new(service: LocalService) -> Self {
        A1111 { service }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, route: &str) -> Result<T, ReleaseError> {
        let not_api = |error: String| ReleaseError::Malformed {
            target: self.service.target(),
            reason: crate::t!("a1111-not-api", route = route, error = error),
        };
        // Gradio answers on the WebUI's port even without --api: that is worth saying.
        let body = self
            .service
            .get(route, APP_TIMEOUT, MAX_BYTES)
            .map_err(|e| match e {
                ReleaseError::Malformed { reason, .. } if super::is_missing_route(&reason) => {
                    not_api(reason)
                }
                e => e,
            })?;
        serde_json::from_slice(&body).map_err(|e| not_api(e.to_string()))
    }

    /// The job running now, if any.
    pub fn running(&self) -> Result<Option<RunningJob>, ReleaseError> {
        let progress: ProgressBody = self.get("/sdapi/v1/progress?skip_current_image=true")?;
        Ok(running_job(&progress.state))
    }

    /// torch's memory in the WebUI, when it runs on CUDA.
    pub fn memory(&self) -> Result<Option<TorchMemory>, ReleaseError> {
        let memory: MemoryBody = self.get("/sdapi/v1/memory")?;
        Ok(memory.cuda.reserved.current.map(|reserved| TorchMemory {
            reserved,
            allocated: memory.cuda.allocated.current.unwrap_or(0),
        }))
    }

    /// `POST /sdapi/v1/unload-checkpoint`: only call it with no job running.
    pub fn unload(&self) -> Result<(), ReleaseError> {
        self.service
            .post_json("/sdapi/v1/unload-checkpoint", "{}", APP_TIMEOUT, MAX_BYTES)
            .map(|_| ())
    }
}

impl Engine for A1111 {
    fn kind(&self) -> EngineKind {
        EngineKind::A1111
    }

    fn service(&self) -> &LocalService {
        &self.service
    }

    fn status(&self) -> Result<EngineStatus, ReleaseError> {
        let mut status = EngineStatus::new(EngineKind::A1111, self.service.target());
        status.busy = self.running()?.map(|j| j.0);
        status.holds = self
            .memory()?
            .filter(|m| m.reserved > 0)
            .map(|m| Holding {
                what: crate::t!("a1111-torch"),
                id: "torch".into(),
                vram: m.reserved,
                host: 0,
            })
            .into_iter()
            .collect();
        Ok(status)
    }

    /// Unloads the checkpoint (it loads again with the next generation).
    fn free_idle(&self, _level: FreeLevel, status: &EngineStatus) -> Result<Freed, ReleaseError> {
        let before = status.vram();
        self.unload()?;
        let after = self
            .memory()
            .ok()
            .flatten()
            .map(|m| m.reserved)
            .unwrap_or(before);
        Ok(Freed::gave(Some(before.saturating_sub(after)), Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_number_at_the_end_of_its_range_does_not_overflow() {
        let body = br#"{"progress":0.5,"eta_relative":1.0,"state":{"job":"txt2img","job_count":3,"job_no":9223372036854775807,"sampling_step":1,"sampling_steps":20},"current_image":null,"textinfo":null}"#;
        let p: ProgressBody = serde_json::from_slice(body).unwrap();
        let job = running_job(&p.state).unwrap().0;
        assert!(job.ends_with("(3 of 3)"), "{job}");
    }

    #[test]
    fn progress_and_memory_as_the_webui_writes_them_decode() {
        let idle = br#"{"progress":0.0,"eta_relative":0.0,"state":{"skipped":false,"interrupted":false,"stopping_generation":false,"job":"","job_count":0,"job_timestamp":"0","job_no":0,"sampling_step":0,"sampling_steps":0},"current_image":null,"textinfo":null,"current_task":null}"#;
        let p: ProgressBody = serde_json::from_slice(idle).unwrap();
        assert_eq!(p.state.job_count, 0);
        let busy = br#"{"progress":0.41,"eta_relative":6.2,"state":{"job":"txt2img","job_count":4,"job_no":1,"sampling_step":12,"sampling_steps":20},"current_image":null,"textinfo":null}"#;
        let p: ProgressBody = serde_json::from_slice(busy).unwrap();
        assert_eq!((p.state.job_count, p.state.job_no), (4, 1));
        let memory = br#"{"ram":{"free":1.0,"used":2.0,"total":3.0},"cuda":{"system":{"free":1,"used":2,"total":3},"active":{"current":5,"peak":6},"allocated":{"current":4200000000,"peak":6000000000},"reserved":{"current":5100000000,"peak":7000000000},"inactive":{"current":1,"peak":2},"events":{"retries":0,"oom":0}}}"#;
        let m: MemoryBody = serde_json::from_slice(memory).unwrap();
        assert_eq!(m.cuda.reserved.current, Some(5_100_000_000));
        // On a CPU the WebUI says so instead.
        let cpu: MemoryBody =
            serde_json::from_slice(br#"{"ram":{},"cuda":{"error":"unavailable"}}"#).unwrap();
        assert_eq!(cpu.cuda.reserved.current, None);
    }
}
