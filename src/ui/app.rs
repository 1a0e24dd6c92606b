//! The application: owns UI state and lays the panels out. Reads telemetry under a short lock;
//! hands settings to the background writer; never touches a file or the GPU itself.

use super::advisor_panel::{self, AdvisorAction, NewPresetForm};
use super::files::{Chooser, FileOutcome, Files, Purpose};
use super::layout::{self, Layout, Tab};
use super::logs_view::{self, LogsState};
use super::mini_view::{self, MiniAction};
use super::plots::{PlotData, PlotMarker, ViewControl};
use super::release_panel::{self, ReleaseView, Toast};
use super::top_bar::TopBarAction;
use super::window_state::{ViewState, WindowState};
use super::{banners, gpu_card, plots, process_table, status_bar, top_bar};
use crate::logs::OpenedLog;
use crate::logs::recorder::RecorderConfig;
use crate::release::worker::{ReleaseWorker, WorkerCommand};
use crate::settings::{PlotWindow, Settings, SettingsWriter, Theme};
use crate::telemetry::Snapshot;
use crate::telemetry::sampler::{self, Sampler, SharedTelemetry};
use crate::workloads::advisor::{self, Budget};
use crate::workloads::calibration::{self, Calibration, RunRecorder};
use crate::workloads::catalogue::{self, Catalogue};
use egui::{RichText, Ui};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// The vramdeck window.
pub struct VramDeckApp {
    telemetry: SharedTelemetry,
    sampler: Option<Sampler>,
    settings: Settings,
    settings_writer: Option<SettingsWriter>,
    warnings: Vec<String>,
    applied_theme: Option<Theme>,
    last_plot: PlotData,
    release: Option<ReleaseWorker>,
    release_view: ReleaseView,
    workloads: Workloads,
    /// Alerts already shown as toasts.
    alerts_seen: u64,
    /// Recent alerts by GPU index, for the plot.
    alert_markers: Vec<(u32, PlotMarker)>,
    logs: LogsState,
    files: Files,
    /// The centre tab, where the window is too narrow for every column.
    tab: Tab,
    /// The process whose VRAM history is shown under the table.
    selected_process: Option<u32>,
    recorder_config: Option<RecorderConfig>,
    /// CSV recording, written by its observer on the sampler thread.
    recording: Option<crate::logs::recorder::Recording>,
    /// Alert rules and state, fed by their observer on the sampler thread.
    alerts: crate::alerts::SharedAlerts,
    /// Remote hosts read beside this machine's GPUs (the sampler reads the same fleet).
    fleet: Option<crate::remote::fleet::Fleet>,
    hosts_window: super::hosts_panel::HostsWindow,
    /// Shown, hidden in the tray, quitting; the size limits and level sent.
    window: WindowState,
    /// View state kept between runs.
    view_state: ViewState,
    /// The tray icon, when the desktop has a tray.
    tray: Option<crate::platform::tray::Tray>,
    /// Why there is no tray icon.
    tray_error: Option<String>,
    /// The session starts vramdeck (read once at start, then as the user sets it).
    autostart: bool,
}

/// Alerts as read under the telemetry lock.
struct AlertView {
    active: Vec<String>,
    total: u64,
    newest: Option<String>,
    markers: Vec<(u32, PlotMarker)>,
}

/// The advisor's state: catalogue, calibration, a run being recorded, where files go.
struct Workloads {
    catalogue: Catalogue,
    calibration: Calibration,
    calibration_path: Option<PathBuf>,
    user_presets_path: Option<PathBuf>,
    recorder: Option<RunRecorder>,
    form: NewPresetForm,
    /// Highest VRAM seen per agent pid whose label names a preset.
    agent_peaks: HashMap<u32, u64>,
    /// The user's preset removed last, for Undo.
    removed: Option<catalogue::Workload>,
    /// The presets' needs (for apps that ask for room by preset) are stale at the release
    /// worker: sent at the next frame. A Cell, because saving (`&self`) marks it.
    needs_stale: std::cell::Cell<bool>,
}

impl VramDeckApp {
    /// An app reading `telemetry`. `sampler` (if any) gets interval changes; `settings_writer`
    /// (if any) persists setting changes; `warnings` are shown until dismissed.
    pub fn new(
        telemetry: SharedTelemetry,
        sampler: Option<Sampler>,
        settings: Settings,
        settings_writer: Option<SettingsWriter>,
        warnings: Vec<String>,
    ) -> Self {
        let alerts = crate::alerts::SharedAlerts::default();
        alerts.lock().rules = settings.alerts.clone();
        VramDeckApp {
            alerts_seen: 0,
            alerts,
            recording: None,
            alert_markers: Vec::new(),
            logs: LogsState::default(),
            files: Files::new(Chooser::from_env(), None),
            tab: Tab::default(),
            selected_process: None,
            recorder_config: None,
            fleet: None,
            hosts_window: Default::default(),
            window: WindowState::default(),
            view_state: ViewState::default(),
            tray: None,
            tray_error: Some(crate::t!("tray-not-started")),
            autostart: false,
            telemetry,
            sampler,
            settings,
            settings_writer,
            warnings,
            applied_theme: None,
            last_plot: PlotData::default(),
            release: None,
            release_view: ReleaseView::default(),
            workloads: Workloads {
                catalogue: Catalogue::load(None),
                calibration: Calibration::default(),
                calibration_path: None,
                user_presets_path: None,
                recorder: None,
                form: NewPresetForm::default(),
                agent_peaks: HashMap::new(),
                removed: None,
                needs_stale: std::cell::Cell::new(true),
            },
        }
    }

    /// Uses this catalogue and calibration, saving changes to the given files.
    pub fn with_workloads(
        mut self,
        catalogue: Catalogue,
        calibration: Calibration,
        calibration_path: Option<PathBuf>,
        user_presets_path: Option<PathBuf>,
    ) -> Self {
        self.warnings.extend(catalogue.warnings.iter().cloned());
        self.workloads.catalogue = catalogue;
        self.workloads.calibration = calibration;
        self.workloads.calibration_path = calibration_path;
        self.workloads.user_presets_path = user_presets_path;
        self
    }

    /// Records to CSV files as configured here when the user presses "Record to CSV", through
    /// `recording` (whose observer the sampler runs).
    pub fn with_recording(
        mut self,
        recording: crate::logs::recorder::Recording,
        config: RecorderConfig,
    ) -> Self {
        self.recording = Some(recording);
        self.recorder_config = Some(config);
        self
    }

    /// Shows and edits `alerts` (whose observer the sampler runs) instead of a state of its
    /// own; the window's alert rules are put in force there.
    pub fn with_alerts(mut self, alerts: crate::alerts::SharedAlerts) -> Self {
        {
            let mut state = alerts.lock();
            state.rules = self.settings.alerts.clone();
            self.alerts_seen = state.engine.total();
        }
        self.alerts = alerts;
        self
    }

