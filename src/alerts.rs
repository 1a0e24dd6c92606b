//! Alerts: VRAM above N % for T seconds, temperature above X, a process appearing or leaving,
//! a job spilling into system memory (Windows' sysmem fallback, see `diagnosis::spill`).
//! Each fires once when its condition starts and re-arms only after it clears (with a little
//! hysteresis), so a value hovering at the threshold does not spam.

use crate::telemetry::Snapshot;
use crate::telemetry::sampler::ReadingObserver;
use crate::units::{Bytes, Celsius, MemoryUnit};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Events kept for markers and the log.
pub const RECENT_EVENTS: usize = 200;
/// How far back the spill rule looks, seconds (and at most this many readings).
pub const SPILL_WINDOW: f64 = 30.0;
const SPILL_READINGS: usize = 600;

/// The user's alert rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertRules {
    /// Alerts on at all.
    pub enabled: bool,
    /// VRAM threshold, percent of the card.
    pub vram_percent: f32,
    /// How long VRAM must stay above it, seconds.
    pub vram_seconds: f32,
    /// Temperature threshold, °C.
    pub temperature_c: f32,
    /// Tell when a process starts or stops using a GPU.
    pub process_changes: bool,
    /// Also send desktop notifications.
    pub desktop_notifications: bool,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            enabled: true,
            vram_percent: 90.0,
            vram_seconds: 10.0,
            temperature_c: 85.0,
            process_changes: true,
            desktop_notifications: true,
        }
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// VRAM stayed above the threshold.
    VramHigh,
    /// Temperature crossed the threshold.
    TemperatureHigh,
    /// A process started using the GPU.
    ProcessStarted,
    /// A process stopped using the GPU.
    ProcessExited,
    /// VRAM is full and a job spills into system memory.
    SystemMemoryFallback,
}

impl AlertKind {
    /// A few words for a plot legend.
    pub fn short(self) -> String {
        match self {
            AlertKind::VramHigh => crate::t!("alert-short-vram"),
            AlertKind::TemperatureHigh => crate::t!("alert-short-temperature"),
            AlertKind::ProcessStarted => crate::t!("alert-short-started"),
            AlertKind::ProcessExited => crate::t!("alert-short-exited"),
            AlertKind::SystemMemoryFallback => crate::t!("alert-short-spill"),
        }
    }
}

/// What an alert says, kept as numbers so it is written in the unit the user chose.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertDetail {
    /// VRAM stayed above `percent` for `seconds`: `used` of `total`.
    VramHigh {
        /// Threshold, percent.
        percent: f32,
        /// Duration, seconds.
        seconds: f32,
        /// Used when it fired.
        used: Bytes,
        /// Installed.
        total: Bytes,
    },
    /// Temperature `now` at or above `limit`, °C.
    TemperatureHigh {
        /// Reading.
        now: Celsius,
        /// Threshold.
        limit: f32,
    },
    /// A process started, holding `used` (when reported).
    ProcessStarted {
        /// Process name.
        name: String,
        /// Process id.
        pid: u32,
        /// Memory it held when first seen.
        used: Option<Bytes>,
    },
    /// A job spills into system memory: a process's shared GPU memory rose by `grew` to
    /// `shared` while VRAM was full.
    SystemMemoryFallback {
        /// The rise.
        grew: Bytes,
        /// Held now.
        shared: Bytes,
    },
    /// A process stopped using the GPU.
    ProcessExited {
        /// Process name.
        name: String,
        /// Process id.
        pid: u32,
    },
}

/// One alert.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertEvent {
    /// When (UNIX seconds).
    pub t: f64,
    /// GPU index (its place in the window).
    pub gpu: u32,
    /// How the window names the GPU ("GPU 0", "gpu-box · GPU 1").
    pub gpu_title: String,
    /// What.
    pub kind: AlertKind,
    /// Its numbers.
    pub detail: AlertDetail,
}

