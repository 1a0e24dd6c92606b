//! Recording every sample to CSV: nvidia-smi's columns plus power and memory utilisation, so
//! the file reads back here and in any tool made for nvidia-smi logs. Flushed at least every
//! second (a crash loses at most that), rotated by size; a write error stops recording and says why.

use crate::logs::smi_csv;
use crate::telemetry::Snapshot;
use crate::telemetry::sampler::ReadingObserver;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// The header of recordings.
pub const RECORDING_HEADER: &str = "timestamp, index, name, memory.used [MiB], memory.total [MiB], utilization.gpu [%], temperature.gpu, power.draw [W], utilization.memory [%]";

/// Longest a written row may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where and how big.
#[derive(Clone, Debug, PartialEq)]
pub struct RecorderConfig {
    /// Folder for recordings.
    pub dir: PathBuf,
    /// Start a new file past this size.
    pub max_file_bytes: u64,
    /// Recordings kept; older ones are deleted.
    pub keep_files: usize,
}

impl RecorderConfig {
    /// `<data dir>/recordings`, 64 MiB files, 20 kept (about a week at 1 s for one GPU).
    pub fn in_data_dir() -> Option<Self> {
        let dir = crate::workloads::calibration::default_path()?
            .parent()?
            .join("recordings");
        Some(RecorderConfig {
            dir,
            max_file_bytes: 64 << 20,
            keep_files: 20,
        })
    }
}

/// What the UI shows about recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordingStatus {
    /// Recording now.
    pub active: bool,
    /// The file being written (or last written).
    pub path: Option<PathBuf>,
    /// Bytes in it.
    pub bytes: u64,
    /// Why recording stopped, if an error stopped it.
    pub error: Option<String>,
}

/// Where rows go: a file, or any writer in tests (e.g. /dev/full for a full disk).
type Sink = BufWriter<Box<dyn Write + Send>>;

/// Appends samples to CSV files.
pub struct CsvRecorder {
    config: RecorderConfig,
    file: Sink,
    path: PathBuf,
    bytes: u64,
    last_flush: Instant,
}

fn new_file(config: &RecorderConfig) -> std::io::Result<(Sink, PathBuf, u64)> {
    std::fs::create_dir_all(&config.dir)?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S%.3f");
    let path = config.dir.join(format!("vramdeck-{stamp}.csv"));
    let file: Box<dyn Write + Send> = Box::new(File::create(&path)?);
    let mut file = BufWriter::new(file);
    writeln!(file, "{RECORDING_HEADER}")?;
    file.flush()?;
    Ok((file, path, RECORDING_HEADER.len() as u64 + 1))
}

impl CsvRecorder {
    /// Starts a new recording file.
    pub fn start(config: RecorderConfig) -> std::io::Result<Self> {
        let (file, path, bytes) = new_file(&config)?;
        Ok(CsvRecorder {
            config,
            file,
            path,
            bytes,
            last_flush: Instant::now(),
        })
    }

    /// Records into an already open writer (tests use /dev/full); rotation still makes files.
    pub fn with_writer(
        config: RecorderConfig,
        path: PathBuf,
        writer: Box<dyn Write + Send>,
    ) -> Self {
        CsvRecorder {
            config,
            file: BufWriter::new(writer),
            path,
            bytes: 0,
            last_flush: Instant::now(),
        }
    }

    /// Writes every GPU of a snapshot.
    pub fn write(&mut self, snapshot: &Snapshot) -> std::io::Result<()> {
        let base = smi_csv::gpu_rows(snapshot);
        for (line, gpu) in base.lines().zip(&snapshot.gpus) {
            let power = gpu
                .power
                .map(|w| format!("{:.2} W", w.0))
                .unwrap_or_else(|| "[N/A]".into());
            let mem = gpu
                .memory_util
                .map(|p| format!("{:.0} %", p.0))
                .unwrap_or_else(|| "[N/A]".into());
            let row = format!("{line}, {power}, {mem}\n");
            self.file.write_all(row.as_bytes())?;
            self.bytes += row.len() as u64;
        }
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.file.flush()?;
            self.last_flush = Instant::now();
        }
        if self.bytes >= self.config.max_file_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        let (file, path, bytes) = new_file(&self.config)?;
        (self.file, self.path, self.bytes) = (file, path, bytes);
        prune(&self.config.dir, self.config.keep_files);
        Ok(())
    }

    /// Flushes what is buffered (on stop).
    pub fn finish(mut self) -> std::io::Result<()> {
        self.file.flush()
    }

    /// Status for the UI.
    pub fn status(&self) -> RecordingStatus {
        RecordingStatus {
            active: true,
            path: Some(self.path.clone()),
            bytes: self.bytes,
            error: None,
        }
    }
}