    /// The alert state the window shows.
    pub fn alerts(&self) -> crate::alerts::SharedAlerts {
        self.alerts.clone()
    }

    /// The CSV log shown instead of live data, if any.
    pub fn imported_log(&self) -> Option<&crate::logs::import::ImportedLog> {
        self.logs.imported.as_ref()
    }

    /// The OOM analysis on screen, if any.
    pub fn analysis(&self) -> Option<&crate::logs::oom::Analysis> {
        self.logs.analysis.as_ref().map(|(_, a)| a)
    }

    /// Chooses files with `chooser`; the in-window chooser starts in `start_dir`.
    pub fn with_file_chooser(mut self, chooser: Chooser, start_dir: Option<PathBuf>) -> Self {
        self.files = Files::new(chooser, start_dir);
        self
    }

    /// Opens a log file as if it had been dropped on the window (the work runs on a thread).
    pub fn open_log_file(&mut self, path: std::path::PathBuf) {
        let purpose = self.open_log_purpose();
        self.files.run_on(purpose, path);
    }

    fn open_log_purpose(&self) -> Purpose {
        Purpose::OpenLog(Box::new((
            self.workloads.catalogue.clone(),
            self.workloads.calibration.clone(),
        )))
    }

    /// Peaks measured on this machine.
    pub fn calibration(&self) -> &Calibration {
        &self.workloads.calibration
    }

    /// The presets in use.
    pub fn catalogue(&self) -> &Catalogue {
        &self.workloads.catalogue
    }

