//! The vramdeck binary: parses arguments, then opens the window or runs a headless command.
// On Windows a GUI program: no console window opens beside the window from Explorer or the
// Start menu (and closing one cannot end vramdeck); commands attach to the console they were
// typed in (platform::console). An attribute of the crate root, so it cannot live in platform.
#![cfg_attr(windows, windows_subsystem = "windows")]

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;
use vramdeck::cli::{Cli, Command};
use vramdeck::release::discovery;
use vramdeck::release::free::TelemetryProbe;
use vramdeck::release::worker::ReleaseWorker;
use vramdeck::settings;
use vramdeck::telemetry::history::HistoryConfig;
use vramdeck::telemetry::sampler::Sampler;
use vramdeck::ui::VramDeckApp;

fn main() -> ExitCode {
    // The language before anything is said, --help included: --lang, else the window's
    // choice, else the system's.
    let args: Vec<String> = std::env::args().collect();
    if prints_to_a_terminal(&args) {
        vramdeck::platform::console::attach_to_parent_console();
    }
    let language = vramdeck::cli::help::language_argument(&args)
        .or_else(|| settings::default_path().and_then(|p| settings::language_in(&p)))
        .unwrap_or_else(vramdeck::i18n::Language::of_system);
    vramdeck::i18n::set_language(language);
    let matches = vramdeck::cli::help::localize(Cli::command()).get_matches_from(&args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Machine-readable output stays English whatever the language (JSON, the serve API).
    let machine_readable = match &cli.command {
        Some(Command::Diagnose(a)) => a.json,
        Some(Command::Analyze(a)) => a.json,
        Some(Command::Serve(_)) => true,
        _ => false,
    };
    if machine_readable {
        vramdeck::i18n::set_language(vramdeck::i18n::Language::English);
    }
    if cli.command.is_some() {
        vramdeck::platform::console::end_quietly_on_closed_pipe();
    }
    let result = match &cli.command {
        // `vramdeck --demo log` and `vramdeck log --demo` mean the same.
        Some(Command::Log(args)) => vramdeck::cli::log_command(args, cli.demo || args.demo.demo),
        Some(Command::Bench(args)) => vramdeck::bench::command(args, cli.demo || args.demo.demo),
        Some(Command::Agents(args)) => vramdeck::cli::agents_command(args),
        Some(Command::Free(args)) => vramdeck::cli::free_command(args, cli.demo || args.demo.demo),
        Some(Command::Advise(args)) => {
            vramdeck::cli::advise_command(args, cli.demo || args.demo.demo)
        }
        Some(Command::Analyze(args)) => vramdeck::cli::analyze_command(args),
        Some(Command::Diagnose(args)) => {
            vramdeck::cli::diagnose_command(args, cli.demo || args.demo.demo)
        }
        Some(Command::Serve(args)) => {
            vramdeck::serve::serve_command(args, cli.demo || args.demo.demo)
        }
        None => run_window_guarded(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", vramdeck::t!("err-prefix", error = format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Opens the window; a panic inside the window system (winit panics, for example, when the
/// keyboard layout data is missing) becomes a sentence instead of a backtrace.
/// The arguments ask for a command or for help (something printed), not for the window.
fn prints_to_a_terminal(args: &[String]) -> bool {
    let commands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .chain(["help".to_string()])
        .collect();
    args.iter()
        .skip(1)
        .any(|a| commands.contains(a) || matches!(a.as_str(), "-h" | "--help" | "-V" | "--version"))
}

fn run_window_guarded(cli: &Cli) -> anyhow::Result<()> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_window(cli))) {
        Ok(result) => result,
        Err(payload) => {
            let reason = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown failure");
            Err(anyhow::anyhow!(vramdeck::t!(
                "err-window-system",
                reason = reason
            )))
        }
    }
}

fn run_window(cli: &Cli) -> anyhow::Result<()> {
    let demo = cli.demo;
    let file = cli.file_to_open().cloned();
    if let Some(f) = &file {
        // Said in the terminal before a window opens: a typo is not worth a window.
        std::fs::metadata(f).map_err(|e| {
            anyhow::anyhow!(vramdeck::t!(
                "err-cannot-open",
                path = f.display().to_string(),
                error = e.to_string()
            ))
        })?;
    }
    let path = settings::default_path();
    let loaded = match &path {
        Some(p) => settings::load(p),
        None => settings::Loaded {
            settings: settings::Settings::default(),
            warning: Some(vramdeck::t!("err-no-config-dir")),
        },
    };
    let fleet = vramdeck::remote::fleet::Fleet::default();
    for host in &loaded.settings.remote_hosts {
        if let Err(e) = fleet.add(host.clone()) {
            eprintln!(
                "{}",
                vramdeck::t!("err-remote-host", address = host.address.clone(), error = e)
            );
        }
    }
    let local: Box<dyn vramdeck::telemetry::GpuSource> = if demo && cli.demo_gpus != 3 {
        Box::new(vramdeck::telemetry::sim::SimulatedGpus::demo_many(
            &vramdeck::t!("demo-requested"),
            cli.demo_gpus,
        ))
    } else {
        vramdeck::telemetry::open_source(demo)
    };
    // Watching remote hosts from a machine without a GPU: no simulated GPUs beside the
    // real ones (unless --demo asked for them).
    let source = match local.kind() {
        vramdeck::telemetry::SourceKind::Simulated { reason } if !demo && !fleet.is_empty() => {
            vramdeck::remote::fleet::FleetSource::new(None, &reason, fleet.clone())
        }
        _ => vramdeck::remote::fleet::FleetSource::new(Some(local), "", fleet.clone()),
    };
    let source: Box<dyn vramdeck::telemetry::GpuSource> = Box::new(source);
    let (demo_gpus, prefill_hours, prefill_hz) = (cli.demo_gpus, cli.prefill_hours, cli.prefill_hz);
    let start_hidden = cli.hidden;
    let title = if source.kind().is_simulated() {
        vramdeck::t!("window-title-demo")
    } else {
        "vramdeck".to_string()
    };
    // A size eframe restores (kept with the window's position) replaces this one; either is
    // fitted to the monitor on the first pass (`ui::window_state`).
    let mut viewport = egui::ViewportBuilder::default()
        .with_title(title.clone())
        .with_inner_size(vramdeck::ui::window_state::DEFAULT_SIZE)
        .with_min_inner_size(if loaded.settings.mini_view {
            vramdeck::ui::mini_view::min_size(1)
        } else {
            vramdeck::ui::window_state::FULL_MIN_SIZE
        });
    match eframe::icon_data::from_png_bytes(include_bytes!("../assets/vramdeck-128.png")) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(e) => eprintln!("vramdeck: the window icon could not be decoded: {e}"),
    }
    // Wayland's app id and X11's window class (completed in `platform::window`): what the
    // .desktop file's StartupWMClass and the taskbar match the window by.
    viewport = viewport.with_app_id("vramdeck");
    vramdeck::platform::window::before_window();
    // The window's place and size, egui's panel widths and the view: beside the calibration.
    let persistence_path = vramdeck::workloads::calibration::default_path()
        .and_then(|p| p.parent().map(|dir| dir.join("window.ron")));
    let options = eframe::NativeOptions {
        viewport,
        persistence_path,
        dithering: false,
        ..Default::default()
    };
    let interval = loaded.settings.sample_interval();
    let user_presets_path = vramdeck::workloads::catalogue::user_presets_path();
    let catalogue = vramdeck::workloads::catalogue::Catalogue::load(user_presets_path.as_deref());
    let calibration_file = vramdeck::workloads::calibration::default_path();
    let (calibration, calibration_warning) = calibration_file
        .as_deref()
        .map(vramdeck::workloads::calibration::Calibration::load)
        .unwrap_or_default();
    // Simulated peaks are not measurements of this machine: demo mode never saves any.
    let calibration_path = calibration_file.filter(|_| !source.kind().is_simulated());
    let mut warnings: Vec<String> = loaded.warning.into_iter().collect();
    warnings.extend(calibration_warning);
    eframe::run_native(
        &title,
        options,
        Box::new(move |cc| {
            if let Err(e) = vramdeck::platform::window::identify(cc) {
                eprintln!("vramdeck: could not set the window class: {e}");
            }
            let mut warnings = warnings;
            let font = vramdeck::ui::fonts::install(&cc.egui_ctx);
            // Said once, where Chinese is expected: the language, or the system's locale.
            if vramdeck::i18n::language() == vramdeck::i18n::Language::Chinese
                || vramdeck::i18n::Language::of_system() == vramdeck::i18n::Language::Chinese
            {
                warnings.extend(font.note());
            }
            let ctx = cc.egui_ctx.clone();
            let alerts = vramdeck::alerts::SharedAlerts::default();
            let recording = vramdeck::logs::recorder::Recording::default();
            let sampler = Sampler::spawn_with(
                source,
                interval,
                HistoryConfig::default(),
                vec![alerts.observer(), recording.observer()],
                move || vramdeck::ui::wake(&ctx),
            );
            let telemetry = sampler.telemetry();
            if prefill_hours > 0.0 {
                vramdeck::bench::prefill(&telemetry, demo_gpus, prefill_hours, prefill_hz);
            }
            let ctx = cc.egui_ctx.clone();
            let release = ReleaseWorker::spawn(
                discovery::AgentDir::from_env(),
                loaded.settings.comfyui_address.clone(),
                Box::new(TelemetryProbe(telemetry.clone())),
                move || vramdeck::ui::wake(&ctx),
            );
            let writer = path.map(settings::SettingsWriter::spawn);
            release.send(vramdeck::release::worker::WorkerCommand::SetRoomKeep(
                loaded.settings.room_keep.clone(),
            ));
            release.send(
                vramdeck::release::worker::WorkerCommand::SetRoomPolicyByApp(
                    loaded.settings.room_policy_by_app.clone(),
                ),
            );
            release.send(vramdeck::release::worker::WorkerCommand::SetHandBack(
                loaded.settings.hand_back,
            ));
            release.send(vramdeck::release::worker::WorkerCommand::SetRoomPolicy(
                loaded.settings.make_room,
            ));
            release.send(vramdeck::release::worker::WorkerCommand::SetAppAddresses {
                ollama: loaded.settings.ollama_address.clone(),
                a1111: loaded.settings.a1111_address.clone(),
                engines: loaded.settings.engines.clone(),
            });
            let app = VramDeckApp::new(telemetry, Some(sampler), loaded.settings, writer, warnings)
                .with_release_worker(release)
                .with_fleet(fleet)
                .with_alerts(alerts)
                .with_workloads(catalogue, calibration, calibration_path, user_presets_path);
            let app = match vramdeck::logs::recorder::RecorderConfig::in_data_dir() {
                Some(config) => app.with_recording(recording, config),
                None => app,
            };
            // The tray's commands wake the window, whose logic runs even while it is hidden.
            let ctx = cc.egui_ctx.clone();
            let tray = vramdeck::platform::tray::Tray::spawn(
                vramdeck::platform::tray::TrayText {
                    title: "vramdeck".into(),
                    ..Default::default()
                },
                std::sync::Arc::new(move || ctx.request_repaint()),
            );
            if let Err(e) = &tray {
                eprintln!("vramdeck: {e}");
            }
            let mut app = app
                .restore(cc.storage)
                .with_tray(tray)
                .with_autostart(vramdeck::platform::autostart::enabled())
                .start_hidden(start_hidden);
            if let Some(f) = file {
                app.open_log_file(f);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!(vramdeck::t!("err-window", error = e.to_string())))
}
