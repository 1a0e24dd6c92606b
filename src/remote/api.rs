//! The feed of a host running `vramdeck serve`: polls its snapshot at the host's own pace and,
//! after a gap (or on first contact), fetches the readings it missed from the host's history.

use super::wire::{self, SCHEMA};
use super::{Backfill, HostStatus, Shared, gpu_key, nap};
use crate::telemetry::history::Values;
use crate::telemetry::{RemoteOrigin, unix_seconds};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// One request's whole time, connect to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (a day of history for 8 GPUs is well below it).
const MAX_ANSWER_BYTES: u64 = 32 << 20;
/// How far back the first contact fills history.
const FIRST_BACKFILL_SECONDS: f64 = 24.0 * 3600.0;
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

/// GETs `url` as JSON of type `T`, with the token if there is one.
fn get<T: serde::de::DeserializeOwned>(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
) -> Result<T, String> {
    let mut request = agent.get(url);
    if let Some(t) = token {
        request = request.header("Authorization", format!("Bearer {t}"));
    }
    let mut response = request.call().map_err(|e| e.to_string())?;
    read(&mut response)
}

fn read<T: serde::de::DeserializeOwned>(
    response: &mut ureq::http::Response<ureq::Body>,
) -> Result<T, String> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if !(200..300).contains(&status) {
        let said = serde_json::from_str::<wire::ErrorBody>(&text)
            .map(|e| e.error)
            .unwrap_or_else(|_| text.chars().take(200).collect());
        return Err(match status {
            401 => format!("the token was refused (HTTP 401): {said}"),
            _ => format!("HTTP {status}: {said}"),
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("not vramdeck's JSON: {e}"))?;
    if value.get("schema").and_then(|s| s.as_str()) != Some(SCHEMA) {
        return Err(format!(
            "the host speaks {}, this vramdeck reads {SCHEMA}: update the older one",
            value
                .get("schema")
                .map(|s| s.to_string())
                .unwrap_or_else(|| "no vramdeck schema".into())
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("not vramdeck's JSON: {e}"))
}

/// The feed's loop; returns when the host is removed.
pub(super) fn run(url: &str, token: Option<&str>, shared: &Shared) {
    let agent = agent();
    let mut failures = 0u32;
    // Newest reading time per GPU key: where a back-fill starts.
    let mut seen_until: Option<f64> = None;
    let mut gap = true;
    while !shared.stopped() {
        let started = Instant::now();
        match get::<wire::SnapshotBody>(&agent, &format!("{url}/api/v1/snapshot"), token) {
            Ok(body) => {
                failures = 0;
                if gap {
                    let since = seen_until.unwrap_or_else(|| {
                        unix_seconds(SystemTime::now()) - FIRST_BACKFILL_SECONDS
                    });
                    // A missing back-fill is a gap in the plot, not a reason to stop.
                    if let Ok(history) = get::<wire::HistoryBody>(
                        &agent,
                        &format!("{url}/api/v1/history?since={since:.3}"),
                        token,
                    ) {
                        let backfill = to_backfill(&body, &history, body.time);
                        shared.lock().backfill.extend(backfill);
                    }
                    gap = false;
                }
                seen_until = body.time.or(seen_until);
                let interval = Duration::from_millis(body.interval_ms.clamp(100, 5_000));
                let mut state = shared.lock();
                state.name = crate::text::sanitized(&body.host);
                state.interval = interval.max(Duration::from_millis(500));
                state.status = HostStatus::Live;
                state.can_free = token.is_some();
                state.note = body
                    .simulated
                    .then(|| format!("{} runs demo GPUs ({})", body.host, body.source))
                    .or(body.error.clone());
                state.gpus = body
                    .gpus
                    .into_iter()
                    .map(|mut g| {
                        g.name = crate::text::sanitized(&g.name);
                        for p in &mut g.processes {
                            p.name = crate::text::sanitized(&p.name);
                        }
                        g.remote = Some(RemoteOrigin {
                            host: crate::text::sanitized(&body.host),
                            index: g.index,
                            stale_seconds: None,
                        });
                        g
                    })
                    .collect();
                state.last_reading = Some(Instant::now());
                let wait = state.interval.saturating_sub(started.elapsed());
                drop(state);
                nap(shared, wait);
            }
            Err(e) => {
                gap = true;
                let wait = shared.failed(e, &mut failures);
                nap(shared, wait);
            }
        }
    }
}

/// The history answer as back-fill for the GPUs of `snapshot`, only readings older than the
/// snapshot's own (which arrives as a live reading).
fn to_backfill(
    snapshot: &wire::SnapshotBody,
    history: &wire::HistoryBody,
    until: Option<f64>,
) -> Vec<Backfill> {
    let until = until.unwrap_or(f64::INFINITY);
    history
        .gpus
        .iter()
        .filter_map(|h| {
            let g = snapshot.gpus.get(h.slot)?;
            let points = h
                .points
                .iter()
                .filter_map(|p| {
                    let t = p[0].filter(|t| *t < until)?;
                    let v = |i: usize| p[i].map_or(f32::NAN, |x| x as f32);
                    Some((t, Values([v(1), v(2), v(3), v(4), v(5)])))
                })
                .collect::<Vec<_>>();
            (!points.is_empty()).then(|| Backfill {
                key: gpu_key(g),
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
        summary: Some("Asking the host…".into()),
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
                .map_err(|e| e.to_string())
                .and_then(|mut r| read::<wire::FreeStatusBody>(&mut r));
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
