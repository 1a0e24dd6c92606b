//! Command-line interface: the GUI by default, headless subcommands that reuse the library.

use crate::logs::smi_csv;
use crate::telemetry::{GpuSource, Snapshot};
use clap::{Args, Parser, Subcommand};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// vramdeck — watch NVIDIA GPU memory next to your AI WebUI.
#[derive(Debug, Parser)]
#[command(name = "vramdeck", version, about)]
pub struct Cli {
    /// Use simulated demo GPUs even when an NVIDIA GPU is present.
    #[arg(long, global = true)]
    pub demo: bool,
    /// Measurement aid: simulate this many GPUs in demo mode.
    #[arg(long, hide = true, default_value_t = 2)]
    pub demo_gpus: usize,
    /// Measurement aid: start with this many hours of simulated history.
    #[arg(long, hide = true, default_value_t = 0.0)]
    pub prefill_hours: f64,
    /// Measurement aid: readings per second in that history (10 = the fastest sampling).
    #[arg(long, hide = true, default_value_t = 10.0)]
    pub prefill_hz: f64,
    /// What to do; without a subcommand the window opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Headless subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print readings as CSV, in the format of
    /// `nvidia-smi --query-gpu=timestamp,index,name,memory.used,memory.total,utilization.gpu,temperature.gpu --format=csv`.
    Log(LogArgs),
    /// Measure sampling, history and plotting costs on this machine.
    Bench(crate::bench::BenchArgs),
    /// List running vramdeck agents (and ComfyUI) with the memory they hold.
    Agents(ComfyArgs),
    /// Release cached VRAM in cooperating processes and show what came back.
    Free(FreeArgs),
    /// Say which workload presets fit in the GPU's free VRAM now.
    Advise(AdviseArgs),
    /// List the CUDA out-of-memory events in a log and what to change.
    Analyze {
        /// The log file (ComfyUI console log, WebUI log, any PyTorch traceback).
        log: PathBuf,
    },
}

/// Options of `vramdeck advise`.
#[derive(Debug, Args, Clone)]
pub struct AdviseArgs {
    /// GPU index.
    #[arg(long, default_value_t = 0)]
    pub gpu: u32,
    /// Only this preset (id or name, e.g. ddcolor or "Wan2.1 T2V 14B 480p (quantised)").
    #[arg(long)]
    pub workload: Option<String>,
    /// Safety margin, percent of the card.
    #[arg(long, default_value_t = crate::workloads::advisor::DEFAULT_MARGIN_PERCENT)]
    pub margin: f32,
    /// What-if: plan for this much free VRAM (MiB) instead of reading the GPU.
    #[arg(long, requires = "total_mib")]
    pub free_mib: Option<u64>,
    /// What-if: a card with this much VRAM (MiB).
    #[arg(long, requires = "free_mib")]
    pub total_mib: Option<u64>,
    /// Print the low / medium / high templates for 8, 12, 24, 48 and 80 GB cards instead.
    #[arg(long)]
    pub templates: bool,
}

/// Where ComfyUI listens.
#[derive(Debug, Args, Clone)]
pub struct ComfyArgs {
    /// ComfyUI's address (loopback only); "none" to leave ComfyUI alone.
    #[arg(long, default_value = crate::release::comfyui::DEFAULT_ADDRESS)]
    pub comfyui: String,
}

/// Options of `vramdeck free`.
#[derive(Debug, Args, Clone)]
pub struct FreeArgs {
    /// Only the agent of this process id (default: every agent, and ComfyUI if running).
    #[arg(long)]
    pub pid: Option<u32>,
    /// `cache`: empty PyTorch's cache; `unload`: also unload models.
    #[arg(long, value_enum, default_value_t = crate::release::FreeLevel::Cache)]
    pub level: crate::release::FreeLevel,
    /// Where ComfyUI listens.
    #[command(flatten)]
    pub comfy: ComfyArgs,
}

/// Options of `vramdeck log`.
#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    /// Milliseconds between readings (100–5000; nvidia-smi's -lms).
    #[arg(long, default_value_t = 1_000)]
    pub interval_ms: u64,
    /// Stop after this many readings; 0 runs until interrupted.
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Append to this file instead of printing (the header is written only to a new file).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Log one row per process holding VRAM instead of one per GPU.
    #[arg(long)]
    pub processes: bool,
    /// Leave out the header line.
    #[arg(long)]
    pub no_header: bool,
}