impl AlertEvent {
    fn new(t: f64, g: &crate::telemetry::GpuSample, detail: AlertDetail) -> Self {
        let kind = match detail {
            AlertDetail::VramHigh { .. } => AlertKind::VramHigh,
            AlertDetail::TemperatureHigh { .. } => AlertKind::TemperatureHigh,
            AlertDetail::ProcessStarted { .. } => AlertKind::ProcessStarted,
            AlertDetail::ProcessExited { .. } => AlertKind::ProcessExited,
            AlertDetail::SystemMemoryFallback { .. } => AlertKind::SystemMemoryFallback,
        };
        AlertEvent {
            t,
            gpu: g.index,
            gpu_title: g.title(),
            kind,
            detail,
        }
    }

    /// The alert as a sentence, memory in `unit`.
    pub fn message(&self, unit: MemoryUnit) -> String {
        let gpu = self.gpu_title.clone();
        match &self.detail {
            AlertDetail::VramHigh {
                percent,
                seconds,
                used,
                total,
            } => crate::t!(
                "alert-vram",
                gpu = gpu,
                percent = format!("{percent:.0}"),
                seconds = format!("{seconds:.0}"),
                used = unit.format(*used),
                total = unit.format(*total)
            ),
            AlertDetail::TemperatureHigh { now, limit } => crate::t!(
                "alert-temperature",
                gpu = gpu,
                now = now.to_string(),
                limit = format!("{limit:.0}")
            ),
            AlertDetail::ProcessStarted { name, pid, used } => match used {
                Some(b) => crate::t!(
                    "alert-started-with",
                    gpu = gpu,
                    name = name.clone(),
                    pid = pid.to_string(),
                    used = unit.format(*b)
                ),
                None => crate::t!(
                    "alert-started",
                    gpu = gpu,
                    name = name.clone(),
                    pid = pid.to_string()
                ),
            },
            AlertDetail::ProcessExited { name, pid } => crate::t!(
                "alert-exited",
                gpu = gpu,
                name = name.clone(),
                pid = pid.to_string()
            ),
            AlertDetail::SystemMemoryFallback { grew, shared } => crate::t!(
                "alert-spill",
                gpu = gpu,
                grew = unit.format(*grew),
                shared = unit.format(*shared)
            ),
        }
    }
}

/// Evaluates rules over successive snapshots.
#[derive(Clone, Debug, Default)]
pub struct AlertEngine {
    vram_high_since: HashMap<u32, f64>,
    /// The last [`SPILL_WINDOW`] seconds of each GPU, for the spill rule.
    spill_window: HashMap<u32, VecDeque<crate::telemetry::activity::ActivitySample>>,
    firing: HashSet<(u32, AlertKind)>,
    processes: HashMap<u32, HashMap<u32, String>>,
    recent: VecDeque<AlertEvent>,
    total: u64,
}

