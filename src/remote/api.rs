//! The feed of a host running `vramdeck serve`: polls its snapshot at the host's own pace and,
//! after a gap (or on first contact), fetches the readings it missed from the host's history.

use super::bounds::{GpuIds, MAX_GPUS_PER_HOST, plausible_time};
use super::wire::{self, SCHEMA};
use super::{Backfill, HostStatus, Shared, gpu_key, nap};
use crate::telemetry::{RemoteOrigin, unix_seconds};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// One request's whole time, connect to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest snapshot read: 16 GPUs with hundreds of processes each take well under 1 MiB.
const MAX_SNAPSHOT_BYTES: u64 = 4 << 20;
/// The largest history answer read (a day of history for 8 GPUs is about 6 MiB).
const MAX_HISTORY_BYTES: u64 = 32 << 20;
/// The largest answer to anything else (Free VRAM status, errors).
const MAX_SMALL_BYTES: u64 = 64 << 10;
/// How far back the first contact fills history.
const FIRST_BACKFILL_SECONDS: f64 = 24.0 * 3600.0;
/// The fastest pace a box samples at (serve's `--interval-ms` floor): what a gap can hold.
const FASTEST_SAMPLE_SECONDS: f64 = 0.1;
/// Bytes one history point takes on the wire, at most (`[t, five values]` with full digits).
const POINT_BYTES: u64 = 160;
/// How long a deferred release (ComfyUI busy with a prompt) is followed.
const FOLLOW_FREE: Duration = Duration::from_secs(15 * 60);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        // A redirect could carry the token to another host.
        .max_redirects(0)
        .user_agent(concat!("vramdeck/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// GETs `url` as JSON of type `T` (at most `limit` bytes), with the token if there is one.
fn get<T: serde::de::DeserializeOwned>(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    limit: u64,
) -> Result<T, String> {
    let mut request = agent.get(url);
    if let Some(t) = token {
        request = request.header("Authorization", format!("Bearer {t}"));
    }
    let mut response = request.call().map_err(in_words)?;
    read(&mut response, limit)
}

/// A failed request in the user's words: "timeout: global" says nothing to someone watching a
/// box across the room.
pub fn in_words(e: ureq::Error) -> String {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Timeout(_) => crate::t!("remote-err-timeout"),
        ureq::Error::HostNotFound => crate::t!("remote-err-no-host"),
        ureq::Error::ConnectionFailed => crate::t!("remote-err-connect"),
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => crate::t!("remote-err-refused"),
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::UnexpectedEof => {
                crate::t!("remote-err-dropped")
            }
            ErrorKind::TimedOut => crate::t!("remote-err-timeout"),
            _ => io.to_string(),
        },
        ureq::Error::BodyStalled => crate::t!("remote-err-timeout"),
        e => e.to_string(),
    }
}

