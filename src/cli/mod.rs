//! Command-line interface: the GUI by default, headless subcommands that reuse the library.
//! One file per subcommand; this one holds the arguments.

mod advise;
mod agents;
mod analyze;
pub mod diagnose;
pub mod help;
mod log;

pub use advise::{advise_command, advise_text};
pub use agents::{agents_command, free_command};
pub use analyze::{analysis_report, analyze_command};
pub use diagnose::diagnose_command;
pub use log::{log_command, run_log};

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// vramdeck — watch NVIDIA GPU memory next to your AI WebUI.
///
/// Without a subcommand, vramdeck opens its window (with a log, when one is named).
#[derive(Debug, Parser)]
#[command(
    name = "vramdeck",
    version,
    about,
    after_help = "Examples:\n  vramdeck                     open the window\n  vramdeck --demo              the window with simulated GPUs\n  vramdeck gpu-log.csv         the window showing a CSV log (or a console log's OOM analysis)\n  vramdeck advise              what fits in free VRAM now, in the terminal"
)]
pub struct Cli {
    /// Use simulated demo GPUs even when an NVIDIA GPU is present.
    #[arg(long)]
    pub demo: bool,
    /// Open this log in the window: an nvidia-smi / vramdeck CSV log in the plots, or a
    /// console log's out-of-memory analysis.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The same as FILE.
    #[arg(long = "open", value_name = "FILE", conflicts_with = "file")]
    pub open: Option<PathBuf>,
    /// The language of the window and of what commands print: en or zh-CN (default: the
    /// system's).
    #[arg(long, global = true, value_name = "LANG")]
    pub lang: Option<crate::i18n::Language>,
    /// Start hidden in the tray (how the session starts vramdeck); shown when there is no tray.
    #[arg(long)]
    pub hidden: bool,
    /// Measurement aid: simulate this many GPUs in demo mode.
    #[arg(long, hide = true, default_value_t = 3)]
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

impl Cli {
    /// The log to open in the window, if one was named.
    pub fn file_to_open(&self) -> Option<&PathBuf> {
        self.file.as_ref().or(self.open.as_ref())
    }
}

/// `--demo` where it changes something: commands that read a GPU.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct DemoArg {
    /// Use simulated demo GPUs even when an NVIDIA GPU is present.
    #[arg(long)]
    pub demo: bool,
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
    /// List the CUDA out-of-memory events in a log and what to change, or summarise a CSV log.
    Analyze(AnalyzeArgs),
    /// Watch every GPU for a while and say why it is busy but slow: GPU-bound, starved by the
    /// CPU side, throttled, streaming over PCIe, or held by the video encoder.
    Diagnose(DiagnoseArgs),
    /// Serve this box's GPUs to Prometheus (/metrics, dcgm-exporter's names) and to vramdeck
    /// windows elsewhere (/api/v1), on 127.0.0.1:9401 unless told otherwise.
    Serve(crate::serve::ServeArgs),
}

/// Options of `vramdeck diagnose`.
#[derive(Debug, Args, Clone)]
pub struct DiagnoseArgs {
    /// How long to watch, seconds (2 to 600).
    #[arg(long, default_value_t = 10.0, value_parser = seconds_2_to_600)]
    pub seconds: f64,
    /// Only this GPU index.
    #[arg(long)]
    pub gpu: Option<u32>,
    /// Print JSON (schema `vramdeck.diagnose/1`, described in README) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub demo: DemoArg,
}

fn seconds_2_to_600(text: &str) -> Result<f64, String> {
    let s: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if (2.0..=600.0).contains(&s) {
        Ok(s)
    } else {
        Err(format!("{text} is not in 2..=600 seconds"))
    }
}

/// Options of `vramdeck analyze`.
#[derive(Debug, Args, Clone)]
pub struct AnalyzeArgs {
    /// The log: a console log (ComfyUI, a WebUI, any PyTorch traceback, onnxruntime) for its
    /// out-of-memory events, or an nvidia-smi / vramdeck CSV log for a per-GPU summary; `-`
    /// reads standard input.
    pub log: PathBuf,
    /// Print JSON (schema `vramdeck.analyze/1`, described in README) instead of text.
    #[arg(long)]
    pub json: bool,
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
    /// Safety margin, percent of each workload's peak (0-100), on top of a fixed 512 MiB.
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
    /// Print memory in GiB instead of MiB.
    #[arg(long)]
    pub gib: bool,
    #[command(flatten)]
    pub demo: DemoArg,
}

/// Where ComfyUI listens.
#[derive(Debug, Args, Clone)]
pub struct ComfyArgs {
    /// ComfyUI's address on this machine (loopback only; without a port, 8188 and ComfyUI
    /// Desktop's 8000 are tried); "none" to leave ComfyUI alone.
    #[arg(long, default_value = crate::release::comfyui::DEFAULT_ADDRESS)]
    pub comfyui: String,
    /// Ollama's address on this machine (loopback only; without a port, 11434); "none" to
    /// leave Ollama alone.
    #[arg(long, default_value = "localhost")]
    pub ollama: String,
    /// Stable Diffusion WebUI's or Forge's address, started with --api (loopback only;
    /// without a port, 7860); "none" to leave it alone.
    #[arg(long, default_value = "localhost")]
    pub a1111: String,
    /// The other engines: "auto" (llama.cpp server, llama-swap, LM Studio, vLLM, SGLang,
    /// InvokeAI and SwarmUI at their default ports), "none", or a list such as
    /// "vllm=127.0.0.1:8001,llama-server=localhost:8081".
    #[arg(long, default_value = "auto")]
    pub engines: String,
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
    /// How long to wait, in seconds, for a release ComfyUI defers until its running prompt
    /// ends (it unloads between prompts, never inside one).
    #[arg(long, default_value_t = 900)]
    pub wait: u64,
    #[command(flatten)]
    pub demo: DemoArg,
}

/// Options of `vramdeck log`.
#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    /// Milliseconds between readings, 100 to 5000 (nvidia-smi's -lms).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(100..=5_000))]
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
    #[command(flatten)]
    pub demo: DemoArg,
}