/// Runs `vramdeck log` against `source`, writing to `out`. Returns when `count` readings are
/// written or the reader goes away (`vramdeck log | head` ends quietly).
pub fn run_log(
    args: &LogArgs,
    source: &mut dyn GpuSource,
    out: &mut dyn Write,
    write_header: bool,
) -> anyhow::Result<()> {
    let interval =
        crate::telemetry::sampler::clamp_interval(Duration::from_millis(args.interval_ms));
    let header = if args.processes {
        smi_csv::PROCESS_HEADER
    } else {
        smi_csv::GPU_HEADER
    };
    let mut written = 0u64;
    let result = (|| -> std::io::Result<()> {
        if write_header && !args.no_header {
            writeln!(out, "{header}")?;
        }
        loop {
            let started = Instant::now();
            let gpus = source.sample().map_err(std::io::Error::other)?;
            let snapshot = Snapshot {
                time: SystemTime::now(),
                gpus,
            };
            let rows = if args.processes {
                smi_csv::process_rows(&snapshot)
            } else {
                smi_csv::gpu_rows(&snapshot)
            };
            if !rows.is_empty() {
                writeln!(out, "{rows}")?;
            }
            // Flushed every reading, so a crash or Ctrl-C loses nothing already read.
            out.flush()?;
            written += 1;
            if args.count != 0 && written >= args.count {
                return Ok(());
            }
            std::thread::sleep(interval.saturating_sub(started.elapsed()));
        }
    })();
    match result {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(()),
    }
}

/// `vramdeck log` with its output target opened.
pub fn log_command(args: &LogArgs, demo: bool) -> anyhow::Result<()> {
    let mut source = crate::telemetry::open_source(demo);
    if let crate::telemetry::SourceKind::Simulated { reason } = source.kind() {
        eprintln!("vramdeck: demo mode, these readings are simulated ({reason})");
    }
    if args.processes {
        // A process log is about processes: read them fresh every time.
        source.set_process_refresh(std::time::Duration::ZERO);
    }
    match &args.output {
        None => {
            let stdout = std::io::stdout();
            run_log(args, source.as_mut(), &mut stdout.lock(), true)
        }
        Some(path) => {
            let is_new = std::fs::metadata(path)
                .map(|m| m.len() == 0)
                .unwrap_or(true);
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open {} for writing: {e}", path.display()))?;
            run_log(args, source.as_mut(), &mut file, is_new)
        }
    }
}

fn comfy_from(args: &ComfyArgs) -> anyhow::Result<Option<crate::release::comfyui::ComfyUi>> {
    if args.comfyui.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    Ok(Some(crate::release::comfyui::ComfyUi::parse(
        &args.comfyui,
    )?))
}

/// `vramdeck agents`: one line per agent, then problems and ComfyUI.
pub fn agents_command(args: &ComfyArgs) -> anyhow::Result<()> {
    use crate::release::{discovery, free};
    use crate::units::MemoryUnit;
    let dir = discovery::agent_dir();
    let found = discovery::discover(&dir, free::HELLO_TIMEOUT);
    println!("agents in {}:", dir.display());
    if found.agents.is_empty() {
        println!("  none running");
    }
    let bytes = |b: Option<u64>| {
        b.map(|b| MemoryUnit::MiB.format(crate::units::Bytes(b)))
            .unwrap_or_else(|| "n/a".into())
    };
    for a in &found.agents {
        let i = &a.info;
        println!(
            "  pid {:>7}  {:<20} {:<24} torch reserved {:>12}  allocated {:>12}  levels {}{}",
            i.pid,
            i.process_name,
            i.label.as_deref().unwrap_or("-"),
            bytes(i.reserved),
            bytes(i.allocated),
            i.levels.join(","),
            i.torch_missing_reason
                .as_deref()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default()
        );
    }
    for stale in &found.removed_stale {
        println!("  removed stale socket {}", stale.display());
    }
    for problem in &found.problems {
        println!("  problem: {problem}");
    }
    if let Some(comfy) = comfy_from(args)? {
        match comfy.system_stats(free::HELLO_TIMEOUT) {
            Ok(stats) => {
                for d in stats.devices {
                    println!(
                        "ComfyUI at {}: {} — VRAM free {} of {}, torch reserved {}",
                        comfy.address(),
                        d.name,
                        bytes(Some(d.vram_free)),
                        bytes(Some(d.vram_total)),
                        bytes(Some(d.torch_vram_total))
                    );
                }
            }
            Err(e) => println!("ComfyUI: {e}"),
        }
    }
    Ok(())
}