    /// Lets the user add and remove remote hosts in `fleet` (which the sampler reads).
    pub fn with_fleet(mut self, fleet: crate::remote::fleet::Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Shows vramdeck in the tray (or says why not, in the View menu).
    pub fn with_tray(mut self, tray: Result<crate::platform::tray::Tray, String>) -> Self {
        match tray {
            Ok(t) => {
                self.tray = Some(t);
                self.tray_error = None;
            }
            Err(e) => {
                self.tray = None;
                self.tray_error = Some(e);
            }
        }
        self
    }

    /// The tray icon, if there is one.
    pub fn tray(&self) -> Option<&crate::platform::tray::Tray> {
        self.tray.as_ref()
    }

    /// Starts hidden in the tray (`--hidden`); shown anyway when there is no tray.
    pub fn start_hidden(mut self, hidden: bool) -> Self {
        self.window.start_hidden = hidden;
        self
    }

    /// Whether the session starts vramdeck, as read from the system at start.
    pub fn with_autostart(mut self, enabled: bool) -> Self {
        self.autostart = enabled;
        self
    }

    /// Takes up the view state kept by an earlier run (the tab, the full window's size).
    pub fn restore(mut self, storage: Option<&dyn eframe::Storage>) -> Self {
        if let Some(state) = storage
            .and_then(|s| eframe::get_value::<ViewState>(s, super::window_state::STORAGE_KEY))
        {
            let state = state.sanitized();
            self.tab = state.tab;
            self.view_state = state;
        }
        self
    }

    /// The view state as it would be kept now.
    pub fn view_state(&self) -> ViewState {
        ViewState {
            tab: self.tab,
            ..self.view_state.clone()
        }
    }

    /// Hidden in the tray now.
    pub fn hidden(&self) -> bool {
        self.window.hidden
    }

    /// Connects the Free VRAM panel to a release worker.
    pub fn with_release_worker(mut self, worker: ReleaseWorker) -> Self {
        self.release = Some(worker);
        self
    }

    /// What the Free VRAM panel shows.
    pub fn release_view(&self) -> &ReleaseView {
        &self.release_view
    }

    /// Current settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Warnings still on screen.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What the plots were last drawn from (window bounds and decimated points).
    pub fn last_plot(&self) -> &PlotData {
        &self.last_plot
    }

    /// Draws one frame.
    pub fn show(&mut self, ui: &mut Ui) {
        if let Some(language) = self.settings.language
            && language != crate::i18n::language()
        {
            crate::i18n::set_language(language);
        }
        if self.applied_theme != Some(self.settings.theme) {
            ui.ctx().set_theme(match self.settings.theme {
                Theme::System => egui::ThemePreference::System,
                Theme::Dark => egui::ThemePreference::Dark,
                Theme::Light => egui::ThemePreference::Light,
            });
            self.applied_theme = Some(self.settings.theme);
            // Panels cover the whole window, so their background is the clear colour instead
            // (see `clear_color`): on a software renderer a full-window fill costs as much as
            // everything else in the frame, while clearing is nearly free.
            ui.ctx().all_styles_mut(|style| {
                style.visuals.panel_fill = egui::Color32::TRANSPARENT;
                // egui's small text is 9 points: too small to read the helper lines beside
                // a WebUI all day.
                style.text_styles.insert(
                    egui::TextStyle::Small,
                    egui::FontId::proportional(SMALL_TEXT_POINTS),
                );
                // A 0–100 % slider 75 points long moves in steps of a percent and a half.
                style.spacing.slider_width = 180.0;
            });
        }

        if let Some(worker) = &self.release {
            for event in worker.poll() {
                self.release_view.apply(event);
            }
        }

        // One short lock for everything but the plot series.
        let unit = self.settings.memory_unit;
        let alerts = {
            let mut a = self.alerts.lock();
            a.unit = unit;
            a.demo = sampler::lock(&self.telemetry).source.is_simulated();
            AlertView {
                active: a.engine.active_messages(unit),
                total: a.engine.total(),
                newest: a.engine.recent().back().map(|e| e.message(unit)),
                markers: a
                    .engine
                    .recent()
                    .iter()
                    .map(|e| {
                        let marker = PlotMarker {
                            t: e.t,
                            label: e.kind.short().to_string(),
                            alert: true,
                        };
                        (e.gpu, marker)
                    })
                    .collect(),
            }
        };
        let recording = self
            .recording
            .as_ref()
            .map(|r| r.status())
            .unwrap_or_default();
        let (latest, source, error, status) = {
            let t = sampler::lock(&self.telemetry);
            let slot = self.selected_slot(t.latest.as_ref());
            (
                t.latest.clone(),
                t.source.clone(),
                t.last_error.clone(),
                status_bar::Status {
                    interval: t.interval,
                    last_read_cost: t.last_read_cost,
                    samples: t.history.samples_total(),
                    since: t.history.oldest(slot),
                    save_error: self.settings_writer.as_ref().and_then(|w| w.last_error()),
                    recording,
                    alerts: Vec::new(),
                },
            )
        };
        let status = status_bar::Status {
            alerts: alerts.active.clone(),
            ..status
        };

        if let Some(outcome) = self.files.show(ui.ctx()) {
            self.on_file_outcome(outcome);
        }
        let dropped: Vec<std::path::PathBuf> = ui.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            self.open_log_file(path);
        }
        // Ctrl+V anywhere but in a text field, or the Paste button: a log to analyse. (A
        // dropped file is opened above; winit delivers no dropped text on the desktop.)
        let typing = ui.ctx().egui_wants_keyboard_input();
        let wanted = self.logs.paste_wanted;
        let text = ui.input(|i| {
            i.events.iter().find_map(|e| match e {
                egui::Event::Paste(text) if wanted || !typing => Some(text.clone()),
                _ => None,
            })
        });
        if let Some(text) = text.filter(|t| !t.trim().is_empty()) {
            self.logs.paste_wanted = false;
            let (catalogue, calibration) = (
                self.workloads.catalogue.clone(),
                self.workloads.calibration.clone(),
            );
            if let Err(e) = self
                .logs
                .analyse_text(ui.ctx(), text, catalogue, calibration)
            {
                self.warnings.push(e);
            }
        }
        self.logs.take_pasted();

        let before = self.settings.clone();
        // A request for room the user decides on shows in every view.
        if let Some(answer) = release_panel::room_ask(ui, &self.release_view.asks) {
            if let WorkerCommand::AnswerRoom { pid, need, .. } = &answer {
                self.release_view
                    .asks
                    .retain(|a| !(a.pid == *pid && a.need.id == *need));
            }
            if let Some(worker) = &self.release {
                worker.send(answer);
            }
        }
        if self.settings.mini_view {
            let alert_gpus: Vec<u32> = self
                .alerts
                .lock()
                .engine
                .active()
                .into_iter()
                .map(|(gpu, _)| gpu)
                .collect();
            let view = mini_view::MiniView {
                snapshot: latest.as_ref(),
                source: &source,
                unit,
                freeing: self.release_view.in_flight,
                result: self.release_view.toast.as_ref(),
                alerts: &alerts.active,
                alert_gpus: &alert_gpus,
            };
            match mini_view::show(ui, &view) {
                Some(MiniAction::Free) => self.free_all(),
                Some(MiniAction::Expand) => self.set_mini_view(ui.ctx(), false),
                None => {}
            }
            if self.settings != before {
                self.apply_settings_change(&before);
            }
            return;
        }
        let layout = Layout::for_width(ui.available_width());
        let mut bar_action = None;
        let freeing = self
            .can_free_here(&source)
            .then_some(self.release_view.in_flight);
        egui::Panel::top("top_bar").show(ui, |ui| {
            let bar = top_bar::BarState {
                source: &source,
                recording: status.recording.active,
                // The full bar needs about 1,100 points; below that its settings go in a menu.
                compact: ui.available_width() < 1_100.0,
                freeing,
                tray_error: self.tray_error.as_deref(),
                autostart: self.autostart,
            };
            bar_action = top_bar::show(ui, &mut self.settings, &bar);
            banners::demo_mode(ui, &source);
            if let Some(problem) = &status.recording.error {
                banners::read_error_text(ui, problem);
            }
            if let Some(error) = &error {
                banners::read_error(ui, error);
            }
            if let Some(i) = banners::warnings(ui, &self.warnings) {
                self.warnings.remove(i);
            }
            ui.add_space(2.0);
        });
        // Alerts live in the status bar: a banner appearing and vanishing with each reading
        // would push the whole window down under the pointer.
        egui::Panel::bottom("status_bar").show(ui, |ui| status_bar::show(ui, &status));
        if let Some(action) = bar_action {
            self.on_top_bar(action, ui.ctx(), status.recording.active, latest.as_ref());
        }
        self.hosts(ui.ctx());
        let content = ui.available_rect_before_wrap();
        // Who holds each card now, for a failure that names its GPU (real readings only).
        let holding_now: Vec<(u32, String)> = match latest.as_ref() {
            Some(s) if self.logs.analysis.is_some() && !self.is_demo() => {
                logs_view::holding_now(s, &self.release_view.owners)
            }
            _ => Vec::new(),
        };
        logs_view::analysis_window(ui.ctx(), &mut self.logs.analysis, &holding_now, content);

        if alerts.total > self.alerts_seen {
            self.alerts_seen = alerts.total;
            if let Some(newest) = alerts.newest.clone() {
                self.toast(newest, false);
            }
        }
        self.alert_markers = alerts.markers;

        if self.logs.imported.is_some() {
            self.show_imported(ui, unit, layout);
        } else {
            match &latest {
                None => {
                    egui::CentralPanel::default().show(ui, |ui| {
                        ui.centered_and_justified(|ui| {
                            ui.spinner();
                            ui.label(crate::t!("app-waiting-first"));
                        });
                    });
                }
                Some(snapshot) if snapshot.gpus.is_empty() => {
                    let remote_only =
                        matches!(source, crate::telemetry::SourceKind::RemoteOnly { .. });
                    egui::CentralPanel::default().show(ui, |ui| {
                        ui.centered_and_justified(|ui| {
                            ui.label(if remote_only {
                                crate::t!("app-remote-only-waiting")
                            } else {
                                crate::t!("app-no-gpu")
                            });
                        });
                    });
                }
                Some(snapshot) => self.show_gpus(ui, snapshot, layout),
            }
        }

        if let Some(toast) = &self.release_view.toast {
            release_panel::toast(ui, toast);
        }

        if self.settings != before {
            self.apply_settings_change(&before);
        }
    }

    fn selected_slot(&self, latest: Option<&Snapshot>) -> usize {
        latest
            .and_then(|s| {
                s.gpus
                    .iter()
                    .position(|g| g.index == self.settings.selected_gpu)
            })
            .unwrap_or(0)
    }