/// What the window asked the recorder to do, carried out on the sampler thread at the next
/// reading (opening a file is I/O the window never waits for).
enum Request {
    Start(RecorderConfig),
    Into(Box<CsvRecorder>),
    Stop,
}

#[derive(Default)]
struct Slot {
    request: Option<Request>,
    status: RecordingStatus,
}

/// CSV recording as the window controls it: start, stop, and its status. The file is written
/// by [`Recording::observer`] on the sampler thread, outside any lock the window takes.
#[derive(Clone, Default)]
pub struct Recording(Arc<Mutex<Slot>>);

impl Recording {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts recording every reading to CSV in `config.dir` (the file opens at the next one).
    pub fn start(&self, config: RecorderConfig) {
        self.lock().request = Some(Request::Start(config));
    }

    /// Records into a recorder opened by the caller (tests point one at a failing writer).
    pub fn record_into(&self, recorder: CsvRecorder) {
        self.lock().request = Some(Request::Into(Box::new(recorder)));
    }

    /// Stops recording; buffered rows are flushed at the next reading.
    pub fn stop(&self) {
        let mut slot = self.lock();
        slot.request = Some(Request::Stop);
        slot.status.active = false;
    }

    /// What the status bar shows.
    pub fn status(&self) -> RecordingStatus {
        self.lock().status.clone()
    }

    /// The observer that writes each reading.
    pub fn observer(&self) -> Box<dyn ReadingObserver> {
        Box::new(RecordingObserver {
            shared: self.clone(),
            recorder: None,
        })
    }
}

struct RecordingObserver {
    shared: Recording,
    recorder: Option<CsvRecorder>,
}

impl RecordingObserver {
    fn apply(&mut self, request: Request) -> RecordingStatus {
        match request {
            Request::Start(config) => {
                let dir = config.dir.clone();
                match CsvRecorder::start(config) {
                    Ok(r) => {
                        let status = r.status();
                        self.recorder = Some(r);
                        status
                    }
                    Err(e) => RecordingStatus {
                        error: Some(crate::t!(
                            "recording-could-not-start",
                            dir = dir.display().to_string(),
                            error = e.to_string()
                        )),
                        ..RecordingStatus::default()
                    },
                }
            }
            Request::Into(r) => {
                let status = r.status();
                self.recorder = Some(*r);
                status
            }
            Request::Stop => {
                let mut status = self.shared.status();
                status.active = false;
                if let Some(r) = self.recorder.take()
                    && let Err(e) = r.finish()
                {
                    status.error = Some(crate::t!("recording-stopped", error = e.to_string()));
                }
                status
            }
        }
    }
}

impl ReadingObserver for RecordingObserver {
    fn observe(&mut self, snapshot: &Snapshot) {
        let request = self.shared.lock().request.take();
        let mut status = request.map(|r| self.apply(r));
        // The file is written outside the lock: a slow disk must not stall the window.
        if let Some(r) = &mut self.recorder {
            status = Some(match r.write(snapshot) {
                Ok(()) => r.status(),
                Err(e) => {
                    let stopped = RecordingStatus {
                        active: false,
                        path: r.status().path,
                        bytes: r.status().bytes,
                        error: Some(crate::t!("recording-stopped", error = e.to_string())),
                    };
                    self.recorder = None;
                    stopped
                }
            });
        }
        if let Some(status) = status {
            let mut slot = self.shared.lock();
            // A stop asked for while this reading was written wins over "active".
            let stopping = matches!(slot.request, Some(Request::Stop));
            slot.status = RecordingStatus {
                active: status.active && !stopping,
                ..status
            };
        }
    }
}

impl Drop for RecordingObserver {
    fn drop(&mut self) {
        if let Some(r) = self.recorder.take() {
            let _ = r.finish();
        }
    }
}

