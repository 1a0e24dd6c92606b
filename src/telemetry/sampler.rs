//! The sampler thread: reads the source at a fixed interval, feeds the history, hands each
//! reading to its observers (alerts, the CSV recorder: whatever else wants readings plugs in
//! here without this module knowing it), wakes the UI.

use super::history::{History, HistoryConfig};
use super::{GpuSource, Snapshot, SourceKind};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Fastest sampling interval offered (NVML itself updates utilisation about this often).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Slowest sampling interval offered.
pub const MAX_INTERVAL: Duration = Duration::from_secs(5);

/// Clamps an interval into the supported range.
pub fn clamp_interval(interval: Duration) -> Duration {
    interval.clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// What the sampler has learnt so far; the UI reads it under a short lock.
#[derive(Debug)]
pub struct Telemetry {
    /// Every GPU's past readings.
    pub history: History,
    /// The newest successful reading.
    pub latest: Option<Snapshot>,
    /// The last read error, cleared by the next good read.
    pub last_error: Option<String>,
    /// Where readings come from.
    pub source: SourceKind,
    /// The interval in force.
    pub interval: Duration,
    /// How long the last read took (shown in the status bar, and a cheap benchmark).
    pub last_read_cost: Duration,
    /// The last ten minutes at full rate, for the "busy but slow?" diagnosis, and each
    /// process's VRAM.
    pub activity: super::activity::ActivityLog,
}

impl Telemetry {
    /// Empty telemetry for `source`, before the first reading.
    pub fn new(source: SourceKind, interval: Duration, history: HistoryConfig) -> Self {
        Telemetry {
            history: History::new(history),
            latest: None,
            last_error: None,
            source,
            interval,
            last_read_cost: Duration::ZERO,
            activity: super::activity::ActivityLog::default(),
        }
    }

    /// Records a successful reading: into history and the activity log, as the newest
    /// snapshot, clearing errors.
    pub fn record(&mut self, snapshot: Snapshot) {
        self.history.push(snapshot.unix_seconds(), &snapshot.gpus);
        self.activity.record(&snapshot);
        self.latest = Some(snapshot);
        self.last_error = None;
    }

    /// Wraps telemetry for sharing with a UI.
    pub fn shared(self) -> SharedTelemetry {
        Arc::new(Mutex::new(self))
    }
}

/// Telemetry shared between the sampler thread and its readers.
pub type SharedTelemetry = Arc<Mutex<Telemetry>>;

/// Locks shared telemetry; a panic elsewhere while holding the lock does not take the UI down.
pub fn lock(shared: &SharedTelemetry) -> MutexGuard<'_, Telemetry> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Something that wants every successful reading. Called on the sampler thread as each
/// reading arrives, outside the telemetry lock, so a slow disk or a notification never
/// holds up the window; each observer keeps its own state (and its own lock, if the window
/// reads it).
pub trait ReadingObserver: Send {
    /// One reading.
    fn observe(&mut self, snapshot: &Snapshot);
}

enum Command {
    SetInterval(Duration),
    Stop,
}

/// Handle to the running sampler thread; dropping it stops the thread.
pub struct Sampler {
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
    shared: SharedTelemetry,
}

impl Sampler {
    /// Starts sampling `source` every `interval`, calling `on_update` after each read
    /// (the UI passes `ctx.request_repaint`).
    pub fn spawn(
        source: Box<dyn GpuSource>,
        interval: Duration,
        history: HistoryConfig,
        on_update: impl Fn() + Send + 'static,
    ) -> Self {
        Self::spawn_with(source, interval, history, Vec::new(), on_update)
    }

    /// [`Sampler::spawn`] handing every reading to `observers` as well, in order.
    pub fn spawn_with(
        mut source: Box<dyn GpuSource>,
        interval: Duration,
        history: HistoryConfig,
        mut observers: Vec<Box<dyn ReadingObserver>>,
        on_update: impl Fn() + Send + 'static,
    ) -> Self {
        let mut interval = clamp_interval(interval);
        let shared = Telemetry::new(source.kind(), interval, history).shared();
        let (commands, inbox) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("vramdeck-sampler".into())
            .spawn(move || {
                loop {
                    let started = Instant::now();
                    let result = source.sample();
                    let cost = started.elapsed();
                    let (removed, backfill) = (source.take_removed(), source.take_backfill());
                    let snapshot = result.map(|gpus| Snapshot {
                        time: SystemTime::now(),
                        gpus,
                    });
                    // Observers first, outside the lock; then the reading moves into history.
                    if let Ok(s) = &snapshot {
                        for observer in &mut observers {
                            observer.observe(s);
                        }
                    }
                    {
                        let mut t = lock(&thread_shared);
                        t.last_read_cost = cost;
                        for slot in removed {
                            t.history.remove_gpu(slot);
                            t.activity.remove_gpu(slot);
                        }
                        for late in backfill {
                            for (time, values) in late.points {
                                t.history.push_values(late.slot, time, values);
                            }
                        }
                        match snapshot {
                            Ok(s) => t.record(s),
                            Err(e) => t.last_error = Some(e.to_string()),
                        }
                    }
                    on_update();
                    let wait = interval.saturating_sub(started.elapsed());
                    match inbox.recv_timeout(wait) {
                        Ok(Command::SetInterval(new)) => {
                            interval = clamp_interval(new);
                            lock(&thread_shared).interval = interval;
                        }
                        Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {}
                    }
                }
            })
            .ok();
        if thread.is_none() {
            lock(&shared).last_error = Some("could not start the sampler thread".into());
        }
        Sampler {
            commands,
            thread,
            shared,
        }
    }

    /// The telemetry this sampler fills.
    pub fn telemetry(&self) -> SharedTelemetry {
        Arc::clone(&self.shared)
    }

    /// Changes the interval; takes effect at once (the thread samples again immediately).
    pub fn set_interval(&self, interval: Duration) {
        let _ = self.commands.send(Command::SetInterval(interval));
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::history::Metric;
    use crate::telemetry::sim::SimulatedGpus;
    use crate::telemetry::{GpuSample, SourceError};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn wait_for(shared: &SharedTelemetry, what: impl Fn(&Telemetry) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if what(&lock(shared)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn sampler_feeds_history_and_wakes_the_ui_each_read() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&wakes);
        let sampler = Sampler::spawn(
            Box::new(SimulatedGpus::demo("test")),
            MIN_INTERVAL,
            HistoryConfig::default(),
            move || {
                counter.fetch_add(1, Ordering::SeqCst);
            },
        );
        let shared = sampler.telemetry();
        assert!(wait_for(&shared, |t| t.history.samples_total() >= 3));
        let t = lock(&shared);
        assert_eq!(t.history.gpu_count(), 3);
        assert_eq!(t.latest.as_ref().unwrap().gpus.len(), 3);
        assert!(t.source.is_simulated());
        let now = t.history.newest(0).unwrap();
        assert!(
            !t.history
                .series(0, Metric::VramUsedMib, now - 60.0, now, 100)
                .is_empty()
        );
        drop(t);
        assert!(wakes.load(Ordering::SeqCst) >= 3);
    }

    /// Counts readings and remembers the newest's time.
    struct Counter(Arc<Mutex<(usize, Option<SystemTime>)>>);

    impl ReadingObserver for Counter {
        fn observe(&mut self, snapshot: &Snapshot) {
            let mut c = self.0.lock().unwrap();
            c.0 += 1;
            c.1 = Some(snapshot.time);
        }
    }

    #[test]
    fn every_observer_sees_every_good_reading_and_none_of_the_errors() {
        let first = Arc::new(Mutex::new((0, None)));
        let second = Arc::new(Mutex::new((0, None)));
        let sampler = Sampler::spawn_with(
            Box::new(LosesGpuAfter(3)),
            MIN_INTERVAL,
            HistoryConfig::default(),
            vec![
                Box::new(Counter(Arc::clone(&first))),
                Box::new(Counter(Arc::clone(&second))),
            ],
            || {},
        );
        let shared = sampler.telemetry();
        assert!(wait_for(&shared, |t| t.last_error.is_some()));
        std::thread::sleep(MIN_INTERVAL * 3);
        let (seen, newest) = *first.lock().unwrap();
        assert_eq!(seen, 3);
        assert_eq!(*second.lock().unwrap(), (seen, newest));
        assert_eq!(newest, lock(&shared).latest.as_ref().map(|s| s.time));
    }

    #[test]
    fn interval_is_clamped_and_changes_while_running() {
        assert_eq!(clamp_interval(Duration::from_millis(1)), MIN_INTERVAL);
        assert_eq!(clamp_interval(Duration::from_secs(60)), MAX_INTERVAL);
        let sampler = Sampler::spawn(
            Box::new(SimulatedGpus::demo("test")),
            MAX_INTERVAL,
            HistoryConfig::default(),
            || {},
        );
        let shared = sampler.telemetry();
        sampler.set_interval(Duration::from_millis(150));
        assert!(wait_for(&shared, |t| t.interval == Duration::from_millis(150)));
        // At 5 s we would wait 10 s for 3 reads; at 150 ms they arrive quickly.
        assert!(wait_for(&shared, |t| t.history.samples_total() >= 3));
    }

    struct LosesGpuAfter(usize);

    impl GpuSource for LosesGpuAfter {
        fn kind(&self) -> SourceKind {
            SourceKind::Simulated {
                reason: "test".into(),
            }
        }
        fn sample(&mut self) -> Result<Vec<GpuSample>, SourceError> {
            if self.0 == 0 {
                return Err(SourceError::GpuLost {
                    index: 0,
                    detail: "fell off the bus".into(),
                });
            }
            self.0 -= 1;
            Ok(SimulatedGpus::demo("test").sample_at(Duration::ZERO))
        }
    }

    #[test]
    fn a_vanished_gpu_becomes_an_error_message_and_sampling_goes_on() {
        let sampler = Sampler::spawn(
            Box::new(LosesGpuAfter(2)),
            MIN_INTERVAL,
            HistoryConfig::default(),
            || {},
        );
        let shared = sampler.telemetry();
        assert!(wait_for(&shared, |t| t.last_error.is_some()));
        let t = lock(&shared);
        assert_eq!(
            t.last_error.as_deref(),
            Some("GPU 0 lost: fell off the bus")
        );
        // The last good reading stays visible.
        assert!(t.latest.is_some());
        assert_eq!(t.history.samples_total(), 2);
    }

    #[test]
    fn dropping_the_sampler_stops_its_thread_promptly() {
        let sampler = Sampler::spawn(
            Box::new(SimulatedGpus::demo("test")),
            MAX_INTERVAL,
            HistoryConfig::default(),
            || {},
        );
        let started = Instant::now();
        drop(sampler);
        // Stop interrupts the 5 s wait instead of sleeping through it.
        assert!(started.elapsed() < MAX_INTERVAL);
    }
}