/// `vramdeck free`.
pub fn free_command(args: &FreeArgs, demo: bool) -> anyhow::Result<()> {
    use crate::release::free::{self, FreeRequest, FreeTarget};
    let target = match args.pid {
        Some(pid) => FreeTarget::Agent(pid),
        None => FreeTarget::All,
    };
    let request = FreeRequest {
        target,
        level: args.level,
        agent_dir: crate::release::discovery::agent_dir(),
        comfyui: comfy_from(&args.comfy)?,
    };
    let mut probe = crate::telemetry::open_source(demo);
    let report = free::perform(&request, &mut probe);
    for r in &report.results {
        match &r.outcome {
            Ok(freed) => println!(
                "{}: released {}",
                r.target,
                freed
                    .reported
                    .map(|b| crate::units::MemoryUnit::MiB.format(b))
                    .unwrap_or_else(|| "(not reported)".into())
            ),
            Err(e) => println!("{}: {e}", r.target),
        }
    }
    println!("{}", report.summary());
    let all_failed =
        !report.results.is_empty() && report.results.iter().all(|r| r.outcome.is_err());
    if all_failed {
        anyhow::bail!("no target released memory");
    }
    Ok(())
}

/// The report `vramdeck analyze` prints for a log's text.
pub fn analysis_report(text: &str, origin: &str) -> String {
    use crate::logs::oom;
    use crate::units::MemoryUnit;
    let catalogue = crate::workloads::catalogue::Catalogue::load(
        crate::workloads::catalogue::user_presets_path().as_deref(),
    );
    let calibration = crate::workloads::calibration::default_path()
        .map(|p| crate::workloads::calibration::Calibration::load(&p).0)
        .unwrap_or_default();
    let analysis = oom::analyze(text, &catalogue, &calibration);
    if analysis.events.is_empty() {
        return format!(
            "{origin}: no CUDA out-of-memory events in {} lines\n",
            analysis.lines
        );
    }
    let mut out = format!(
        "{origin}: {} event(s) in {} lines\n",
        analysis.events.len(),
        analysis.lines
    );
    let b = |v: Option<crate::units::Bytes>| {
        v.map(|b| MemoryUnit::MiB.format(b))
            .unwrap_or_else(|| "?".into())
    };
    for e in &analysis.events {
        out.push_str(&format!(
            "\nline {}: {}\n  {}\n",
            e.line,
            e.kind.label(),
            e.text
        ));
        if e.requested.is_some() || e.total.is_some() {
            out.push_str(&format!(
                "  requested {} · GPU {} · total {} · free {} · allocated {} · reserved {}{}\n",
                b(e.requested),
                e.gpu.map(|g| g.to_string()).unwrap_or_else(|| "?".into()),
                b(e.total),
                b(e.free),
                b(e.allocated),
                b(e.reserved),
                e.process_in_use
                    .map(|p| format!(" · process in use {}", MemoryUnit::MiB.format(p)))
                    .unwrap_or_default()
            ));
        }
        for a in &e.advice {
            out.push_str(&format!("  -> {a}\n"));
        }
    }
    out
}

/// `vramdeck analyze LOG`.
pub fn analyze_command(log: &std::path::Path) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(log).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", log.display()))?;
    // Logs mix encodings (Windows consoles): undecodable bytes must not stop the analysis.
    let text = String::from_utf8_lossy(&bytes);
    print!("{}", analysis_report(&text, &log.display().to_string()));
    Ok(())
}

/// `vramdeck advise`: the advisor's verdicts as text.
pub fn advise_command(args: &AdviseArgs, demo: bool) -> anyhow::Result<()> {
    print!("{}", advise_text(args, demo)?);
    Ok(())
}

