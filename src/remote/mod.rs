//! GPUs on other machines: the JSON that `vramdeck serve` speaks, and the feeds that read a
//! remote box into the window — over that API, or over SSH with nothing but nvidia-smi there —
//! merged with this machine's GPUs by [`fleet::FleetSource`].

mod api;
pub mod bounds;
pub mod fleet;
mod ssh;
pub mod wire;

use crate::telemetry::GpuSample;
use crate::telemetry::history::Values;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A remote host as the user added it (kept in the settings file, which is 0600).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostConfig {
    /// `http://box:9401` or `https://box.example/vramdeck` for a `vramdeck serve`; `ssh
    /// user@box` (or `ssh box`, a name from ~/.ssh/config) for a box with only nvidia-smi.
    pub address: String,
    /// The serve token, where the box wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// How a host is reached, parsed from its address.
#[derive(Clone, Debug, PartialEq)]
pub enum Endpoint {
    /// A `vramdeck serve` at this base URL (no trailing slash).
    Api(String),
    /// The system `ssh` client with this destination (and the user's ssh config).
    Ssh(String),
}

impl HostConfig {
    /// How to reach the host, or why the address cannot be used.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        let address = self.address.trim();
        if let Some(target) = address.strip_prefix("ssh ") {
            let target = target.trim();
            // One word: ssh would read "-oProxyCommand=…" as an option, not a host.
            if target.is_empty() || target.starts_with('-') || target.contains(char::is_whitespace)
            {
                return Err(crate::t!("remote-not-ssh", target = format!("{target:?}")));
            }
            return Ok(Endpoint::Ssh(target.to_string()));
        }
        if let Some(rest) = address
            .strip_prefix("http://")
            .or_else(|| address.strip_prefix("https://"))
        {
            if rest.is_empty() || rest.contains(char::is_whitespace) || rest.contains('?') {
                return Err(crate::t!(
                    "remote-not-url",
                    address = format!("{address:?}")
                ));
            }
            return Ok(Endpoint::Api(address.trim_end_matches('/').to_string()));
        }
        Err(crate::t!(
            "remote-bad-address",
            address = format!("{address:?}")
        ))
    }

    /// The name shown until the host says its own: the address without scheme or user.
    pub fn short_name(&self) -> String {
        let a = self.address.trim();
        let a = a
            .strip_prefix("ssh ")
            .or_else(|| a.strip_prefix("http://"))
            .or_else(|| a.strip_prefix("https://"))
            .unwrap_or(a)
            .trim();
        let a = a.rsplit('@').next().unwrap_or(a);
        a.split(['/', ':']).next().unwrap_or(a).to_string()
    }
}

/// Where a host's feed stands.
#[derive(Clone, Debug, PartialEq)]
pub enum HostStatus {
    /// Not heard from yet.
    Connecting,
    /// Readings arrive.
    Live,
    /// The host sent what no real box sends (see [`bounds`]): nothing more is read from it
    /// until it is removed and added again.
    Refused(String),
    /// The last attempt failed; the next one is at `retry_at`.
    Retrying {
        /// What went wrong.
        error: String,
        /// When the feed tries again (backing off up to 30 s).
        retry_at: Instant,
    },
}

/// One GPU's readings that arrived late (a reconnect back-fills the gap from the box's own
/// history), keyed like the GPU's slot.
#[derive(Clone, Debug, PartialEq)]
pub struct Backfill {
    /// The GPU's key on its host (UUID, else index).
    pub key: String,
    /// Time-ordered readings.
    pub points: Vec<(f64, Values)>,
}

/// What a feed knows about its host; the fleet source and the window read it.
#[derive(Clone, Debug)]
pub struct HostState {
    /// The host's name (what the box calls itself, else from the address).
    pub name: String,
    /// The newest reading of each GPU, in the host's order.
    pub gpus: Vec<GpuSample>,
    /// When the newest reading arrived.
    pub last_reading: Option<Instant>,
    /// How often readings come; three of these without one is stale.
    pub interval: Duration,
    /// Connection state.
    pub status: HostStatus,
    /// Readings to add to history before the next live one.
    pub backfill: Vec<Backfill>,
    /// What the feed can do beyond reading: Free VRAM through a serve with a token.
    pub can_free: bool,
    /// The newest Free VRAM on the host, as it reported it.
    pub free: Option<wire::FreeStatusBody>,
    /// Something about the host worth a line (demo GPUs there, no process list over SSH).
    pub note: Option<String>,
    /// What the host sent that was left out, and why (more GPUs than a box has).
    pub problem: Option<String>,
}