    /// GPU cards, Free VRAM and alert rules: a column of its own, or the GPUs tab.
    fn side(&mut self, ui: &mut Ui, snapshot: &Snapshot, slot: usize) {
        let unit = self.settings.memory_unit;
        egui::ScrollArea::vertical()
            .id_salt("side")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                if let Some(fleet) = &self.fleet {
                    super::hosts_panel::troubles(ui, &fleet.hosts());
                }
                for (i, gpu) in snapshot.gpus.iter().enumerate() {
                    if gpu_card::show(ui, gpu, unit, i == slot) {
                        self.settings.selected_gpu = gpu.index;
                    }
                    ui.add_space(6.0);
                }
                if let (Some(fleet), Some(address)) = (
                    &self.fleet,
                    snapshot
                        .gpus
                        .get(slot)
                        .and_then(|g| g.remote.as_ref())
                        .map(|r| r.address.clone()),
                ) && let Some((_, state)) = fleet
                    .hosts()
                    .into_iter()
                    .find(|(c, _)| c.address == address)
                {
                    ui.separator();
                    if super::hosts_panel::remote_free(ui, &state, self.settings.free_level) {
                        fleet.free(&address, self.settings.free_level);
                    }
                }
                let source = sampler::lock(&self.telemetry).source.clone();
                if self.can_free_here(&source) {
                    ui.separator();
                    // Real processes only: a demo's are made up.
                    let holders: Vec<&crate::telemetry::ProcessInfo> = if source.is_simulated() {
                        Vec::new()
                    } else {
                        snapshot
                            .gpus
                            .iter()
                            .flat_map(|g| g.processes.iter())
                            .collect()
                    };
                    let command = release_panel::show(
                        ui,
                        &self.release_view,
                        &holders,
                        &mut self.settings.free_level,
                        release_panel::RoomChoices {
                            policy: &mut self.settings.make_room,
                            by_app: &mut self.settings.room_policy_by_app,
                            keep: &mut self.settings.room_keep,
                            hand_back: &mut self.settings.hand_back,
                        },
                        &mut self.settings.comfyui_address,
                        unit,
                    );
                    if let (Some(command), Some(worker)) = (command, &self.release) {
                        if matches!(command, WorkerCommand::Free(..)) {
                            self.release_view.in_flight = true;
                        }
                        worker.send(command);
                    }
                }
                ui.separator();
                super::alerts_panel::show(ui, &mut self.settings.alerts);
            });
    }

    /// The advisor: a column of its own, or the "What fits" tab.
    fn advisor(
        &mut self,
        ui: &mut Ui,
        gpu_title: String,
        budget: &Budget,
        advice: &[advisor::Advice],
    ) -> Option<AdvisorAction> {
        let unit = self.settings.memory_unit;
        egui::ScrollArea::vertical()
            .id_salt("advisor")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                let view = advisor_panel::AdvisorView {
                    gpu_title,
                    budget,
                    workloads: &self.workloads.catalogue.workloads,
                    advice,
                    recorder: self.workloads.recorder.as_ref(),
                    user_ids: &self.workloads.catalogue.user_ids,
                    removed: self.workloads.removed.as_ref().map(|w| w.name.as_str()),
                };
                advisor_panel::show(
                    ui,
                    &view,
                    unit,
                    &mut self.settings.margin_percent,
                    &mut self.settings.fit_basis,
                    &mut self.workloads.form,
                )
            })
            .inner
    }

    /// The free memory "What fits" plans with, on the basis the user chose.
    fn fit_free(&self, slot: usize, gpu: &crate::telemetry::GpuSample) -> crate::units::Bytes {
        use crate::settings::FitBasis;
        use crate::units::Bytes;
        let steady = || {
            let t = sampler::lock(&self.telemetry);
            let now = t.history.newest(slot).unwrap_or(0.0);
            let most_used = t
                .history
                .readings(slot, now - STEADY_FREE_SECONDS, now)
                .iter()
                .map(|(_, v)| v.get(crate::telemetry::history::Metric::VramUsedMib))
                .filter(|v| v.is_finite())
                .fold(gpu.memory.used.mib() as f32, f32::max);
            // Free now, less what was in use above now at the high point (whatever the
            // driver counts as reserved, it is in both).
            let above_now = Bytes::from_mib(most_used.max(0.0) as u64)
                .saturating_sub(Bytes::from_mib(gpu.memory.used.whole_mib()));
            gpu.memory.free.saturating_sub(above_now)
        };
        match self.settings.fit_basis {
            FitBasis::Now => steady(),
            FitBasis::AfterFree => {
                let cached: u64 = self
                    .release_view
                    .agents
                    .iter()
                    .filter(|a| gpu.processes.iter().any(|p| agent_is_process(a, p)))
                    .filter_map(|a| Some(a.info.reserved?.saturating_sub(a.info.allocated?)))
                    .sum();
                Bytes(gpu.memory.free.0.saturating_add(cached))
            }
            FitBasis::Idle => gpu.memory.total.saturating_sub(gpu.memory.reserved),
        }
    }

    fn show_gpus(&mut self, ui: &mut Ui, snapshot: &Snapshot, layout: Layout) {
        let slot = self.selected_slot(Some(snapshot));
        let Some(gpu) = snapshot.gpus.get(slot) else {
            return;
        };
        self.follow_runs(snapshot, gpu);
        let budget = Budget::new(
            self.fit_free(slot, gpu),
            gpu.memory.total,
            self.settings.margin_percent,
        );
        let advice = advisor::advise(
            &self.workloads.catalogue,
            &budget,
            &self.workloads.calibration,
        );
        let mut action = None;
        if layout != Layout::OneColumn {
            egui::Panel::left("gpu_cards")
                .default_size(330.0)
                .min_size(270.0)
                .max_size(420.0)
                .show(ui, |ui| self.side(ui, snapshot, slot));
        }
        if layout == Layout::ThreeColumns {
            egui::Panel::right("advisor")
                .default_size(450.0)
                .min_size(320.0)
                .max_size(600.0)
                .show(ui, |ui| {
                    action = self.advisor(ui, gpu.title(), &budget, &advice);
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            layout::tab_bar(ui, layout.tabs(), &mut self.tab);
            match layout.shown(self.tab) {
                Tab::Gpus => self.side(ui, snapshot, slot),
                Tab::WhatFits => action = self.advisor(ui, gpu.title(), &budget, &advice),
                Tab::History => self.history(ui, snapshot, slot),
            }
        });
        if let Some(action) = action {
            self.on_advisor_action(action, gpu);
        }
    }

    /// Charts of the selected GPU and the processes holding its memory.
    fn history(&mut self, ui: &mut Ui, snapshot: &Snapshot, slot: usize) {
        let Some(gpu) = snapshot.gpus.get(slot) else {
            return;
        };
        let unit = self.settings.memory_unit;
        let height = ui.available_height();
        let demo = self.is_demo();
        egui::ScrollArea::vertical()
            .id_salt("history")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.label(
                        RichText::new(crate::t!("app-history-of", gpu = gpu.title())).heading(),
                    );
                    ui.separator();
                    ui.label(crate::t!("app-show-last"));
                    for window in PlotWindow::ALL {
                        ui.selectable_value(&mut self.settings.plot_window, window, window.text());
                    }
                });
                let charts_height = charts_height(height, gpu.processes.len());
                let columns = plot_columns(ui.available_width());
                let window = self.settings.plot_window;
                let (plot, diagnosis, process_vram) = {
                    let t = sampler::lock(&self.telemetry);
                    let now = t.history.newest(slot).unwrap_or(snapshot.unix_seconds());
                    let recent = t.activity.window(
                        slot,
                        t.activity.newest(slot).unwrap_or(now),
                        super::diagnosis_panel::WINDOW_SECONDS,
                    );
                    (
                        PlotData::collect(&t.history, slot, window, now, columns),
                        crate::diagnosis::diagnose(&recent),
                        self.selected_process
                            .map(|pid| t.activity.process_vram(pid)),
                    )
                };
                self.last_plot = plot;
                let total_mib = gpu.memory.total.mib();
                // This machine's releases mark this machine's GPUs only: a remote box's
                // memory did not move because of them.
                let local = gpu.remote.is_none();
                let markers: Vec<PlotMarker> = self
                    .release_view
                    .markers
                    .iter()
                    .filter(|_| local)
                    .cloned()
                    .chain(
                        self.alert_markers
                            .iter()
                            .filter(|(g, _)| *g == gpu.index)
                            .map(|(_, m)| m.clone()),
                    )
                    .collect();
                charts(
                    ui,
                    &self.last_plot,
                    unit,
                    total_mib,
                    &markers,
                    charts_height,
                    ViewControl::default(),
                );
                super::diagnosis_panel::show(ui, &diagnosis);
                ui.add_space(8.0);
                process_table::show(
                    ui,
                    &gpu.title(),
                    &gpu.processes,
                    unit,
                    (!demo).then_some(&self.release_view.owners),
                    &mut self.selected_process,
                );
                let selected = self
                    .selected_process
                    .and_then(|pid| gpu.processes.iter().find(|p| p.pid == pid));
                if let (Some(p), Some(points)) = (selected, process_vram) {
                    self.process_detail(ui, p, &points);
                }
            });
    }

    /// The selected process: its VRAM over time, and what torch holds in it when it runs a
    /// vramdeck agent.
    fn process_detail(&self, ui: &mut Ui, p: &crate::telemetry::ProcessInfo, points: &[[f64; 2]]) {
        let unit = self.settings.memory_unit;
        ui.add_space(6.0);
        let agent = self
            .release_view
            .agents
            .iter()
            .find(|a| agent_is_process(a, p));
        let torch = agent.map(|a| match (a.info.allocated, a.info.reserved) {
            (Some(al), Some(re)) => crate::t!(
                "app-agent-torch",
                allocated = unit.format(crate::units::Bytes(al)),
                reserved = unit.format(crate::units::Bytes(re))
            ),
            _ => crate::t!("app-agent-no-torch"),
        });
        let title = crate::t!("app-vram-of", name = &p.name, pid = p.pid.to_string());
        ui.label(
            RichText::new(match torch {
                Some(torch) => format!("{title} · {torch}"),
                None => title,
            })
            .strong(),
        );
        let reserved = agent
            .and_then(|a| a.info.reserved)
            .map(|r| crate::units::Bytes(r).mib());
        plots::process_vram(ui, points, unit, reserved, 140.0);
    }

    /// An imported CSV log: its panel (file, dates, GPUs, back to live) and its zoomable
    /// charts, in place of every live panel.
    fn show_imported(&mut self, ui: &mut Ui, unit: crate::units::MemoryUnit, layout: Layout) {
        let Some(log) = &self.logs.imported else {
            return;
        };
        let mut slot = self
            .logs
            .imported_slot
            .min(log.gpus.len().saturating_sub(1));
        let mut back = false;
        if layout != Layout::OneColumn {
            egui::Panel::left("log_panel")
                .default_size(330.0)
                .min_size(270.0)
                .max_size(420.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical()
                        .id_salt("log_panel")
                        .show(ui, |ui| {
                            back = logs_view::log_panel(ui, log, &mut slot, unit)
                        });
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            if layout == Layout::OneColumn {
                back = logs_view::log_header(ui, log, &mut slot);
            }
            let (t0, t1) = logs_view::full_span(log);
            let (v0, v1) = self.logs.view.unwrap_or((t0, t1));
            let columns = plot_columns(ui.available_width());
            let mut data =
                PlotData::collect_range(&log.history, slot, v0.max(t0), v1.min(t1), columns);
            // The charts' home view is the whole log, whatever part is drawn.
            (data.t0, data.t1) = (t0, t1);
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(logs_view::visible_range_text(v0.max(t0), v1.min(t1))).strong(),
                );
                let zoomed = self.logs.view.is_some();
                if ui
                    .add_enabled(zoomed, egui::Button::new(crate::t!("app-whole-log")))
                    .on_hover_text(crate::t!("app-whole-log-hover"))
                    .clicked()
                {
                    self.logs.reset = true;
                }
            });
            let total_mib = log.gpus[slot]
                .total_mib
                .or(data.vram_stats.map(|s| s.max))
                .unwrap_or(0.0);
            let height = (ui.available_height() - 30.0).max(MIN_CHARTS_HEIGHT);
            let view = ViewControl {
                interactive: true,
                reset: std::mem::take(&mut self.logs.reset),
            };
            let visible = charts(ui, &data, unit, total_mib, &[], height, view);
            let span = t1 - t0;
            let zoomed = visible.0 > t0 + span * 1e-3 || visible.1 < t1 - span * 1e-3;
            self.logs.view = (zoomed && !view.reset).then_some(visible);
            self.last_plot = data;
        });
        if slot != self.logs.imported_slot {
            // Another GPU of the log: start from the whole log again.
            self.logs.view = None;
            self.logs.reset = true;
        }
        self.logs.imported_slot = slot;
        if back {
            self.logs.imported = None;
            self.logs.view = None;
        }
    }

    /// True when Free VRAM has something to do on this machine: a release worker, and a GPU
    /// here (without one, this machine's agents hold no VRAM to release).
    fn can_free_here(&self, source: &crate::telemetry::SourceKind) -> bool {
        self.release.is_some() && !matches!(source, crate::telemetry::SourceKind::RemoteOnly { .. })
    }

    fn free_all(&mut self) {
        if let Some(worker) = &self.release {
            self.release_view.in_flight = true;
            worker.send(WorkerCommand::Free(
                crate::release::free::FreeTarget::All,
                self.settings.free_level,
            ));
        }
    }

    fn gpu_count(&self) -> usize {
        sampler::lock(&self.telemetry)
            .latest
            .as_ref()
            .map(|s| s.gpus.len())
            .unwrap_or(1)
    }

    fn set_mini_view(&mut self, ctx: &egui::Context, on: bool) {
        if self.settings.mini_view == on {
            return;
        }
        self.settings.mini_view = on;
        let gpus = self.gpu_count();
        self.window.switch_view(ctx, on, gpus, &mut self.view_state);
    }

    /// The part of a pass that runs whether or not the window is shown: the tray, closing
    /// to the tray, keyboard shortcuts, and the window's size limits and level.
    pub fn logic(&mut self, ctx: &egui::Context) {
        if let Some(worker) = &self.release
            && self.workloads.needs_stale.replace(false)
        {
            worker.send(WorkerCommand::SetPresetNeeds(
                crate::release::arbiter::preset_needs(
                    &self.workloads.catalogue,
                    &self.workloads.calibration,
                    self.settings.margin_percent,
                ),
            ));
        }
        let commands = self.tray.as_ref().map(|t| t.commands()).unwrap_or_default();
        for command in commands {
            use crate::platform::tray::TrayCommand;
            match command {
                TrayCommand::ShowHide => {
                    let hide = !self.window.hidden;
                    self.window.set_hidden(ctx, hide);
                }
                TrayCommand::FreeVram => self.free_all(),
                TrayCommand::Quit => self.window.quit(ctx),
                TrayCommand::Lost => {
                    self.tray = None;
                    self.tray_error = Some(crate::t!("tray-lost"));
                    if self.window.hidden {
                        self.window.set_hidden(ctx, false);
                    }
                }
            }
        }
        let shortcut = |key, shift| {
            let modifiers = if shift {
                egui::Modifiers::COMMAND | egui::Modifiers::SHIFT
            } else {
                egui::Modifiers::COMMAND
            };
            ctx.input_mut(|i| i.consume_key(modifiers, key))
        };
        if shortcut(egui::Key::Q, false) {
            self.window.quit(ctx);
        }
        if shortcut(egui::Key::F, true) && !self.release_view.in_flight {
            self.free_all();
        }
        if shortcut(egui::Key::M, true) {
            let mini = !self.settings.mini_view;
            let before = self.settings.clone();
            self.set_mini_view(ctx, mini);
            self.apply_settings_change(&before);
        }
        // Esc closes what floats over the window, topmost first (the file chooser handles
        // its own); the toast goes with it.
        if !self.files.busy() && ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
            if self.hosts_window.open {
                self.hosts_window.open = false;
            } else if self.logs.analysis.is_some() {
                self.logs.analysis = None;
            } else {
                self.release_view.toast = None;
            }
        }
        self.window
            .close_to_tray(ctx, self.settings.close_to_tray, self.tray.is_some());
        let gpus = self.gpu_count();
        self.window.keep(
            ctx,
            (self.settings.mini_view, self.settings.always_on_top),
            gpus,
            self.tray.is_some(),
            &mut self.view_state,
        );
        self.update_tray();
    }

    /// Puts the newest reading and the alerts firing in the tray's tooltip.
    fn update_tray(&mut self) {
        let Some(tray) = &mut self.tray else { return };
        let unit = self.settings.memory_unit;
        let (mut lines, demo) = {
            let t = sampler::lock(&self.telemetry);
            let lines: Vec<String> = t
                .latest
                .iter()
                .flat_map(|s| s.gpus.iter())
                .map(|g| {
                    crate::t!(
                        "tray-gpu-line",
                        gpu = g.title(),
                        used = unit.format(g.memory.used),
                        total = unit.format(g.memory.total),
                        percent = format!("{:.0}", g.memory.used_fraction() * 100.0)
                    )
                })
                .collect();
            (lines, t.source.is_simulated())
        };
        let alerts = self.alerts.lock().engine.active_messages(unit);
        lines.extend(
            alerts
                .into_iter()
                .map(|a| crate::t!("tray-alert-line", alert = a)),
        );
        tray.set_text(crate::platform::tray::TrayText {
            title: if demo {
                crate::t!("tray-title-demo")
            } else {
                crate::t!("tray-title")
            },
            lines,
            free: crate::t!("tray-free"),
            show_hide: crate::t!("tray-show-hide"),
            quit: crate::t!("tray-quit"),
        });
    }

    fn on_top_bar(
        &mut self,
        action: TopBarAction,
        ctx: &egui::Context,
        recording: bool,
        latest: Option<&Snapshot>,
    ) {
        match action {
            TopBarAction::ToggleRecording => match (&self.recording, &self.recorder_config) {
                (Some(r), _) if recording => r.stop(),
                (Some(r), Some(config)) => r.start(config.clone()),
                _ => self.warnings.push(crate::t!("app-no-data-folder")),
            },
            TopBarAction::OpenLog => {
                let purpose = self.open_log_purpose();
                self.files.request(purpose);
            }
            TopBarAction::PasteLog => {
                // The clipboard's text comes back as a Paste event (read in `update`).
                self.logs.paste_wanted = true;
                ctx.send_viewport_cmd(egui::ViewportCommand::RequestPaste);
            }
            TopBarAction::Export => {
                let (t0, t1) = (self.last_plot.t0, self.last_plot.t1);
                let text = match &self.logs.imported {
                    Some(log) => {
                        let slot = self.logs.imported_slot;
                        let g = &log.gpus[slot];
                        crate::logs::window_csv(
                            &log.history,
                            slot,
                            t0,
                            t1,
                            g.index,
                            &g.name,
                            g.total_mib,
                        )
                    }
                    None => {
                        let slot = self.selected_slot(latest);
                        let Some(g) = latest.and_then(|s| s.gpus.get(slot)) else {
                            return;
                        };
                        let t = sampler::lock(&self.telemetry);
                        crate::logs::window_csv(
                            &t.history,
                            slot,
                            t0,
                            t1,
                            g.index,
                            &g.name,
                            Some(g.memory.total.mib()),
                        )
                    }
                };
                let name = format!(
                    "vramdeck-{}.csv",
                    chrono::Local::now().format("%Y%m%d-%H%M%S")
                );
                self.files.request(Purpose::ExportCsv(text, name));
            }
            TopBarAction::MiniView => self.set_mini_view(ctx, true),
            TopBarAction::FreeVram => self.free_all(),
            TopBarAction::SetAutostart(on) => match crate::platform::autostart::set(on) {
                Ok(()) => {
                    self.autostart = on;
                    let text = if on {
                        crate::t!(
                            "autostart-on",
                            location = crate::platform::autostart::location()
                        )
                    } else {
                        crate::t!("autostart-off")
                    };
                    self.toast(text, true);
                }
                Err(e) => self.warnings.push(e),
            },
            TopBarAction::Hosts => {
                if self.fleet.is_some() {
                    self.hosts_window.open = true;
                } else {
                    self.warnings.push(crate::t!("app-no-hosts"));
                }
            }
        }
    }

    fn on_file_outcome(&mut self, outcome: FileOutcome) {
        match outcome {
            FileOutcome::Opened(Ok(OpenedLog::Csv(log))) => {
                self.toast(
                    crate::t!("app-opened", origin = &log.origin, summary = log.summary()),
                    log.bad_rows == 0,
                );
                self.logs.imported_slot = 0;
                self.logs.imported = Some(log);
            }
            FileOutcome::Opened(Ok(OpenedLog::Text { origin, analysis })) => {
                self.logs.analysis = Some((origin, analysis));
            }
            FileOutcome::Opened(Err(e)) => self.warnings.push(e),
            FileOutcome::Exported(Ok(path)) => self.toast(
                crate::t!("app-saved", path = path.display().to_string()),
                true,
            ),
            FileOutcome::Exported(Err(e)) => self
                .warnings
                .push(crate::t!("app-export-failed", error = e)),
            FileOutcome::PresetsImported(Ok(presets)) => {
                let report = self.workloads.catalogue.import(presets);
                self.save_user_presets();
                let mut parts = vec![crate::t!("app-imported", count = report.added)];
                for (old, new) in &report.renamed {
                    parts.push(crate::t!("app-imported-renamed", old = old, new = new));
                }
                if !report.replaced.is_empty() {
                    parts.push(crate::t!(
                        "app-imported-replaced",
                        names = report.replaced.join(", ")
                    ));
                }
                let text = parts.join("; ");
                self.toast(text, true);
            }
            FileOutcome::PresetsImported(Err(e)) => self
                .warnings
                .push(crate::t!("app-import-failed", error = e)),
            FileOutcome::PresetsExported(Ok(path)) => self.toast(
                crate::t!("app-exported-presets", path = path.display().to_string()),
                true,
            ),
            FileOutcome::PresetsExported(Err(e)) => self
                .warnings
                .push(crate::t!("app-export-failed", error = e)),
            FileOutcome::Cancelled => {}
        }
    }

    /// True when the readings are simulated.
    fn is_demo(&self) -> bool {
        sampler::lock(&self.telemetry).source.is_simulated()
    }

    /// Feeds a marked run and agents whose label names a preset with the newest reading.
    fn follow_runs(&mut self, snapshot: &Snapshot, gpu: &crate::telemetry::GpuSample) {
        if let Some(r) = &mut self.workloads.recorder {
            r.observe(gpu.memory.used.mib());
        }
        if self.is_demo() {
            return;
        }
        let mut changed = false;
        for agent in &self.release_view.agents {
            let Some(label) = &agent.info.label else {
                continue;
            };
            let Some(w) = self.workloads.catalogue.find(label) else {
                continue;
            };
            if !matches!(w.shape, catalogue::Shape::Fixed { .. }) {
                continue;
            }
            let used = snapshot
                .gpus
                .iter()
                .flat_map(|g| g.processes.iter().map(move |p| (g, p)))
                // The socket's peer credentials vouch for the pid; inside a container, where
                // the driver reports host pids, the memory it holds identifies it.
                .find(|(_, p)| agent_is_process(agent, p))
                .and_then(|(g, p)| Some((g.name.clone(), p.used?.whole_mib())));
            let Some((gpu_name, used)) = used else {
                continue;
            };
            let best = self
                .workloads
                .agent_peaks
                .entry(agent.endpoint.pid)
                .or_insert(0);
            // Only a clearly higher peak is worth a write.
            if used > *best + 64 {
                *best = used;
                self.workloads
                    .calibration
                    .record(&calibration::key(&w.id, None), used, &gpu_name);
                changed = true;
            }
        }
        if changed {
            self.save_calibration();
        }
    }

    fn save_calibration(&self) {
        self.workloads.needs_stale.set(true);
        if let (Some(writer), Some(path)) =
            (&self.settings_writer, &self.workloads.calibration_path)
        {
            writer.write(path.clone(), self.workloads.calibration.to_toml());
        }
    }

    fn save_user_presets(&self) {
        self.workloads.needs_stale.set(true);
        if let (Some(writer), Some(path)) =
            (&self.settings_writer, &self.workloads.user_presets_path)
        {
            writer.write(
                path.clone(),
                catalogue::to_toml(&self.workloads.catalogue.user_workloads()),
            );
        }
    }

    fn toast(&mut self, text: String, ok: bool) {
        let tone = if ok {
            release_panel::Tone::Good
        } else {
            release_panel::Tone::Bad
        };
        self.release_view.toast = Some(Toast::new(text, tone));
    }

    fn on_advisor_action(&mut self, action: AdvisorAction, gpu: &crate::telemetry::GpuSample) {
        match action {
            AdvisorAction::StartRun(key, name, expected) => {
                let readings: Vec<(f64, f64)> = {
                    let t = sampler::lock(&self.telemetry);
                    let slot = self.selected_slot(t.latest.as_ref());
                    let now = t.history.newest(slot).unwrap_or(0.0);
                    t.history
                        .readings(slot, now - calibration::LOOK_BACK_SECONDS, now)
                        .into_iter()
                        .map(|(at, v)| {
                            (
                                at,
                                f64::from(v.get(crate::telemetry::history::Metric::VramUsedMib)),
                            )
                        })
                        .collect()
                };
                let now = gpu.memory.used.mib();
                let recorder =
                    RunRecorder::start_from(key.clone(), name.clone(), &readings, expected)
                        .unwrap_or_else(|| RunRecorder::start(key, name, now));
                self.workloads.recorder = Some(recorder);
            }
            AdvisorAction::FinishRun if self.is_demo() => {
                if let Some(r) = self.workloads.recorder.take() {
                    self.release_view.toast = Some(Toast::new(
                        crate::t!(
                            "demo-run-not-recorded",
                            name = r.name.clone(),
                            peak = self.settings.memory_unit.format_mib(r.peak_mib() as f64)
                        ),
                        release_panel::Tone::Neutral,
                    ));
                }
            }
            AdvisorAction::FinishRun
                if self
                    .workloads
                    .recorder
                    .as_ref()
                    .is_some_and(RunRecorder::far_below_expected) =>
            {
                if let Some(r) = &mut self.workloads.recorder {
                    r.confirming = true;
                }
            }
            AdvisorAction::FinishRun | AdvisorAction::ConfirmRun => {
                if let Some(r) = self.workloads.recorder.take() {
                    self.workloads
                        .calibration
                        .record(&r.key, r.peak_mib(), &gpu.name);
                    self.save_calibration();
                    self.toast(
                        crate::t!(
                            "app-recorded",
                            name = &r.name,
                            peak = self.settings.memory_unit.format_mib(r.peak_mib() as f64),
                            gpu = &gpu.name
                        ),
                        true,
                    );
                }
            }
            AdvisorAction::CancelRun => self.workloads.recorder = None,
            AdvisorAction::AddPreset(w) => {
                self.workloads.catalogue.merge_user(vec![*w]);
                self.save_user_presets();
            }
            AdvisorAction::SavePreset(old_id, w) => {
                // Renamed: the old entry goes, so an edit never leaves a copy behind.
                if old_id != w.id {
                    self.workloads.catalogue.remove_user(&old_id);
                }
                self.workloads.catalogue.merge_user(vec![*w]);
                self.save_user_presets();
            }
            AdvisorAction::RemovePreset(id) => {
                self.workloads.removed = self
                    .workloads
                    .catalogue
                    .user_workloads()
                    .into_iter()
                    .find(|w| w.id == id);
                self.workloads.catalogue.remove_user(&id);
                self.save_user_presets();
            }
            AdvisorAction::UndoRemove => {
                if let Some(w) = self.workloads.removed.take() {
                    self.workloads.catalogue.merge_user(vec![w]);
                    self.save_user_presets();
                }
            }
            AdvisorAction::Import => self.files.request(Purpose::ImportPresets),
            AdvisorAction::Export => {
                let text = catalogue::to_toml(&self.workloads.catalogue.user_workloads());
                self.files.request(Purpose::ExportPresets(text));
            }
        }
    }

    /// The remote hosts window, when open.
    fn hosts(&mut self, ctx: &egui::Context) {
        let Some(fleet) = &self.fleet else { return };
        if !self.hosts_window.open {
            return;
        }
        let hosts = fleet.hosts();
        match super::hosts_panel::show(ctx, &mut self.hosts_window, &hosts) {
            Some(super::hosts_panel::HostsAction::Add(config)) => match fleet.add(config.clone()) {
                Ok(()) => {
                    self.settings.remote_hosts.push(config);
                    self.hosts_window.address.clear();
                    self.hosts_window.token.clear();
                    self.hosts_window.error = None;
                }
                Err(e) => self.hosts_window.error = Some(e),
            },
            Some(super::hosts_panel::HostsAction::Remove(address)) => {
                fleet.remove(&address);
                self.settings.remote_hosts.retain(|h| h.address != address);
            }
            None => {}
        }
    }

    fn apply_settings_change(&mut self, before: &Settings) {
        if self.settings.margin_percent != before.margin_percent {
            self.workloads.needs_stale.set(true);
        }
        if self.settings.sample_interval_ms != before.sample_interval_ms
            && let Some(sampler) = &self.sampler
        {
            sampler.set_interval(Duration::from_millis(self.settings.sample_interval_ms));
        }
        if self.settings.alerts != before.alerts {
            self.alerts.lock().rules = self.settings.alerts.clone();
        }
        if let Some(writer) = &self.settings_writer {
            writer.save(&self.settings);
        }
    }
}