impl AlertEngine {
    /// Looks at a new snapshot; returns the alerts it raised.
    pub fn observe(&mut self, snapshot: &Snapshot, rules: &AlertRules) -> Vec<AlertEvent> {
        if !rules.enabled {
            self.firing.clear();
            self.vram_high_since.clear();
            return Vec::new();
        }
        let t = snapshot.unix_seconds();
        let mut events = Vec::new();
        // A sleeping GPU was not read: its empty readings are not news.
        for g in snapshot.gpus.iter().filter(|g| g.is_current()) {
            let percent = g.memory.used_fraction() * 100.0;
            let vram_key = (g.index, AlertKind::VramHigh);
            if percent >= rules.vram_percent {
                let since = *self.vram_high_since.entry(g.index).or_insert(t);
                if t - since >= rules.vram_seconds as f64 && self.firing.insert(vram_key) {
                    events.push(AlertEvent::new(
                        t,
                        g,
                        AlertDetail::VramHigh {
                            percent: rules.vram_percent,
                            seconds: rules.vram_seconds,
                            used: g.memory.used,
                            total: g.memory.total,
                        },
                    ));
                }
            } else if percent < rules.vram_percent - 2.0 {
                self.vram_high_since.remove(&g.index);
                self.firing.remove(&vram_key);
            }
            if let Some(event) = self.watch_spill(t, g) {
                events.push(event);
            }
            if let Some(temp) = g.temperature {
                let key = (g.index, AlertKind::TemperatureHigh);
                if temp.0 >= rules.temperature_c {
                    if self.firing.insert(key) {
                        events.push(AlertEvent::new(
                            t,
                            g,
                            AlertDetail::TemperatureHigh {
                                now: temp,
                                limit: rules.temperature_c,
                            },
                        ));
                    }
                } else if temp.0 < rules.temperature_c - 3.0 {
                    self.firing.remove(&key);
                }
            }
            let now: HashMap<u32, String> = g
                .processes
                .iter()
                .map(|p| (p.pid, p.name.clone()))
                .collect();
            // The first look only learns what is running; it is not news.
            if let Some(before) = self.processes.insert(g.index, now.clone())
                && rules.process_changes
            {
                for (pid, name) in now.iter().filter(|(pid, _)| !before.contains_key(pid)) {
                    let used = g
                        .processes
                        .iter()
                        .find(|p| p.pid == *pid)
                        .and_then(|p| p.used);
                    events.push(AlertEvent::new(
                        t,
                        g,
                        AlertDetail::ProcessStarted {
                            name: name.clone(),
                            pid: *pid,
                            used,
                        },
                    ));
                }
                for (pid, name) in before.iter().filter(|(pid, _)| !now.contains_key(pid)) {
                    events.push(AlertEvent::new(
                        t,
                        g,
                        AlertDetail::ProcessExited {
                            name: name.clone(),
                            pid: *pid,
                        },
                    ));
                }
            }
        }
        self.forget_gone(snapshot);
        self.refresh_firing(snapshot);
        for e in &events {
            if self.recent.len() == RECENT_EVENTS {
                self.recent.pop_front();
            }
            self.recent.push_back(e.clone());
        }
        self.total += events.len() as u64;
        events
    }

    /// Forgets GPUs no longer in the readings (a remote host removed, a GPU gone): their
    /// alerts would otherwise stay "active" for ever.
    fn forget_gone(&mut self, snapshot: &Snapshot) {
        let present: HashSet<u32> = snapshot.gpus.iter().map(|g| g.index).collect();
        self.firing.retain(|(gpu, _)| present.contains(gpu));
        self.vram_high_since.retain(|gpu, _| present.contains(gpu));
        self.spill_window.retain(|gpu, _| present.contains(gpu));
        self.processes.retain(|gpu, _| present.contains(gpu));
    }