/// Reads an answer of at most `limit` bytes straight into `T` (never into generic JSON
/// values, which cost many times the text), after checking its schema.
fn read<T: serde::de::DeserializeOwned>(
    response: &mut ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<T, String> {
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: Option<String>,
    }
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => {
                crate::t!("remote-too-large", limit = limit.to_string())
            }
            e => e.to_string(),
        })?;
    if !(200..300).contains(&status) {
        let said = serde_json::from_slice::<wire::ErrorBody>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        return Err(match status {
            401 => format!(
                "the token was refused (HTTP 401): {said}. `vramdeck serve --print-token` on \
                 the box shows it"
            ),
            _ => format!("HTTP {status}: {said}"),
        });
    }
    let schema = serde_json::from_slice::<Schema>(&bytes)
        .map_err(|e| format!("not vramdeck's JSON: {e}"))?
        .schema;
    if schema.as_deref() != Some(SCHEMA) {
        return Err(crate::t!(
            "remote-schema",
            theirs = schema.map_or_else(|| crate::t!("remote-no-schema"), |s| format!("{s:?}")),
            ours = SCHEMA
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("not vramdeck's JSON: {e}"))
}

/// What a back-fill of `gap_seconds` for `gpus` GPUs can honestly take on the wire: the
/// points a box sampling at its fastest pace collects in the gap (a day of buckets at most).
fn backfill_limit(gpus: usize, gap_seconds: f64) -> u64 {
    let points = (gap_seconds.max(0.0) / FASTEST_SAMPLE_SECONDS + 64.0)
        .min(wire::MAX_HISTORY_POINTS as f64) as u64;
    (64u64 << 10)
        .saturating_add(
            (gpus.max(1) as u64)
                .saturating_mul(points)
                .saturating_mul(POINT_BYTES),
        )
        .min(MAX_HISTORY_BYTES)
}

/// The feed's loop; returns when the host is removed.
pub(super) fn run(url: &str, token: Option<&str>, shared: &Shared) {
    let agent = agent();
    let mut failures = 0u32;
    let mut ids = GpuIds::default();
    // The newest reading's time: where a back-fill starts.
    let mut seen_until: Option<f64> = None;
    let mut gap = true;
    while !shared.stopped() {
        let started = Instant::now();
        let snapshot = get::<wire::SnapshotBody>(
            &agent,
            &format!("{url}/api/v1/snapshot"),
            token,
            MAX_SNAPSHOT_BYTES,
        );
        let mut body = match snapshot {
            Ok(body) => body,
            Err(e) => {
                gap = true;
                let wait = shared.failed(e, &mut failures);
                nap(shared, wait);
                continue;
            }
        };
        failures = 0;
        let now = unix_seconds(SystemTime::now());
        body.time = body.time.and_then(|t| plausible_time(t, now));
        let more_than_cap = body.gpus.len() > MAX_GPUS_PER_HOST;
        let keys: Vec<String> = body.gpus.iter().map(gpu_key).collect();
        let admitted = ids.admit(std::mem::take(&mut body.gpus), more_than_cap);
        if let Some(why) = ids.refused() {
            shared.refuse(why);
            return;
        }
        if gap {
            let since = seen_until
                .unwrap_or(now - FIRST_BACKFILL_SECONDS)
                .max(now - FIRST_BACKFILL_SECONDS);
            let limit = backfill_limit(admitted.gpus.len(), now - since);
            // A missing back-fill is a gap in the plot, not a reason to stop.
            if let Ok(history) = get::<wire::HistoryBody>(
                &agent,
                &format!("{url}/api/v1/history?since={since:.3}"),
                token,
                limit,
            ) {
                let backfill = to_backfill(&keys, &admitted.gpus, &history, since, body.time, now);
                shared.lock().backfill.extend(backfill);
            }
            gap = false;
        }
        seen_until = body.time.or(seen_until);
        let interval = Duration::from_millis(body.interval_ms.clamp(100, 5_000));
        let host = crate::text::sanitized(&body.host);
        let mut state = shared.lock();
        state.name = host.clone();
        state.interval = interval.max(Duration::from_millis(500));
        state.status = HostStatus::Live;
        state.can_free = token.is_some();
        state.note = body
            .simulated
            .then(|| {
                crate::t!(
                    "remote-demo-gpus",
                    host = host.to_string(),
                    source = crate::text::sanitize(&body.source).to_string()
                )
            })
            .or(body.error.as_deref().map(crate::text::sanitized));
        state.problem = admitted.problem;
        state.gpus = admitted
            .gpus
            .into_iter()
            .map(|mut g| {
                g.name = crate::text::sanitized(&g.name);
                for p in &mut g.processes {
                    p.name = crate::text::sanitized(&p.name);
                }
                g.remote = Some(RemoteOrigin {
                    host: host.clone(),
                    index: g.index,
                    ..Default::default()
                });
                g
            })
            .collect();
        state.last_reading = Some(Instant::now());
        let wait = state.interval.saturating_sub(started.elapsed());
        drop(state);
        nap(shared, wait);
    }
}

/// The history answer as back-fill for the `admitted` GPUs (`keys` are the snapshot's GPU
/// keys by slot): only readings after `since`, older than the snapshot's own (which arrives
/// as a live reading) and within a plausible window around `now`.
fn to_backfill(
    keys: &[String],
    admitted: &[crate::telemetry::GpuSample],
    history: &wire::HistoryBody,
    since: f64,
    until: Option<f64>,
    now: f64,
) -> Vec<Backfill> {
    let until = until.unwrap_or(now);
    history
        .gpus
        .iter()
        .filter_map(|h| {
            let key = keys.get(h.slot)?;
            if !admitted.iter().any(|g| gpu_key(g) == *key) {
                return None;
            }
            let points = h
                .points
                .iter()
                .filter(|p| {
                    p.time > since && p.time < until && plausible_time(p.time, now).is_some()
                })
                .map(|p| (p.time, p.values))
                .collect::<Vec<_>>();
            (!points.is_empty()).then(|| Backfill {
                key: key.clone(),
                points,
            })
        })
        .collect()
}

/// Posts a Free VRAM to the host and follows it until the host reports an outcome.
pub(super) fn free(
    url: String,
    token: Option<String>,
    level: crate::release::FreeLevel,
    shared: Arc<Shared>,
) {
    shared.lock().free = Some(wire::FreeStatusBody {
        schema: SCHEMA.into(),
        running: true,
        summary: Some(crate::t!("remote-asking")),
        ..Default::default()
    });
    let _ = std::thread::Builder::new()
        .name("vramdeck-remote-free".into())
        .spawn(move || {
            let agent = agent();
            let set = |status: wire::FreeStatusBody| shared.lock().free = Some(status);
            let failed = |error: String| wire::FreeStatusBody {
                schema: SCHEMA.into(),
                running: false,
                summary: Some(crate::text::sanitized(&error)),
                outcome: Some("failed".into()),
                ..Default::default()
            };
            let mut request = agent.post(&format!("{url}/api/v1/free"));
            if let Some(t) = &token {
                request = request.header("Authorization", format!("Bearer {t}"));
            }
            let body = serde_json::json!({ "level": level.as_str() }).to_string();
            let accepted = request
                .content_type("application/json")
                .send(body.as_str())
                .map_err(in_words)
                .and_then(|mut r| read::<wire::FreeStatusBody>(&mut r, MAX_SMALL_BYTES));
            if let Err(e) = accepted {
                set(failed(e));
                return;
            }
            let until = Instant::now() + FOLLOW_FREE;
            while Instant::now() < until && !shared.stopped() {
                std::thread::sleep(Duration::from_millis(500));
                match get::<wire::FreeStatusBody>(
                    &agent,
                    &format!("{url}/api/v1/free"),
                    token.as_deref(),
                    MAX_SMALL_BYTES,
                ) {
                    Ok(mut status) => {
                        status.summary = status.summary.map(|s| crate::text::sanitized(&s));
                        let done = !status.running;
                        set(status);
                        if done {
                            return;
                        }
                    }
                    Err(e) => {
                        set(failed(e));
                        return;
                    }
                }
            }
        });
}