/// True when `agent` runs in process `p`: the same pid, or — inside a container, where the
/// driver reports host pids the agent cannot know — the only process we cannot see whose VRAM
/// is at least what torch reserved in the agent, within 2 GiB (a CUDA context and other
/// libraries' memory come on top).
fn agent_is_process(
    agent: &crate::release::discovery::LiveAgent,
    p: &crate::telemetry::ProcessInfo,
) -> bool {
    if agent.endpoint.pid == p.pid {
        return true;
    }
    match (p.visible, p.used, agent.info.reserved) {
        (false, Some(used), Some(reserved)) => {
            used.0 >= reserved && used.0 - reserved <= 2 * crate::units::GIB
        }
        _ => false,
    }
}

/// Columns for a chart `width` points wide: one per two points, so each column's mean is
/// steady (a one-point column of a day-long window flickers between neighbouring readings)
/// while its min..max band still keeps every peak.
fn plot_columns(width: f32) -> usize {
    (width / 2.0).max(50.0) as usize
}

/// Size of the helper lines under controls, points.
const SMALL_TEXT_POINTS: f32 = 11.0;

/// How far back "Free now" looks for the most memory in use, seconds: a verdict then follows a
/// job's high-water mark instead of every reading.
const STEADY_FREE_SECONDS: f64 = 10.0;