/// Deletes the oldest recordings beyond `keep`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vramdeck-") && n.ends_with(".csv"))
        })
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(keep.max(1));
    for (_, p) in files.into_iter().take(excess) {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::history::HistoryConfig;
    use crate::telemetry::sampler::{MIN_INTERVAL, Sampler};
    use crate::telemetry::sim::SimulatedGpus;

    /// The demo GPUs sampled every 100 ms, recorded through the observer.
    fn recording_sampler() -> (Sampler, Recording) {
        let recording = Recording::default();
        let sampler = Sampler::spawn_with(
            Box::new(SimulatedGpus::demo("test")),
            MIN_INTERVAL,
            HistoryConfig::default(),
            vec![recording.observer()],
            || {},
        );
        (sampler, recording)
    }

    fn wait_for(r: &Recording, what: impl Fn(&RecordingStatus) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if what(&r.status()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn recording_writes_every_sample_and_stops_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let (_sampler, recording) = recording_sampler();
        recording.start(RecorderConfig {
            dir: dir.path().to_path_buf(),
            max_file_bytes: 1 << 20,
            keep_files: 2,
        });
        assert!(wait_for(&recording, |r| r.active && r.bytes > 1_000));
        recording.stop();
        assert!(
            !recording.status().active,
            "the window sees the stop at once"
        );
        // Flushed at the next reading.
        let path = recording.status().path.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let text = loop {
            let text = std::fs::read_to_string(&path).unwrap();
            if text.ends_with('\n') && text.lines().count() >= 5 || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = crate::logs::import::import_csv(&text, "rec").unwrap();
        assert_eq!(log.bad_rows, 0);
        assert!(log.rows >= 4, "{}", log.rows);
    }

    #[cfg(unix)]
    #[test]
    fn a_full_disk_stops_recording_with_a_message_and_sampling_goes_on() {
        let (sampler, recording) = recording_sampler();
        let shared = sampler.telemetry();
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        recording.record_into(CsvRecorder::with_writer(
            RecorderConfig {
                dir: std::env::temp_dir(),
                // Small enough that the first rows already force a flush to the full disk.
                max_file_bytes: 100,
                keep_files: 1,
            },
            "/dev/full".into(),
            Box::new(full),
        ));
        assert!(wait_for(&recording, |r| r.error.is_some()));
        let status = recording.status();
        assert!(!status.active);
        let error = status.error.unwrap();
        assert!(
            error.starts_with("Recording stopped: No space left on device"),
            "{error}"
        );
        use crate::telemetry::sampler::lock;
        let before = lock(&shared).history.samples_total();
        let deadline = Instant::now() + Duration::from_secs(10);
        while lock(&shared).history.samples_total() <= before + 2 {
            assert!(Instant::now() < deadline, "sampling stopped");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn an_unwritable_folder_is_refused_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let (_sampler, recording) = recording_sampler();
        recording.start(RecorderConfig {
            dir: blocker.join("recordings"),
            max_file_bytes: 1 << 20,
            keep_files: 2,
        });
        assert!(wait_for(&recording, |r| r.error.is_some()));
        let error = recording.status().error.unwrap();
        assert!(
            error.starts_with("Could not start recording in "),
            "{error}"
        );
    }

    fn snapshot(sim: &mut SimulatedGpus, s: u64) -> Snapshot {
        Snapshot {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s),
            gpus: sim.sample_at(Duration::from_secs(s)),
        }
    }

    #[test]
    fn recording_reads_back_as_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let config = RecorderConfig {
            dir: dir.path().to_path_buf(),
            max_file_bytes: 1 << 20,
            keep_files: 3,
        };
        let mut sim = SimulatedGpus::demo("t");
        let mut r = CsvRecorder::start(config).unwrap();
        for s in 0..20 {
            r.write(&snapshot(&mut sim, s)).unwrap();
        }
        let path = r.status().path.unwrap();
        r.finish().unwrap();
        let log = crate::logs::import::import_csv(&std::fs::read_to_string(path).unwrap(), "rec")
            .unwrap();
        assert_eq!((log.rows, log.bad_rows, log.gpus.len()), (60, 0, 3));
    }

    #[test]
    fn files_rotate_by_size_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let config = RecorderConfig {
            dir: dir.path().to_path_buf(),
            max_file_bytes: 2_000,
            keep_files: 3,
        };
        let mut sim = SimulatedGpus::demo("t");
        let mut r = CsvRecorder::start(config).unwrap();
        for s in 0..200 {
            r.write(&snapshot(&mut sim, s)).unwrap();
        }
        r.finish().unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 3);
    }
}
