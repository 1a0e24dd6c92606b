//! What the server knows and how it answers a request, apart from HTTP itself: routing,
//! the token, read-only mode, rate limits, and the release worker's news.

use super::Policy;
use super::metrics::{self, FreeTotals, ScrapeInput};
use crate::release::FreeLevel;
use crate::release::discovery::LiveAgent;
use crate::release::free::{FreeTarget, Outcome};
use crate::release::worker::{ComfyStatus, ReleaseWorker, WorkerCommand, WorkerEvent};
use crate::remote::wire::{self, SCHEMA};
use crate::telemetry::sampler::{self, SharedTelemetry};
use crate::telemetry::unix_seconds;
use crate::workloads::advisor::{self, Budget};
use crate::workloads::calibration::Calibration;
use crate::workloads::catalogue::Catalogue;
use serde::Serialize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Largest request body accepted (a Free VRAM request is about 40 bytes).
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// Requests per second answered to token holders; more get 429 (a scraper and a few desktops
/// need a handful).
pub const REQUESTS_PER_SECOND: f64 = 50.0;
/// Burst allowance on top of the rate.
pub const REQUEST_BURST: f64 = 100.0;
/// Requests per second answered without the token (refusals, open /metrics): a budget of
/// their own, so a flood without the token never spends the token holder's.
pub const ANONYMOUS_PER_SECOND: f64 = 10.0;
/// Burst allowance without the token.
pub const ANONYMOUS_BURST: f64 = 20.0;
/// The shortest time between two Free VRAM actions: each one makes every agent collect
/// garbage, which costs the WebUI throughput.
pub const FREE_EVERY: Duration = Duration::from_secs(2);
/// How far back `/api/v1/history` reaches.
pub const HISTORY_SECONDS: f64 = 24.0 * 3600.0;

/// One answer.
#[derive(Debug, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
    /// Extra headers (WWW-Authenticate, Retry-After).
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, body: &impl Serialize) -> Self {
        Reply {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(body).unwrap_or_default(),
            headers: Vec::new(),
        }
    }

    fn error(status: u16, error: impl Into<String>) -> Self {
        Reply::json(
            status,
            &wire::ErrorBody {
                schema: SCHEMA.into(),
                error: error.into(),
            },
        )
    }

    fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A request as the router needs it.
#[derive(Debug, Default)]
pub struct Request<'a> {
    /// "GET", "POST", …
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The query string, without '?'.
    pub query: Option<&'a str>,
    /// The Authorization header's value.
    pub authorization: Option<&'a str>,
    /// The Host header's value.
    pub host: Option<&'a str>,
    /// The body (already capped by the HTTP layer).
    pub body: &'a [u8],
}

#[derive(Default)]
struct ReleaseNews {
    agents: Vec<LiveAgent>,
    problems: Vec<String>,
    comfyui: String,
    apps: Vec<crate::release::worker::AppSeen>,
    owners: crate::release::holders::Owners,
    free: wire::FreeStatusBody,
    totals: FreeTotals,
    last_free: Option<Instant>,
}