/// Least height the charts get (below it, the history scrolls instead), points.
const MIN_CHARTS_HEIGHT: f32 = 260.0;

/// Height of the "Busy but slow?" box under the charts, points.
const DIAGNOSIS_HEIGHT: f32 = 124.0;

/// Height for the charts out of `available` points: what the header, the statistics line, the
/// diagnosis and a process table of `processes` rows (up to 6; more scroll) leave over.
fn charts_height(available: f32, processes: usize) -> f32 {
    let table = 56.0 + 24.0 * processes.clamp(1, 6) as f32;
    (available - 40.0 - 24.0 - DIAGNOSIS_HEIGHT - table).max(MIN_CHARTS_HEIGHT)
}

/// The VRAM chart, its statistics line and the utilisation chart, sharing `height`. Returns
/// the time range on screen.
fn charts(
    ui: &mut Ui,
    data: &PlotData,
    unit: crate::units::MemoryUnit,
    total_mib: f64,
    markers: &[PlotMarker],
    height: f32,
    view: ViewControl,
) -> (f64, f64) {
    let visible = plots::vram(ui, data, unit, total_mib, markers, height * 0.58, view);
    stats_line(ui, data, unit);
    plots::utilisation(ui, data, height * 0.36, view);
    visible
}

/// One line of statistics under the VRAM chart; always there, so the charts never move.
fn stats_line(ui: &mut Ui, data: &PlotData, unit: crate::units::MemoryUnit) {
    let vram = match data.vram_stats {
        Some(s) => crate::t!(
            "app-stats-vram",
            min = unit.format_mib(s.min),
            mean = unit.format_mib(s.mean),
            max = unit.format_mib(s.max)
        ),
        None => crate::t!("app-stats-no-vram"),
    };
    let util = match data.util_stats {
        Some(s) => crate::t!(
            "app-stats-util",
            mean = format!("{:.0}", s.mean),
            max = format!("{:.0}", s.max)
        ),
        None => crate::t!("app-stats-no-util"),
    };
    let text = format!("{vram}   |   {util}");
    ui.add(egui::Label::new(RichText::new(&text).weak()).truncate())
        .on_hover_text(text);
}

impl eframe::App for VramDeckApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        VramDeckApp::logic(self, ctx);
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    /// Keeps the view state; eframe keeps the window's geometry and egui's (panel widths).
    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(
            storage,
            super::window_state::STORAGE_KEY,
            &self.view_state(),
        );
    }

    /// The theme's panel colour: panels themselves are transparent (see `show`).
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        window_background(visuals).to_normalized_gamma_f32()
    }
}

/// What the window shows behind the panels: the stock panel colour of the active theme.
pub fn window_background(visuals: &egui::Visuals) -> egui::Color32 {
    if visuals.dark_mode {
        egui::Visuals::dark().panel_fill
    } else {
        egui::Visuals::light().panel_fill
    }
}
