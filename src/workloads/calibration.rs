//! Peaks measured on this machine. They win over the catalogue and persist in the data dir
//! (`~/.local/share/vramdeck/calibration.toml`; `VRAMDECK_DATA_DIR` overrides).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Calibration key: the preset id, with the input size for sized presets ("ddcolor@960").
pub fn key(id: &str, size: Option<u32>) -> String {
    match size {
        Some(s) => format!("{id}@{s}"),
        None => id.to_string(),
    }
}

/// One measurement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measured {
    /// Peak VRAM, MiB.
    pub peak_mib: u64,
    /// The GPU it was measured on.
    pub gpu: String,
}

/// Every measurement, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calibration {
    /// Measurements by [`key`].
    #[serde(default)]
    pub measured: BTreeMap<String, Measured>,
}

impl Calibration {
    /// The measured peak for `key`, if any.
    pub fn peak_mib(&self, key: &str) -> Option<u64> {
        self.measured.get(key).map(|m| m.peak_mib)
    }

    /// Records a run's peak (the newest run wins: drivers and versions change).
    pub fn record(&mut self, key: &str, peak_mib: u64, gpu: &str) {
        self.measured.insert(
            key.to_string(),
            Measured {
                peak_mib,
                gpu: gpu.to_string(),
            },
        );
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Loads `path`: missing → empty; damaged → empty plus a warning (the file is left as is
    /// until the next measurement replaces it).
    pub fn load(path: &Path) -> (Self, Option<String>) {
        use crate::persist::{CONFIG_FILE_LIMIT, ReadError, read_small};
        let text = match read_small(path, CONFIG_FILE_LIMIT) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(ReadError::NotFound) => return (Calibration::default(), None),
            Err(e) => {
                return (
                    Calibration::default(),
                    Some(crate::t!(
                        "cannot-read",
                        path = path.display().to_string(),
                        error = e.to_string()
                    )),
                );
            }
        };
        match toml::from_str::<Calibration>(&text) {
            Ok(c) => (c, None),
            Err(e) => (
                Calibration::default(),
                Some(crate::t!(
                    "calibration-damaged",
                    path = path.display().to_string(),
                    reason = e.message().to_string()
                )),
            ),
        }
    }
}

/// Where calibration lives.
pub fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("VRAMDECK_DATA_DIR") {
        return Some(PathBuf::from(dir).join("calibration.toml"));
    }
    directories::ProjectDirs::from("", "", "vramdeck")
        .map(|d| d.data_dir().join("calibration.toml"))
}

/// Follows one marked run: the peak of GPU memory used above what was in use when marking
/// began (so other programs' memory is not counted).
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecorder {
    /// Calibration key of the workload being run.
    pub key: String,
    /// Display name.
    pub name: String,
    /// GPU memory used when the run was marked, MiB.
    pub baseline_mib: f64,
    /// Highest GPU memory used since, MiB.
    pub highest_mib: f64,
    /// When the run is measured from (UNIX seconds): the lowest reading before the click.
    pub since: f64,
    /// The catalogue's peak for this run, MiB (0: none to compare with).
    pub expected_mib: u64,
    /// Finishing was asked for, and the peak is far below the catalogue's: waiting for the
    /// user to save it anyway or discard it.
    pub confirming: bool,
}

/// How far back a run is looked for when the user marks it: a click a few minutes into a
/// job still measures it from its start.
pub const LOOK_BACK_SECONDS: f64 = 300.0;

impl RunRecorder {
    /// Starts following a run with the GPU at `used_mib` now (at `t`).
    pub fn start(key: String, name: String, used_mib: f64) -> Self {
        RunRecorder {
            key,
            name,
            baseline_mib: used_mib,
            highest_mib: used_mib,
            since: 0.0,
            expected_mib: 0,
            confirming: false,
        }
    }