    /// Keeps the numbers of a condition still firing current: "VRAM above 90 %" says what is
    /// used now, not what was used when it fired.
    fn refresh_firing(&mut self, snapshot: &Snapshot) {
        for g in snapshot.gpus.iter().filter(|g| g.is_current()) {
            for kind in [AlertKind::VramHigh, AlertKind::TemperatureHigh] {
                if !self.firing.contains(&(g.index, kind)) {
                    continue;
                }
                let Some(event) = self
                    .recent
                    .iter_mut()
                    .rev()
                    .find(|e| e.gpu == g.index && e.kind == kind)
                else {
                    continue;
                };
                match &mut event.detail {
                    AlertDetail::VramHigh { used, total, .. } => {
                        (*used, *total) = (g.memory.used, g.memory.total);
                    }
                    AlertDetail::TemperatureHigh { now, .. } => {
                        if let Some(t) = g.temperature {
                            *now = t;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The spill rule: fires when `diagnosis::spill` sees one over the last half minute,
    /// clears once VRAM is no longer full (with a little hysteresis).
    fn watch_spill(&mut self, t: f64, g: &crate::telemetry::GpuSample) -> Option<AlertEvent> {
        use crate::telemetry::activity::ActivitySample;
        let window = self.spill_window.entry(g.index).or_default();
        window.push_back(ActivitySample::from_gpu(t, g));
        while window.len() > SPILL_READINGS
            || window.front().is_some_and(|s| t - s.t > SPILL_WINDOW)
        {
            window.pop_front();
        }
        let key = (g.index, AlertKind::SystemMemoryFallback);
        match crate::diagnosis::spill(window.make_contiguous()) {
            Some(spill) => self.firing.insert(key).then(|| {
                let mib = |v: f32| Bytes((v.max(0.0) as f64 * crate::units::MIB as f64) as u64);
                AlertEvent::new(
                    t,
                    g,
                    AlertDetail::SystemMemoryFallback {
                        grew: mib(spill.grew_mib),
                        shared: mib(spill.shared_mib),
                    },
                )
            }),
            None => {
                if g.memory.used_fraction() < crate::diagnosis::SPILL_VRAM_SHARE - 0.05 {
                    self.firing.remove(&key);
                }
                None
            }
        }
    }

    /// Conditions firing now (for the banner), as (gpu, kind), the weightiest of each GPU
    /// first: a spill says more than "VRAM above 90 %", which it implies.
    pub fn active(&self) -> Vec<(u32, AlertKind)> {
        let mut a: Vec<_> = self.firing.iter().copied().collect();
        a.sort_by_key(|(gpu, kind)| {
            let weight = match kind {
                AlertKind::SystemMemoryFallback => 0,
                other => 1 + *other as u8,
            };
            (*gpu, weight)
        });
        a
    }

    /// The sentences of the conditions firing now (their latest event each), in `unit`.
    pub fn active_messages(&self, unit: MemoryUnit) -> Vec<String> {
        self.active()
            .into_iter()
            .filter_map(|(gpu, kind)| {
                self.recent
                    .iter()
                    .rev()
                    .find(|e| e.gpu == gpu && e.kind == kind)
                    .map(|e| e.message(unit))
            })
            .collect()
    }

    /// The latest events, oldest first.
    pub fn recent(&self) -> &VecDeque<AlertEvent> {
        &self.recent
    }

    /// Events raised since start.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Alert rules, the unit messages use, and the engine's state: what the window reads and
/// edits, and what the sampler thread feeds (through [`AlertObserver`]).
#[derive(Debug, Default)]
pub struct AlertState {
    /// Rules in force (the window edits them).
    pub rules: AlertRules,
    /// The unit the user reads memory in (notifications use it).
    pub unit: MemoryUnit,
    /// The readings are simulated: notifications say so, so nobody takes them for their GPU.
    pub demo: bool,
    /// What fired and when.
    pub engine: AlertEngine,
}

impl AlertState {
    /// Runs the rules over one reading; returns what it raised.
    pub fn observe(&mut self, snapshot: &Snapshot) -> Vec<AlertEvent> {
        self.engine.observe(snapshot, &self.rules)
    }
}

/// Alert state shared between the sampler thread and the window.
#[derive(Clone, Debug, Default)]
pub struct SharedAlerts(Arc<Mutex<AlertState>>);

impl SharedAlerts {
    /// Locks it; a panic elsewhere while holding the lock does not take the window down.
    pub fn lock(&self) -> MutexGuard<'_, AlertState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The observer that feeds it every reading and sends desktop notifications.
    pub fn observer(&self) -> Box<dyn ReadingObserver> {
        Box::new(AlertObserver(self.clone()))
    }
}

/// Feeds every reading through the alert rules on the sampler thread.
struct AlertObserver(SharedAlerts);

impl ReadingObserver for AlertObserver {
    fn observe(&mut self, snapshot: &Snapshot) {
        let (raised, notify) = {
            let mut state = self.0.lock();
            let raised = state.observe(snapshot);
            (
                raised,
                state
                    .rules
                    .desktop_notifications
                    .then_some((state.unit, state.demo)),
            )
        };
        // Thresholds go to the desktop; process comings and goings stay in the app.
        if let Some((unit, demo)) = notify {
            let title = if demo {
                crate::t!("alert-notification-title-demo")
            } else {
                crate::t!("alert-notification-title")
            };
            for e in raised.iter().filter(|e| {
                matches!(
                    e.kind,
                    AlertKind::VramHigh
                        | AlertKind::TemperatureHigh
                        | AlertKind::SystemMemoryFallback
                )
            }) {
                notify_desktop(&title, &e.message(unit));
            }
        }
    }
}

/// Sends a desktop notification without waiting (freedesktop `notify-send` on Linux, the
/// platform's convention; absent elsewhere).
pub fn notify_desktop(summary: &str, body: &str) {
    crate::platform::notify::notify(summary, body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::sim::SimulatedGpus;
    use crate::telemetry::{GpuSample, ProcessInfo, ProcessKind};
    use crate::units::{Bytes, Celsius};
    use std::time::{Duration, SystemTime};

    fn snap(t: u64, used_mib: u64, temp: f32, pids: &[u32]) -> Snapshot {
        let mut g: GpuSample = SimulatedGpus::demo("t").sample_at(Duration::ZERO).remove(0);
        g.memory.used = Bytes::from_mib(used_mib);
        g.temperature = Some(Celsius(temp));
        g.processes = pids
            .iter()
            .map(|&pid| ProcessInfo {
                pid,
                name: format!("proc{pid}"),
                used: Some(Bytes::from_mib(1_024)),
                kind: ProcessKind::Compute,
                ..Default::default()
            })
            .collect();
        Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + t),
            gpus: vec![g],
        }
    }

    #[test]
    fn vram_must_stay_high_for_the_whole_duration_and_fires_once() {
        let rules = AlertRules::default();
        let mut e = AlertEngine::default();
        let high = 49_152 * 95 / 100;
        let mut fired = Vec::new();
        for t in 0..30 {
            fired.extend(e.observe(&snap(t, high, 50.0, &[]), &rules));
        }
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].kind, AlertKind::VramHigh);
        assert_eq!(fired[0].t, 1_800_000_010.0);
        assert!(
            fired[0]
                .message(MemoryUnit::GiB)
                .starts_with("GPU 0: VRAM above 90 % for 10 s (45.6 GiB of 48.0 GiB)")
        );
        assert!(
            fired[0]
                .message(MemoryUnit::MiB)
                .starts_with("GPU 0: VRAM above 90 % for 10 s (46,694 MiB of 49,152 MiB)")
        );
        assert_eq!(e.active(), vec![(0, AlertKind::VramHigh)]);
        // A dip shorter than the duration does not fire; hovering near the line does not re-fire.
        let mut e = AlertEngine::default();
        let mut n = 0;
        for t in 0..40 {
            let used = if t % 8 == 7 { 1_000 } else { high };
            n += e.observe(&snap(t, used, 50.0, &[]), &rules).len();
        }
        assert_eq!(n, 0);
    }

    #[test]
    fn a_firing_alert_says_what_is_used_now_and_a_gone_gpu_takes_its_alerts_away() {
        let rules = AlertRules::default();
        let mut e = AlertEngine::default();
        for t in 0..12 {
            e.observe(&snap(t, 47_000, 50.0, &[]), &rules);
        }
        assert_eq!(
            e.active_messages(MemoryUnit::MiB),
            ["GPU 0: VRAM above 90 % for 10 s (47,000 MiB of 49,152 MiB)"]
        );
        e.observe(&snap(12, 48_500, 50.0, &[]), &rules);
        assert_eq!(
            e.active_messages(MemoryUnit::MiB),
            ["GPU 0: VRAM above 90 % for 10 s (48,500 MiB of 49,152 MiB)"]
        );
        // The GPU leaves the readings (its remote host was removed): nothing stays firing.
        let mut gone = snap(13, 48_500, 50.0, &[]);
        gone.gpus.clear();
        e.observe(&gone, &rules);
        assert!(e.active().is_empty());
        assert!(e.active_messages(MemoryUnit::MiB).is_empty());
        // Back again, it starts afresh: 10 s before it fires.
        assert!(e.observe(&snap(14, 48_500, 50.0, &[]), &rules).is_empty());
        assert!(e.active().is_empty());
    }

    fn demo_at(t: u64) -> Snapshot {
        Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + t),
            gpus: SimulatedGpus::demo("t").sample_at(Duration::from_secs(t)),
        }
    }

    #[test]
    fn a_spill_into_system_memory_fires_once_on_that_gpu_and_pinned_memory_does_not() {
        let rules = AlertRules::default();
        let mut e = AlertEngine::default();
        let mut fired = Vec::new();
        for t in 0..40 {
            fired.extend(e.observe(&demo_at(t), &rules));
        }
        let spills: Vec<&AlertEvent> = fired
            .iter()
            .filter(|e| e.kind == AlertKind::SystemMemoryFallback)
            .collect();
        assert_eq!(spills.len(), 1, "{fired:?}");
        assert_eq!(
            spills[0].gpu, 2,
            "the Windows card spills, the others do not"
        );
        let text = spills[0].message(MemoryUnit::MiB);
        assert!(text.contains("spilling into system memory"), "{text}");
        assert!(e.active().contains(&(2, AlertKind::SystemMemoryFallback)));

        // The same card with 4 GiB of pinned host memory that never moves: no alert.
        let mut e = AlertEngine::default();
        let mut n = 0;
        for t in 0..40 {
            let mut s = demo_at(t);
            for p in &mut s.gpus[2].processes {
                p.shared = Some(Bytes::from_mib(4_096));
            }
            n += e
                .observe(&s, &rules)
                .iter()
                .filter(|e| e.kind == AlertKind::SystemMemoryFallback)
                .count();
        }
        assert_eq!(n, 0);
    }

    #[test]
    fn clearing_rearms_the_alert() {
        let rules = AlertRules::default();
        let mut e = AlertEngine::default();
        let high = 49_152 * 95 / 100;
        let mut n = 0;
        for t in 0..15 {
            n += e.observe(&snap(t, high, 50.0, &[]), &rules).len();
        }
        for t in 15..20 {
            n += e.observe(&snap(t, 2_000, 50.0, &[]), &rules).len();
        }
        assert!(e.active().is_empty());
        for t in 20..35 {
            n += e.observe(&snap(t, high, 50.0, &[]), &rules).len();
        }
        assert_eq!(n, 2);
    }

    #[test]
    fn temperature_fires_once_with_hysteresis() {
        let rules = AlertRules::default();
        let mut e = AlertEngine::default();
        let temps = [80.0, 86.0, 84.0, 86.0, 81.0, 86.0];
        let fired: Vec<_> = temps
            .iter()
            .enumerate()
            .flat_map(|(t, &c)| e.observe(&snap(t as u64, 1_000, c, &[]), &rules))
            .collect();
        // 86 fires; 84 is within the 3 °C hysteresis; 81 clears; 86 fires again.
        assert_eq!(fired.len(), 2);
        assert_eq!(
            fired[0].message(MemoryUnit::MiB),
            "GPU 0: temperature 86 °C (limit 85 °C)"
        );
    }

    #[test]
    fn processes_appearing_and_leaving_are_reported_after_the_first_look() {
        let rules = AlertRules::default();
        let mut e = AlertEngine::default();
        assert!(e.observe(&snap(0, 1_000, 50.0, &[10]), &rules).is_empty());
        let events = e.observe(&snap(1, 1_000, 50.0, &[11]), &rules);
        let messages: Vec<_> = events.iter().map(|e| e.message(MemoryUnit::GiB)).collect();
        assert_eq!(
            messages,
            vec![
                "GPU 0: proc11 (pid 11) started with 1.0 GiB",
                "GPU 0: proc10 (pid 10) exited"
            ]
        );
        let quiet = AlertRules {
            process_changes: false,
            ..AlertRules::default()
        };
        assert!(e.observe(&snap(2, 1_000, 50.0, &[]), &quiet).is_empty());
        assert_eq!(e.total(), 2);
    }

    #[test]
    fn disabled_rules_raise_nothing() {
        let rules = AlertRules {
            enabled: false,
            ..AlertRules::default()
        };
        let mut e = AlertEngine::default();
        for t in 0..30 {
            assert!(
                e.observe(&snap(t, 49_000, 99.0, &[t as u32]), &rules)
                    .is_empty()
            );
        }
    }
}
