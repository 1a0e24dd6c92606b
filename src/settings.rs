//! User settings: what they are, where they live, and how they survive bad files.
//!
//! Stored as TOML in the platform config dir (`~/.config/vramdeck/settings.toml` on Linux;
//! `VRAMDECK_CONFIG_DIR` overrides it). A file that cannot be read is moved aside to
//! `settings.toml.bad` — never deleted — and the app starts on defaults with a warning.
//! Writes go through a background thread and are atomic (temp file + rename), so the UI
//! never waits on the disk and a crash mid-write cannot leave half a file.

use crate::persist::BackgroundWriter;
use crate::telemetry::sampler::{MAX_INTERVAL, MIN_INTERVAL};
use crate::units::MemoryUnit;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How much time the live plots show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlotWindow {
    /// The last minute.
    OneMinute,
    /// The last 10 minutes.
    #[default]
    TenMinutes,
    /// The last hour.
    OneHour,
    /// The last 24 hours.
    OneDay,
}

impl PlotWindow {
    /// Every choice, shortest first.
    pub const ALL: [PlotWindow; 4] = [
        PlotWindow::OneMinute,
        PlotWindow::TenMinutes,
        PlotWindow::OneHour,
        PlotWindow::OneDay,
    ];

    /// Length in seconds.
    pub fn seconds(self) -> f64 {
        match self {
            PlotWindow::OneMinute => 60.0,
            PlotWindow::TenMinutes => 600.0,
            PlotWindow::OneHour => 3_600.0,
            PlotWindow::OneDay => 86_400.0,
        }
    }

    /// Button text.
    pub fn text(self) -> String {
        match self {
            PlotWindow::OneMinute => crate::t!("window-1min"),
            PlotWindow::TenMinutes => crate::t!("window-10min"),
            PlotWindow::OneHour => crate::t!("window-1h"),
            PlotWindow::OneDay => crate::t!("window-24h"),
        }
    }
}

/// The free memory "What fits" plans with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FitBasis {
    /// Free now: the least free in the last few seconds, so a verdict does not flip with
    /// every reading of a running job.
    #[default]
    Now,
    /// Free now plus what Free VRAM would give back (the agents' caches on this GPU).
    AfterFree,
    /// The card with nothing running (total less what the driver keeps).
    Idle,
}

impl FitBasis {
    /// Every choice.
    pub const ALL: [FitBasis; 3] = [FitBasis::Now, FitBasis::AfterFree, FitBasis::Idle];

    /// Its button.
    pub fn text(self) -> String {
        match self {
            FitBasis::Now => crate::t!("fit-basis-now"),
            FitBasis::AfterFree => crate::t!("fit-basis-after-free"),
            FitBasis::Idle => crate::t!("fit-basis-idle"),
        }
    }
}

/// Colour scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Theme {
    /// Follow the desktop.
    #[default]
    System,
    /// Dark.
    Dark,
    /// Light.
    Light,
}

impl Theme {
    /// Every choice.
    pub const ALL: [Theme; 3] = [Theme::System, Theme::Dark, Theme::Light];

    /// Menu text.
    pub fn text(self) -> String {
        match self {
            Theme::System => crate::t!("theme-system"),
            Theme::Dark => crate::t!("theme-dark"),
            Theme::Light => crate::t!("theme-light"),
        }
    }
}