    /// Starts following a run from the readings of the last [`LOOK_BACK_SECONDS`] as
    /// `(t, used MiB)`, oldest first, the newest being now: measured from the lowest of them
    /// (the card before the job began, when the click came after its start), its peak the
    /// highest since. `expected_mib` is the catalogue's peak, to check the result against.
    pub fn start_from(
        key: String,
        name: String,
        readings: &[(f64, f64)],
        expected_mib: u64,
    ) -> Option<Self> {
        let valid: Vec<(f64, f64)> = readings
            .iter()
            .copied()
            .filter(|(_, v)| v.is_finite())
            .collect();
        let (low_at, (since, low)) = valid
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.1.total_cmp(&b.1.1))?;
        let highest = valid[low_at..].iter().map(|(_, v)| *v).fold(low, f64::max);
        Some(RunRecorder {
            key,
            name,
            baseline_mib: low,
            highest_mib: highest,
            since,
            expected_mib,
            confirming: false,
        })
    }

    /// True when the peak is under half the catalogue's: most likely the job ran before the
    /// look-back or not at all, and saving it would beat the catalogue with a wrong number.
    pub fn far_below_expected(&self) -> bool {
        self.expected_mib > 0 && self.peak_mib() * 2 < self.expected_mib
    }

    /// Takes a reading.
    pub fn observe(&mut self, used_mib: f64) {
        self.highest_mib = self.highest_mib.max(used_mib);
    }

    /// The run's own peak so far, MiB.
    pub fn peak_mib(&self) -> u64 {
        (self.highest_mib - self.baseline_mib).max(0.0).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_marked_mid_way_is_measured_from_its_start() {
        // Idle at 1 GiB, the job starts at t=100 and climbs to 13 GiB; the click comes at
        // t=200 with 12 GiB in use.
        let readings: Vec<(f64, f64)> = (0..=200)
            .map(|t| {
                let used = if t < 100 {
                    1_024.0
                } else {
                    1_024.0 + 12_288.0 * ((t - 100).min(50) as f64 / 50.0)
                };
                (t as f64, used)
            })
            .collect();
        let r = RunRecorder::start_from("k".into(), "n".into(), &readings, 12_000).unwrap();
        assert_eq!(r.baseline_mib, 1_024.0);
        assert_eq!(r.peak_mib(), 12_288);
        assert!(!r.far_below_expected());
        // Clicked long after the job began (nothing low in the look-back): a tiny rise, far
        // below the catalogue, which must not be saved without asking.
        let late: Vec<(f64, f64)> = (0..=300)
            .map(|t| (t as f64, 13_000.0 + (t % 7) as f64))
            .collect();
        let r = RunRecorder::start_from("k".into(), "n".into(), &late, 12_000).unwrap();
        assert!(r.peak_mib() < 10);
        assert!(r.far_below_expected());
        // No readings at all: nothing to measure from.
        assert!(RunRecorder::start_from("k".into(), "n".into(), &[], 1).is_none());
        assert!(RunRecorder::start_from("k".into(), "n".into(), &[(0.0, f64::NAN)], 1).is_none());
    }

    #[test]
    fn calibration_round_trips_and_damaged_files_warn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calibration.toml");
        let mut c = Calibration::default();
        c.record(&key("ddcolor", Some(960)), 8_900, "RTX 3060");
        crate::persist::atomic_write(&path, &c.to_toml()).unwrap();
        assert_eq!(Calibration::load(&path), (c, None));
        std::fs::write(&path, "measured = 3").unwrap();
        let (empty, warning) = Calibration::load(&path);
        assert_eq!(empty, Calibration::default());
        assert!(warning.unwrap().contains("is damaged"));
    }

    #[test]
    fn a_run_records_its_own_peak_above_the_baseline() {
        let mut r = RunRecorder::start("ddcolor@960".into(), "DDColor 960".into(), 1_000.0);
        for used in [1_200.0, 9_700.0, 4_000.0] {
            r.observe(used);
        }
        assert_eq!(r.peak_mib(), 8_700);
    }
}