/// The text `vramdeck advise` prints.
pub fn advise_text(args: &AdviseArgs, demo: bool) -> anyhow::Result<String> {
    use crate::units::{Bytes, MemoryUnit};
    use crate::workloads::advisor::{self, Budget};
    use crate::workloads::{calibration, catalogue::Catalogue};
    use std::fmt::Write as _;
    let catalogue = Catalogue::load(crate::workloads::catalogue::user_presets_path().as_deref());
    let (cal, cal_warning) = calibration::default_path()
        .map(|p| calibration::Calibration::load(&p))
        .unwrap_or_default();
    let mut out = String::new();
    for w in catalogue.warnings.iter().chain(cal_warning.iter()) {
        writeln!(out, "warning: {w}")?;
    }
    if args.templates {
        for (gib, levels) in advisor::templates(&catalogue, &cal) {
            writeln!(out, "{gib} GB card:")?;
            for (level, items) in ["low", "medium", "high"].iter().zip(levels) {
                writeln!(
                    out,
                    "  {level:<6} {}",
                    if items.is_empty() {
                        "nothing fits".into()
                    } else {
                        items.join("; ")
                    }
                )?;
            }
        }
        return Ok(out);
    }
    let (gpu_name, free, total) = match (args.free_mib, args.total_mib) {
        (Some(free), Some(total)) => (
            "what-if card".to_string(),
            Bytes::from_mib(free),
            Bytes::from_mib(total),
        ),
        _ => {
            let mut source = crate::telemetry::open_source(demo);
            if let crate::telemetry::SourceKind::Simulated { reason } = source.kind() {
                writeln!(out, "demo mode: simulated GPU ({reason})")?;
            }
            let gpus = source.sample()?;
            let g = gpus
                .iter()
                .find(|g| g.index == args.gpu)
                .ok_or_else(|| anyhow::anyhow!("no GPU {} (found {})", args.gpu, gpus.len()))?;
            (g.name.clone(), g.memory.free, g.memory.total)
        }
    };
    let budget = Budget::new(free, total, args.margin);
    writeln!(
        out,
        "GPU {} ({gpu_name}): free {} of {}, margin {:.0} % ({}) -> plan with {}",
        args.gpu,
        MemoryUnit::MiB.format(free),
        MemoryUnit::MiB.format(total),
        args.margin,
        MemoryUnit::MiB.format(budget.margin),
        MemoryUnit::MiB.format_mib(budget.usable_mib()),
    )?;
    let all = advisor::advise(&catalogue, &budget, &cal);
    let chosen: Vec<_> = match &args.workload {
        Some(name) => {
            let w = catalogue.find(name).ok_or_else(|| {
                anyhow::anyhow!("no preset named {name:?}; try `vramdeck advise` for the list")
            })?;
            all.into_iter().filter(|a| a.id == w.id).collect()
        }
        None => all,
    };
    for a in chosen {
        let measured = a
            .measured_here_mib
            .map(|m| format!(", measured here {}", MemoryUnit::MiB.format_mib(m as f64)))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<13} {} — peak {}{measured}; {} at once",
            format!("[{}]", a.fit.label()),
            a.name,
            MemoryUnit::MiB.format_mib(a.peak_mib as f64),
            a.max_concurrent
        )?;
        for line in a.detail_lines() {
            writeln!(out, "              {line}")?;
        }
        if let Some(f) = &a.fallback {
            writeln!(out, "              instead: {f}")?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::sim::SimulatedGpus;

    fn args(count: u64) -> LogArgs {
        LogArgs {
            interval_ms: 100,
            count,
            output: None,
            processes: false,
            no_header: false,
        }
    }

    #[test]
    fn log_writes_header_then_one_row_per_gpu_per_reading() {
        let mut out = Vec::new();
        run_log(&args(3), &mut SimulatedGpus::demo("test"), &mut out, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], smi_csv::GPU_HEADER);
        assert_eq!(lines.len(), 1 + 3 * 2);
    }

    #[test]
    fn process_log_lists_processes() {
        let mut out = Vec::new();
        let a = LogArgs {
            processes: true,
            ..args(1)
        };
        run_log(&a, &mut SimulatedGpus::demo("test"), &mut out, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(smi_csv::PROCESS_HEADER));
        assert!(text.contains("python3 facefusion.py"));
    }

    struct ClosedPipe;
    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn advise_what_if_prints_the_same_advice_headless() {
        let args = AdviseArgs {
            gpu: 0,
            workload: Some("ddcolor".into()),
            margin: 25.0,
            free_mib: Some(11_980),
            total_mib: Some(12_288),
            templates: false,
        };
        let text = advise_text(&args, true).unwrap();
        assert!(text.contains("[fits]        DDColor (ComfyUI)"), "{text}");
        assert!(
            text.contains("largest safe size 960 (building 960, portrait 680)"),
            "{text}"
        );
        let all = advise_text(
            &AdviseArgs {
                workload: None,
                ..args.clone()
            },
            true,
        )
        .unwrap();
        assert!(
            all.contains("[will not fit] Wan2.1 T2V 14B 480p (not quantised)"),
            "{all}"
        );
        let templates = advise_text(
            &AdviseArgs {
                templates: true,
                ..args
            },
            true,
        )
        .unwrap();
        assert!(
            templates.starts_with("8 GB card:") || templates.contains("\n8 GB card:"),
            "{templates}"
        );
    }

    #[test]
    fn a_closed_pipe_ends_the_log_quietly() {
        run_log(
            &args(0),
            &mut SimulatedGpus::demo("test"),
            &mut ClosedPipe,
            true,
        )
        .unwrap();
    }
}