/// Everything the user can set. Missing keys take their defaults, so old files keep working.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Sampling interval in milliseconds (100–5000).
    pub sample_interval_ms: u64,
    /// Time shown by the plots.
    pub plot_window: PlotWindow,
    /// Unit for memory figures.
    pub memory_unit: MemoryUnit,
    /// Colour scheme.
    pub theme: Theme,
    /// GPU whose plots are shown (NVML index).
    pub selected_gpu: u32,
    /// Safety margin for the advisor, percent of each workload's peak (files from before 0.2
    /// meant percent of the card; the value carries over as a share of the peak).
    pub margin_percent: f32,
    /// The free memory "What fits" plans with.
    pub fit_basis: FitBasis,
    /// Level the Free VRAM button uses.
    pub free_level: crate::release::FreeLevel,
    /// Where ComfyUI listens (loopback only).
    pub comfyui_address: String,
    /// What to do when an app asks for room before a job (opt-in).
    pub make_room: crate::release::arbiter::RoomPolicy,
    /// Apps never freed to make room for another ("Ollama", "ComfyUI", an agent's label).
    pub room_keep: Vec<String>,
    /// What is done when a given app asks for room, instead of `make_room`.
    pub room_policy_by_app: std::collections::BTreeMap<String, crate::release::arbiter::RoomPolicy>,
    /// Where Ollama listens (loopback only; "none": leave it alone).
    pub ollama_address: String,
    /// Where Stable Diffusion WebUI / Forge listens with --api (loopback only; "none").
    pub a1111_address: String,
    /// The other engines: "auto", "none" or "vllm=127.0.0.1:8001,llama-server=localhost:8081".
    pub engines: String,
    /// Engines put to sleep to make room are woken when the job that asked has ended.
    pub hand_back: bool,
    /// Alert rules.
    pub alerts: crate::alerts::AlertRules,
    /// The compact always-on-top view is on.
    pub mini_view: bool,
    /// The full window stays above other windows too (the mini view always does).
    pub always_on_top: bool,
    /// Closing the window leaves vramdeck running in the tray (when there is a tray).
    pub close_to_tray: bool,
    /// Remote hosts watched beside this machine's GPUs (tokens included: this file is 0600).
    pub remote_hosts: Vec<crate::remote::HostConfig>,
    /// The language chosen in View → Language; `None` follows the system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<crate::i18n::Language>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sample_interval_ms: 500,
            plot_window: PlotWindow::default(),
            memory_unit: MemoryUnit::default(),
            theme: Theme::default(),
            selected_gpu: 0,
            margin_percent: crate::workloads::advisor::DEFAULT_MARGIN_PERCENT,
            fit_basis: FitBasis::Now,
            free_level: crate::release::FreeLevel::Cache,
            comfyui_address: crate::release::comfyui::DEFAULT_ADDRESS.to_string(),
            make_room: crate::release::arbiter::RoomPolicy::Off,
            room_keep: Vec::new(),
            room_policy_by_app: Default::default(),
            ollama_address: "localhost".into(),
            a1111_address: "localhost".into(),
            engines: "auto".into(),
            hand_back: true,
            alerts: crate::alerts::AlertRules::default(),
            mini_view: false,
            always_on_top: false,
            close_to_tray: false,
            remote_hosts: Vec::new(),
            language: None,
        }
    }
}

impl Settings {
    /// The sampling interval, clamped to what the sampler supports.
    pub fn sample_interval(&self) -> Duration {
        Duration::from_millis(self.sample_interval_ms).clamp(MIN_INTERVAL, MAX_INTERVAL)
    }

    /// Parses TOML; out-of-range values are clamped rather than rejected, and numbers that are
    /// not numbers (TOML allows `nan` and `inf`) take their defaults.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let mut s: Settings = toml::from_str(text).map_err(|e| e.to_string())?;
        let d = Settings::default();
        s.sample_interval_ms = s.sample_interval().as_millis() as u64;
        s.margin_percent = finite_within(
            s.margin_percent,
            0.0,
            crate::workloads::advisor::MAX_MARGIN_PERCENT,
            d.margin_percent,
        );
        let (a, da) = (&mut s.alerts, d.alerts);
        a.vram_percent = finite_within(a.vram_percent, 1.0, 100.0, da.vram_percent);
        a.vram_seconds = finite_within(a.vram_seconds, 0.0, 3_600.0, da.vram_seconds);
        a.temperature_c = finite_within(a.temperature_c, 30.0, 120.0, da.temperature_c);
        Ok(s)
    }

    /// Serialises to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// `value` clamped to `lo..=hi`, or `default` when it is NaN.
fn finite_within(value: f32, lo: f32, hi: f32, default: f32) -> f32 {
    if value.is_nan() {
        default
    } else {
        value.clamp(lo, hi)
    }
}

/// Where settings live: `$VRAMDECK_CONFIG_DIR/settings.toml`, else the platform config dir.
pub fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("VRAMDECK_CONFIG_DIR") {
        return Some(PathBuf::from(dir).join("settings.toml"));
    }
    directories::ProjectDirs::from("", "", "vramdeck").map(|d| d.config_dir().join("settings.toml"))
}