/// A token bucket: `rate` requests a second, `burst` at once.
struct Bucket {
    tokens: f64,
    at: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Self {
        Bucket {
            tokens: burst,
            at: Instant::now(),
            rate,
            burst,
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Everything a request may read or change.
pub struct ServeState {
    host: String,
    telemetry: SharedTelemetry,
    policy: Policy,
    worker: Mutex<ReleaseWorker>,
    news: Mutex<ReleaseNews>,
    /// Token holders' requests.
    bucket: Mutex<Bucket>,
    /// Everyone else's.
    anonymous: Mutex<Bucket>,
    catalogue: Catalogue,
    calibration: Calibration,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ServeState {
    /// State for a server of `host` reading `telemetry`, relaying frees to `worker`.
    pub fn new(
        host: String,
        telemetry: SharedTelemetry,
        policy: Policy,
        worker: ReleaseWorker,
    ) -> Self {
        let catalogue =
            Catalogue::load(crate::workloads::catalogue::user_presets_path().as_deref());
        let (calibration, _) = crate::workloads::calibration::default_path()
            .map(|p| Calibration::load(&p))
            .unwrap_or_default();
        // Apps that ask for room by preset get the advisor's figure, at its default margin.
        worker.send(crate::release::worker::WorkerCommand::SetPresetNeeds(
            crate::release::arbiter::preset_needs(
                &catalogue,
                &calibration,
                crate::workloads::advisor::DEFAULT_MARGIN_PERCENT,
            ),
        ));
        ServeState {
            host,
            telemetry,
            policy,
            worker: Mutex::new(worker),
            news: Mutex::new(ReleaseNews {
                comfyui: "not looked at yet".into(),
                free: wire::FreeStatusBody {
                    schema: SCHEMA.into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            bucket: Mutex::new(Bucket::new(REQUESTS_PER_SECOND, REQUEST_BURST)),
            anonymous: Mutex::new(Bucket::new(ANONYMOUS_PER_SECOND, ANONYMOUS_BURST)),
            catalogue,
            calibration,
        }
    }

    /// Takes the release worker's events into the state (the pump thread calls it).
    pub fn take_events(&self) {
        let events = locked(&self.worker).poll();
        let mut news = locked(&self.news);
        for event in events {
            match event {
                WorkerEvent::Agents {
                    discovery,
                    comfyui,
                    apps,
                    owners,
                } => {
                    news.apps = apps;
                    news.owners = owners;
                    news.agents = discovery.agents;
                    news.problems = discovery.problems;
                    news.comfyui = match comfyui {
                        ComfyStatus::BadAddress(e) => format!("not asked: {e}"),
                        ComfyStatus::NotRunning(e) => format!("not running: {e}"),
                        ComfyStatus::Running { at, .. } => format!("running at {at}"),
                    };
                }
                // Said where the box's owner reads the service's log.
                WorkerEvent::RoomMade(made) => eprintln!("vramdeck serve: {}", made.message),
                WorkerEvent::HandedBack(back) => eprintln!("vramdeck serve: {}", back.summary()),
                // Serve refuses the Ask policy at start: nobody is there to answer.
                WorkerEvent::RoomAsked(_) => {}
                WorkerEvent::Freed(report) => {
                    let outcome = report.outcome();
                    let measured = report.measured_release();
                    news.free = wire::FreeStatusBody {
                        schema: SCHEMA.into(),
                        running: outcome == Outcome::Pending,
                        summary: Some(crate::text::sanitized(&report.summary())),
                        outcome: Some(
                            match outcome {
                                Outcome::Released => "released",
                                Outcome::Nothing => "nothing",
                                Outcome::Pending => "pending",
                                Outcome::Failed => "failed",
                            }
                            .into(),
                        ),
                        measured_release: measured
                            .map(|m| m.clamp(i64::MIN as i128, i64::MAX as i128) as i64),
                        started: Some(unix_seconds(report.at)),
                    };
                    if outcome != Outcome::Pending {
                        news.totals.actions += 1;
                        if let Some(m) = measured.filter(|m| *m > 0) {
                            news.totals.released_bytes = news
                                .totals
                                .released_bytes
                                .saturating_add(m.min(u64::MAX as i128) as u64);
                        }
                    }
                }
            }
        }
    }

    /// True when `authorization` carries this server's token (`Bearer`, any case).
    pub fn authorized(&self, authorization: Option<&str>) -> bool {
        let Some(token) = &self.policy.token else {
            return false;
        };
        authorization
            .and_then(|h| h.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .is_some_and(|(_, given)| super::token::matches(given.trim(), token))
    }

    /// True when `host` (a Host header) names this server: an IP address, localhost, the box's
    /// name or one given with `--allow-host`. A web page that rebinds its own name to this
    /// box still sends its own name, and is refused.
    fn answers_to(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return true; // HTTP/1.0 without Host: no browser sends that
        };
        let host = host.trim();
        let name = if let Some(rest) = host.strip_prefix('[') {
            // [v6]:port
            return rest
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
        } else {
            host.rsplit_once(':')
                .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                .map_or(host, |(name, _)| name)
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<std::net::Ipv4Addr>().is_ok()
            || name == "localhost"
            || self.policy.host_names.contains(&name)
    }

    /// Answers one request.
    pub fn respond(&self, request: &Request) -> Reply {
        if !self.answers_to(request.host) {
            return Reply::error(
                421,
                format!(
                    "this server does not answer to {:?}: ask for it by IP address, localhost or \
                     its name; behind a proxy that forwards another name, start it with \
                     --allow-host NAME",
                    crate::text::sanitize(request.host.unwrap_or_default())
                ),
            );
        }
        // Who asks decides whose budget the request spends, so a flood without the token never
        // starves the token holder (checking the token costs less than answering).
        let authorized = self.authorized(request.authorization);
        let admitted = if authorized {
            locked(&self.bucket).take()
        } else {
            locked(&self.anonymous).take()
        };
        if !admitted {
            return Reply::error(429, "too many requests; slow down")
                .with_header("Retry-After", "1");
        }
        if let Some(q) = request.query
            && q.split('&').any(|kv| {
                let key = kv.split('=').next().unwrap_or("").to_ascii_lowercase();
                key.contains("token") || key == "auth" || key == "key"
            })
        {
            return Reply::error(
                400,
                "a token in the URL is refused: URLs end up in logs and shell history. Send it \
                 as a header: Authorization: Bearer <token>",
            );
        }
        // HEAD is GET without the body (hyper leaves the body out).
        let method = match request.method {
            "HEAD" => "GET",
            m => m,
        };
        let action = method != "GET";
        let metrics = request.path == "/metrics";
        if !authorized && (!metrics || self.policy.metrics_need_token) {
            return unauthorized(match (&self.policy.token, metrics, action) {
                (None, _, _) => {
                    "this server runs with --no-token: only /metrics is served; start it \
                     without --no-token for the API"
                }
                (Some(_), _, true) => {
                    "Free VRAM needs the token (`vramdeck serve --print-token` on the box)"
                }
                (Some(_), true, false) => {
                    "/metrics needs the token (Authorization: Bearer …); on loopback, \
                     --metrics-without-token opens it to this machine's users"
                }
                (Some(_), false, false) => {
                    "the API needs the token on every address (`vramdeck serve --print-token` \
                     on the box)"
                }
            });
        }
        if action && self.policy.readonly {
            return Reply::error(
                403,
                "this server is read-only (--readonly or --no-token): actions are off",
            );
        }
        match (method, request.path) {
            ("GET", "/metrics") => self.metrics(),
            ("GET", "/api/v1") | ("GET", "/api/v1/") => Reply::json(
                200,
                &serde_json::json!({
                    "schema": SCHEMA,
                    "host": self.host,
                    "version": env!("CARGO_PKG_VERSION"),
                    "endpoints": ["/api/v1/snapshot", "/api/v1/history?since=T", "/api/v1/agents",
                                  "/api/v1/presets", "/api/v1/free", "/metrics"],
                    "readonly": self.policy.readonly,
                }),
            ),
            ("GET", "/api/v1/snapshot") => Reply::json(200, &self.snapshot()),
            ("GET", "/api/v1/history") => match history_since(request.query) {
                Ok(since) => Reply::json(200, &self.history(since)),
                Err(e) => Reply::error(400, e),
            },
            ("GET", "/api/v1/agents") => Reply::json(200, &self.agents()),
            ("GET", "/api/v1/presets") => Reply::json(200, &self.presets()),
            ("GET", "/api/v1/free") => Reply::json(200, &locked(&self.news).free),
            ("POST", "/api/v1/free") => self.free(request.body),
            (
                _,
                "/metrics" | "/api/v1/snapshot" | "/api/v1/history" | "/api/v1/agents"
                | "/api/v1/presets" | "/api/v1/free",
            ) => Reply::error(
                405,
                format!(
                    "{} is not allowed here",
                    crate::text::sanitize(request.method)
                ),
            ),
            _ => Reply::error(404, "no such endpoint; GET /api/v1 lists them"),
        }
    }

    fn metrics(&self) -> Reply {
        let (snapshot, read_seconds) = {
            let t = sampler::lock(&self.telemetry);
            (t.latest.clone(), t.last_read_cost.as_secs_f64())
        };
        let news = locked(&self.news);
        let text = metrics::render(&ScrapeInput {
            host: &self.host,
            snapshot: snapshot.as_ref(),
            agents: &news.agents,
            free: news.totals,
            read_seconds,
        });
        Reply {
            status: 200,
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body: text.into_bytes(),
            headers: Vec::new(),
        }
    }

    /// The body of `/api/v1/snapshot`.
    pub fn snapshot(&self) -> wire::SnapshotBody {
        let t = sampler::lock(&self.telemetry);
        wire::SnapshotBody {
            schema: SCHEMA.into(),
            host: self.host.clone(),
            time: t.latest.as_ref().map(|s| s.unix_seconds()),
            interval_ms: t.interval.as_millis() as u64,
            source: t.source.describe(),
            simulated: t.source.is_simulated(),
            error: t.last_error.clone(),
            gpus: t
                .latest
                .as_ref()
                .map(|s| s.gpus.clone())
                .unwrap_or_default(),
        }
    }

    fn history(&self, since: Option<f64>) -> wire::HistoryBody {
        let t = sampler::lock(&self.telemetry);
        let now = unix_seconds(SystemTime::now());
        let since = since.unwrap_or(now - 600.0).max(now - HISTORY_SECONDS);
        let gpus = (0..t.history.gpu_count())
            .map(|slot| wire::GpuHistoryBody {
                slot,
                points: t
                    .history
                    .readings(slot, since, now + 1.0)
                    .into_iter()
                    .filter(|(time, _)| *time > since)
                    .map(|(time, values)| wire::HistoryPoint { time, values })
                    .collect(),
            })
            .collect();
        wire::HistoryBody {
            schema: SCHEMA.into(),
            gpus,
        }
    }

    fn agents(&self) -> wire::AgentsBody {
        // The telemetry lock is let go before the news lock is taken (never both at once).
        let processes: Vec<crate::telemetry::ProcessInfo> = sampler::lock(&self.telemetry)
            .latest
            .iter()
            .flat_map(|s| s.gpus.iter().flat_map(|g| g.processes.iter().cloned()))
            .collect();
        let news = locked(&self.news);
        wire::AgentsBody {
            schema: SCHEMA.into(),
            agents: news
                .agents
                .iter()
                .map(|a| wire::AgentBody {
                    pid: a.endpoint.pid,
                    process_name: a.info.process_name.clone(),
                    label: a.info.label.clone(),
                    allocated: a.info.allocated,
                    reserved: a.info.reserved,
                    levels: a.info.levels.clone(),
                })
                .collect(),
            problems: news.problems.clone(),
            comfyui: news.comfyui.clone(),
            apps: news
                .apps
                .iter()
                .filter_map(|a| a.state.as_ref().ok())
                .map(|s| wire::AppBody {
                    app: s.target.clone(),
                    holds: s
                        .holds
                        .iter()
                        .map(|h| wire::HoldingBody {
                            what: h.what.clone(),
                            vram: h.vram,
                            host: h.host,
                        })
                        .collect(),
                    busy: s.busy.clone(),
                    engine: s.kind.key().to_string(),
                    asleep: s.asleep,
                    note: s.note.clone(),
                    pid: s.pid,
                })
                .collect(),
            holders: processes
                .iter()
                .map(|p| wire::HolderBody {
                    pid: p.pid,
                    name: p.name.clone(),
                    vram: p.used.map(|b| b.0),
                    app: news.owners.describe(p.pid, &p.name),
                })
                .collect(),
        }
    }

    fn presets(&self) -> wire::PresetsBody {
        let gpus = sampler::lock(&self.telemetry)
            .latest
            .as_ref()
            .map(|s| s.gpus.clone())
            .unwrap_or_default();
        wire::PresetsBody {
            schema: SCHEMA.into(),
            gpus: gpus
                .iter()
                .filter(|g| !g.asleep)
                .map(|g| {
                    let budget = Budget::new(
                        g.memory.free,
                        g.memory.total,
                        advisor::DEFAULT_MARGIN_PERCENT,
                    );
                    wire::GpuPresetsBody {
                        index: g.index,
                        margin_percent: budget.margin_percent,
                        verdicts: advisor::advise(&self.catalogue, &budget, &self.calibration)
                            .into_iter()
                            .map(|a| wire::VerdictBody {
                                id: a.id,
                                name: a.name,
                                fit: a.fit.label().into(),
                                peak_mib: a.peak_mib,
                                needs_mib: a.needs_mib,
                                max_concurrent: a.max_concurrent,
                                fallback: a.fallback,
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }

    fn free(&self, body: &[u8]) -> Reply {
        let request: wire::FreeRequestBody = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return Reply::error(
                    400,
                    format!("expected {{\"level\": \"cache\" | \"unload\", \"pid\": N}}: {e}"),
                );
            }
        };
        let level = match request.level.as_str() {
            "cache" => FreeLevel::Cache,
            "unload" => FreeLevel::Unload,
            _ => return Reply::error(400, "level is \"cache\" or \"unload\""),
        };
        let mut news = locked(&self.news);
        if news.free.running {
            return Reply::error(
                409,
                "a release is still running or waiting; GET /api/v1/free follows it",
            );
        }
        if news.last_free.is_some_and(|t| t.elapsed() < FREE_EVERY) {
            return Reply::error(429, "one Free VRAM every 2 seconds")
                .with_header("Retry-After", "2");
        }
        news.last_free = Some(Instant::now());
        news.free = wire::FreeStatusBody {
            schema: SCHEMA.into(),
            running: true,
            summary: Some("Releasing…".into()),
            outcome: None,
            measured_release: None,
            started: Some(unix_seconds(SystemTime::now())),
        };
        let status = news.free.clone();
        drop(news);
        let target = match request.pid {
            Some(pid) => FreeTarget::Agent(pid),
            None => FreeTarget::All,
        };
        locked(&self.worker).send(WorkerCommand::Free(target, level));
        Reply::json(202, &status)
    }
}

fn unauthorized(why: &str) -> Reply {
    Reply::error(401, why).with_header("WWW-Authenticate", "Bearer realm=\"vramdeck\"")
}

fn history_since(query: Option<&str>) -> Result<Option<f64>, String> {
    let Some(q) = query else { return Ok(None) };
    for kv in q.split('&') {
        if let Some(v) = kv.strip_prefix("since=") {
            let since: f64 = v.parse().map_err(|_| {
                "since is seconds since the UNIX epoch, e.g. since=1763860000.5".to_string()
            })?;
            if !since.is_finite() {
                return Err("since must be a finite number".into());
            }
            return Ok(Some(since));
        }
    }
    Ok(None)
}

/// Moves the release worker's events into the state every 200 ms, for as long as the state
/// lives.
pub fn spawn_event_pump(state: Arc<ServeState>) {
    let weak = Arc::downgrade(&state);
    drop(state);
    let _ = std::thread::Builder::new()
        .name("vramdeck-serve-events".into())
        .spawn(move || {
            while let Some(state) = weak.upgrade() {
                state.take_events();
                drop(state);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
}
