//! The sampler thread: reads the source at a fixed interval, feeds the history, wakes the UI.

use super::history::{History, HistoryConfig};
use super::{GpuSource, Snapshot, SourceKind};
use crate::alerts::{AlertEngine, AlertEvent, AlertKind, AlertRules, notify_desktop};
use crate::logs::recorder::{CsvRecorder, RecorderConfig, RecordingStatus};
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
    /// CSV recording.
    pub recording: RecordingStatus,
    /// Alert rules in force (the UI edits them here).
    pub alert_rules: AlertRules,
    /// The unit the user reads memory in (alert notifications use it).
    pub memory_unit: crate::units::MemoryUnit,
    /// Alert state, fed by every reading.
    pub alerts: AlertEngine,
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
            recording: RecordingStatus::default(),
            alert_rules: AlertRules::default(),
            memory_unit: crate::units::MemoryUnit::default(),
            alerts: AlertEngine::default(),
            activity: super::activity::ActivityLog::default(),
        }
    }

    /// Records a successful reading: into history, through the alert rules, as the newest
    /// snapshot, clearing errors. Returns the alerts it raised.
    pub fn record(&mut self, snapshot: Snapshot) -> Vec<AlertEvent> {
        self.history.push(snapshot.unix_seconds(), &snapshot.gpus);
        self.activity.record(&snapshot);
        let raised = self.alerts.observe(&snapshot, &self.alert_rules);
        self.latest = Some(snapshot);
        self.last_error = None;
        raised
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

enum Command {
    SetInterval(Duration),
    StartRecording(RecorderConfig),
    RecordInto(Box<CsvRecorder>),
    StopRecording,
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
        mut source: Box<dyn GpuSource>,
        interval: Duration,
        history: HistoryConfig,
        on_update: impl Fn() + Send + 'static,
    ) -> Self {
        let mut interval = clamp_interval(interval);
        let shared = Telemetry::new(source.kind(), interval, history).shared();
        let (commands, inbox) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("vramdeck-sampler".into())
            .spawn(move || {
                let mut recorder: Option<CsvRecorder> = None;
                loop {
                    let started = Instant::now();
                    let result = source.sample();
                    let cost = started.elapsed();
                    let (removed, backfill) = (source.take_removed(), source.take_backfill());
                    let snapshot = result.map(|gpus| Snapshot {
                        time: SystemTime::now(),
                        gpus,
                    });
                    // The file is written outside the lock: a slow disk must not stall the UI.
                    let recording = match (&mut recorder, &snapshot) {
                        (Some(r), Ok(s)) => Some(match r.write(s) {
                            Ok(()) => r.status(),
                            Err(e) => RecordingStatus {
                                active: false,
                                path: r.status().path,
                                bytes: r.status().bytes,
                                error: Some(format!("Recording stopped: {e}")),
                            },
                        }),
                        _ => None,
                    };
                    if recording.as_ref().is_some_and(|r| !r.active) {
                        recorder = None;
                    }
                    let (raised, notify) = {
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
                        let raised = match snapshot {
                            Ok(s) => t.record(s),
                            Err(e) => {
                                t.last_error = Some(e.to_string());
                                Vec::new()
                            }
                        };
                        if let Some(status) = recording {
                            t.recording = status;
                        }
                        (
                            raised,
                            t.alert_rules.desktop_notifications.then_some(t.memory_unit),
                        )
                    };
                    // Thresholds go to the desktop; process comings and goings stay in the app.
                    if let Some(unit) = notify {
                        for e in raised.iter().filter(|e| {
                            matches!(e.kind, AlertKind::VramHigh | AlertKind::TemperatureHigh)
                        }) {
                            notify_desktop("vramdeck alert", &e.message(unit));
                        }
                    }
                    on_update();
                    let wait = interval.saturating_sub(started.elapsed());
                    match inbox.recv_timeout(wait) {
                        Ok(Command::SetInterval(new)) => {
                            interval = clamp_interval(new);
                            lock(&thread_shared).interval = interval;
                        }
                        Ok(Command::StartRecording(config)) => {
                            let dir = config.dir.clone();
                            let status = match CsvRecorder::start(config) {
                                Ok(r) => {
                                    let status = r.status();
                                    recorder = Some(r);
                                    status
                                }
                                Err(e) => RecordingStatus {
                                    error: Some(format!(
                                        "Could not start recording in {}: {e}",
                                        dir.display()
                                    )),
                                    ..RecordingStatus::default()
                                },
                            };
                            lock(&thread_shared).recording = status;
                        }
                        Ok(Command::RecordInto(r)) => {
                            lock(&thread_shared).recording = r.status();
                            recorder = Some(*r);
                        }
                        Ok(Command::StopRecording) => {
                            let mut t = lock(&thread_shared);
                            t.recording.active = false;
                            if let Some(r) = recorder.take()
                                && let Err(e) = r.finish()
                            {
                                t.recording.error = Some(format!("Recording stopped: {e}"));
                            }
                        }
                        Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => {
                            if let Some(r) = recorder.take() {
                                let _ = r.finish();
                            }
                            break;
                        }
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

    /// Starts recording every sample to CSV in `config.dir` (the thread opens the file).
    pub fn start_recording(&self, config: RecorderConfig) {
        let _ = self.commands.send(Command::StartRecording(config));
    }

    /// Records into a recorder opened by the caller (tests point one at a failing writer).
    pub fn record_into(&self, recorder: CsvRecorder) {
        let _ = self.commands.send(Command::RecordInto(Box::new(recorder)));
    }

    /// Stops recording; buffered rows are flushed.
    pub fn stop_recording(&self) {
        let _ = self.commands.send(Command::StopRecording);
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

    /// The demo GPUs sampled every 100 ms.
    fn demo_sampler() -> Sampler {
        Sampler::spawn(
            Box::new(SimulatedGpus::demo("test")),
            MIN_INTERVAL,
            HistoryConfig::default(),
            || {},
        )
    }

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
        assert_eq!(t.history.gpu_count(), 2);
        assert_eq!(t.latest.as_ref().unwrap().gpus.len(), 2);
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
    fn recording_writes_every_sample_and_stops_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let sampler = demo_sampler();
        let shared = sampler.telemetry();
        sampler.start_recording(RecorderConfig {
            dir: dir.path().to_path_buf(),
            max_file_bytes: 1 << 20,
            keep_files: 2,
        });
        assert!(wait_for(&shared, |t| t.recording.active && t.recording.bytes > 1_000));
        sampler.stop_recording();
        assert!(wait_for(&shared, |t| !t.recording.active));
        let path = lock(&shared).recording.path.clone().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let log = crate::logs::import::import_csv(&text, "rec").unwrap();
        assert_eq!(log.bad_rows, 0);
        assert!(log.rows >= 4, "{}", log.rows);
    }

    #[test]
    fn a_full_disk_stops_recording_with_a_message_and_sampling_goes_on() {
        let sampler = demo_sampler();
        let shared = sampler.telemetry();
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        sampler.record_into(CsvRecorder::with_writer(
            RecorderConfig {
                dir: std::env::temp_dir(),
                // Small enough that the first rows already force a flush to the full disk.
                max_file_bytes: 100,
                keep_files: 1,
            },
            "/dev/full".into(),
            Box::new(full),
        ));
        assert!(wait_for(&shared, |t| t.recording.error.is_some()));
        let t = lock(&shared);
        assert!(!t.recording.active);
        let error = t.recording.error.clone().unwrap();
        assert!(
            error.starts_with("Recording stopped: No space left on device"),
            "{error}"
        );
        let before = t.history.samples_total();
        drop(t);
        assert!(wait_for(&shared, |t| t.history.samples_total() > before + 2));
    }

    #[test]
    fn an_unwritable_folder_is_refused_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let sampler = demo_sampler();
        let shared = sampler.telemetry();
        sampler.start_recording(RecorderConfig {
            dir: blocker.join("recordings"),
            max_file_bytes: 1 << 20,
            keep_files: 2,
        });
        assert!(wait_for(&shared, |t| t.recording.error.is_some()));
        let error = lock(&shared).recording.error.clone().unwrap();
        assert!(
            error.starts_with("Could not start recording in "),
            "{error}"
        );
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