/// Settings as loaded, with a warning for the user when the file was bad.
#[derive(Debug)]
pub struct Loaded {
    /// The settings to use.
    pub settings: Settings,
    /// What went wrong, in a sentence for the UI; `None` when all was well.
    pub warning: Option<String>,
}

/// The language chosen in the settings at `path`, read without touching the file (a damaged
/// file is left for [`load`] to report and keep).
pub fn language_in(path: &Path) -> Option<crate::i18n::Language> {
    #[derive(Deserialize)]
    struct JustLanguage {
        language: Option<crate::i18n::Language>,
    }
    let bytes = crate::persist::read_small(path, crate::persist::CONFIG_FILE_LIMIT).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    toml::from_str::<JustLanguage>(&text).ok()?.language
}

/// Loads settings from `path`. A missing file means defaults; a bad one means defaults plus a
/// warning, with the bad file kept beside as `settings.toml.bad`.
pub fn load(path: &Path) -> Loaded {
    use crate::persist::{CONFIG_FILE_LIMIT, ReadError, read_small};
    let text = match read_small(path, CONFIG_FILE_LIMIT) {
        Ok(bytes) => bytes,
        Err(ReadError::NotFound) => {
            return Loaded {
                settings: Settings::default(),
                warning: None,
            };
        }
        Err(e) => {
            return Loaded {
                settings: Settings::default(),
                warning: Some(crate::t!(
                    "settings-unreadable",
                    path = path.display().to_string(),
                    error = e.to_string()
                )),
            };
        }
    };
    let parsed = String::from_utf8(text)
        .map_err(|_| crate::t!("settings-not-utf8"))
        .and_then(|t| Settings::from_toml(&t));
    match parsed {
        Ok(settings) => Loaded {
            settings,
            warning: None,
        },
        Err(reason) => {
            let backup = path.with_extension("toml.bad");
            let kept = std::fs::rename(path, &backup).is_ok();
            let reason = reason.lines().next().unwrap_or("").trim().to_string();
            let path = path.display().to_string();
            let warning = if kept {
                crate::t!(
                    "settings-damaged-kept",
                    path = path,
                    reason = reason,
                    backup = backup.display().to_string()
                )
            } else {
                crate::t!("settings-damaged", path = path, reason = reason)
            };
            Loaded {
                settings: Settings::default(),
                warning: Some(warning),
            }
        }
    }
}

/// Writes `settings` to `path` atomically, creating the directory if needed.
pub fn save(path: &Path, settings: &Settings) -> std::io::Result<()> {
    crate::persist::atomic_write(path, &settings.to_toml())
}

/// Saves settings on a background thread, newest wins; the last save finishes on drop.
pub struct SettingsWriter {
    path: PathBuf,
    writer: BackgroundWriter,
}

impl SettingsWriter {
    /// Starts the writer for `path`.
    pub fn spawn(path: PathBuf) -> Self {
        SettingsWriter {
            path,
            writer: BackgroundWriter::spawn(),
        }
    }

    /// Queues a save.
    pub fn save(&self, settings: &Settings) {
        self.writer.write(self.path.clone(), settings.to_toml());
    }

    /// Queues any other file write on the same thread (presets, calibration).
    pub fn write(&self, path: PathBuf, text: String) {
        self.writer.write(path, text);
    }

