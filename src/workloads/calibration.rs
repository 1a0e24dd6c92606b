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
}

impl RunRecorder {
    /// Starts following a run with the GPU at `used_mib`.
    pub fn start(key: String, name: String, used_mib: f64) -> Self {
        RunRecorder {
            key,
            name,
            baseline_mib: used_mib,
            highest_mib: used_mib,
        }
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