impl HostState {
    fn new(name: String) -> Self {
        HostState {
            name,
            gpus: Vec::new(),
            last_reading: None,
            interval: Duration::from_secs(1),
            status: HostStatus::Connecting,
            backfill: Vec::new(),
            can_free: false,
            free: None,
            note: None,
            problem: None,
        }
    }

    /// Seconds since the newest reading when it is older than three intervals, else `None`.
    pub fn stale_seconds(&self, now: Instant) -> Option<f64> {
        let age = now.duration_since(self.last_reading?);
        (age > self.interval * 3).then_some(age.as_secs_f64())
    }
}

/// The key a GPU keeps across readings and reconnects: its UUID, else its index.
pub fn gpu_key(g: &GpuSample) -> String {
    g.uuid
        .clone()
        .unwrap_or_else(|| format!("index:{}", g.index))
}

/// State shared between a feed's thread and its readers.
pub(crate) struct Shared {
    state: Mutex<HostState>,
    stop: AtomicBool,
    /// The ssh child's pid, to end it when the host is removed.
    child: AtomicU32,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Stops taking anything from the host: its GPUs leave the window (see [`bounds`]).
    fn refuse(&self, why: &str) {
        let mut state = self.lock();
        state.gpus.clear();
        state.backfill.clear();
        state.problem = None;
        state.status = HostStatus::Refused(why.to_string());
    }

    /// Records a failure and says how long to wait before the next attempt.
    fn failed(&self, error: String, failures: &mut u32) -> Duration {
        *failures = failures.saturating_add(1);
        let wait = backoff(*failures);
        self.lock().status = HostStatus::Retrying {
            error: crate::text::sanitized(&error),
            retry_at: Instant::now() + wait,
        };
        wait
    }
}

/// 1, 2, 4, 8, 16, 30, 30 … seconds.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.saturating_sub(1).min(5)).min(30))
}

/// Sleeps up to `d`, waking early when the feed is stopped.
fn nap(shared: &Shared, d: Duration) {
    let until = Instant::now() + d;
    while !shared.stopped() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::park_timeout(left.min(Duration::from_millis(250)));
    }
}

/// A running feed of one host; dropping it stops the feed (and its ssh).
pub struct RemoteHost {
    config: HostConfig,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl RemoteHost {
    /// Starts reading `config`'s host.
    pub fn start(config: HostConfig) -> Result<Self, String> {
        let endpoint = config.endpoint()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(HostState::new(config.short_name())),
            stop: AtomicBool::new(false),
            child: AtomicU32::new(0),
        });
        let thread_shared = Arc::clone(&shared);
        let token = config.token.clone();
        let thread = std::thread::Builder::new()
            .name(format!("vramdeck-remote-{}", config.short_name()))
            .spawn(move || match endpoint {
                Endpoint::Api(url) => api::run(&url, token.as_deref(), &thread_shared),
                Endpoint::Ssh(target) => ssh::run(&target, &thread_shared),
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(RemoteHost {
            config,
            shared,
            thread: Some(thread),
        })
    }

    /// What the host was added as.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// A copy of what the feed knows now.
    pub fn state(&self) -> HostState {
        self.shared.lock().clone()
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Asks the host to release memory (`level` "cache" or "unload"); the outcome appears in
    /// [`HostState::free`]. Only hosts reached through `vramdeck serve` can.
    pub fn free(&self, level: crate::release::FreeLevel) {
        if let Ok(Endpoint::Api(url)) = self.config.endpoint() {
            api::free(
                url,
                self.config.token.clone(),
                level,
                Arc::clone(&self.shared),
            );
        }
    }
}

impl Drop for RemoteHost {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let child = self.shared.child.load(Ordering::SeqCst);
        crate::platform::process::terminate(child);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // Not joined: a request in flight may take its timeout, the window must not wait.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(address: &str) -> HostConfig {
        HostConfig {
            address: address.into(),
            token: None,
        }
    }

    #[test]
    fn addresses_become_endpoints_or_a_sentence() {
        assert_eq!(
            host("http://box:9401/").endpoint(),
            Ok(Endpoint::Api("http://box:9401".into()))
        );
        assert_eq!(
            host("ssh me@box").endpoint(),
            Ok(Endpoint::Ssh("me@box".into()))
        );
        assert!(host("ssh -oProxyCommand=evil").endpoint().is_err());
        assert!(host("ssh a b").endpoint().is_err());
        assert!(
            host("box:9401")
                .endpoint()
                .unwrap_err()
                .contains("use http://host:9401")
        );
        assert!(host("http://box/?token=x").endpoint().is_err());
        assert_eq!(host("ssh me@gpu-box").short_name(), "gpu-box");
        assert_eq!(host("https://gpu.example/vd").short_name(), "gpu.example");
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let s: Vec<u64> = (1..=8).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(s, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