    /// The last save's failure, if it failed.
    pub fn last_error(&self) -> Option<String> {
        self.writer.last_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/settings.toml");
        let chosen = Settings {
            sample_interval_ms: 250,
            plot_window: PlotWindow::OneDay,
            memory_unit: MemoryUnit::GiB,
            theme: Theme::Light,
            selected_gpu: 1,
            margin_percent: 15.0,
            fit_basis: FitBasis::AfterFree,
            free_level: crate::release::FreeLevel::Unload,
            comfyui_address: "127.0.0.1:8000".into(),
            make_room: crate::release::arbiter::RoomPolicy::Models,
            room_keep: vec!["Ollama".into()],
            room_policy_by_app: [(
                "ComfyUI".to_string(),
                crate::release::arbiter::RoomPolicy::Ask,
            )]
            .into(),
            ollama_address: "none".into(),
            a1111_address: "127.0.0.1:7861".into(),
            engines: "vllm=127.0.0.1:8001".into(),
            hand_back: false,
            alerts: crate::alerts::AlertRules {
                vram_percent: 80.0,
                ..crate::alerts::AlertRules::default()
            },
            mini_view: true,
            always_on_top: true,
            close_to_tray: true,
            language: Some(crate::i18n::Language::Chinese),
            remote_hosts: vec![
                crate::remote::HostConfig {
                    address: "http://gpu-box:9401".into(),
                    token: Some("a".repeat(64)),
                },
                crate::remote::HostConfig {
                    address: "ssh me@other-box".into(),
                    token: None,
                },
            ],
        };
        save(&path, &chosen).unwrap();
        // It holds tokens: only its owner may read it.
        if let Some(own) = crate::platform::files::ownership(&std::fs::metadata(&path).unwrap()) {
            assert_eq!(own.mode & 0o777, 0o600);
        }
        let loaded = load(&path);
        assert_eq!(loaded.settings, chosen);
        assert!(loaded.warning.is_none());
    }

    #[test]
    fn missing_file_means_defaults_without_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(&dir.path().join("settings.toml"));
        assert_eq!(loaded.settings, Settings::default());
        assert!(loaded.warning.is_none());
    }

    #[test]
    fn corrupt_file_gives_defaults_a_warning_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "sample_interval_ms = \"fast\"\n[[[").unwrap();
        let loaded = load(&path);
        assert_eq!(loaded.settings, Settings::default());
        let warning = loaded.warning.unwrap();
        assert!(warning.contains("is damaged"), "{warning}");
        assert!(warning.contains("settings.toml.bad"), "{warning}");
        assert!(dir.path().join("settings.toml.bad").exists());
    }

    #[test]
    fn binary_garbage_is_a_warning_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, [0xff, 0xfe, 0x00, 0x9c]).unwrap();
        assert!(load(&path).warning.unwrap().contains("not UTF-8"));
    }

    #[test]
    fn out_of_range_interval_is_clamped_and_missing_keys_default() {
        let s = Settings::from_toml("sample_interval_ms = 5\n").unwrap();
        assert_eq!(s.sample_interval_ms, 100);
        assert_eq!(s.plot_window, PlotWindow::TenMinutes);
        let s = Settings::from_toml("sample_interval_ms = 999999\n").unwrap();
        assert_eq!(s.sample_interval_ms, 5_000);
    }

    #[test]
    fn numbers_that_are_not_numbers_take_their_defaults() {
        let s = Settings::from_toml(
            "margin_percent = nan\n[alerts]\nvram_percent = inf\nvram_seconds = -inf\ntemperature_c = nan\n",
        )
        .unwrap();
        let d = Settings::default();
        assert_eq!(s.margin_percent, d.margin_percent);
        assert_eq!(s.alerts.vram_percent, 100.0);
        assert_eq!(s.alerts.vram_seconds, 0.0);
        assert_eq!(s.alerts.temperature_c, d.alerts.temperature_c);
    }

    #[test]
    fn writer_saves_the_newest_settings_before_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        let writer = SettingsWriter::spawn(path.clone());
        for ms in [200, 300, 400] {
            writer.save(&Settings {
                sample_interval_ms: ms,
                ..Settings::default()
            });
        }
        drop(writer);
        assert_eq!(load(&path).settings.sample_interval_ms, 400);
    }

    #[test]
    fn writer_reports_an_unwritable_location() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the directory should be: create_dir_all fails.
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, "x").unwrap();
        let writer = SettingsWriter::spawn(blocker.join("settings.toml"));
        writer.save(&Settings::default());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while writer.last_error().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(writer.last_error().unwrap().contains("Could not save "));
    }

    #[test]
    fn the_language_is_read_without_moving_a_damaged_file_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "language = \"zh-CN\"\n").unwrap();
        assert_eq!(language_in(&path), Some(crate::i18n::Language::Chinese));
        std::fs::write(&path, "language = \"zh-CN\"\nsample_interval_ms = [\n").unwrap();
        assert_eq!(language_in(&path), None);
        assert!(
            path.exists(),
            "peeking must leave the damaged file for load() to report"
        );
        let loaded = load(&path);
        assert!(loaded.warning.is_some_and(|w| w.contains("damaged")));
    }
}
