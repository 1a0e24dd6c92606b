//! `vramdeck bench`: measures what the app does every frame and every sample, on the machine
//! it runs on (including a GPU machine without a Rust toolchain). Timings are medians of
//! several rounds of many calls each.

use crate::telemetry::GpuSource;
use crate::telemetry::history::{History, HistoryConfig, Metric, Values, decimate};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Options of `vramdeck bench`.
#[derive(Debug, clap::Args, Clone)]
pub struct BenchArgs {
    /// Calls of the GPU read per round (at least 1).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub sample_calls: u32,
    /// Also time one `nvidia-smi --query-gpu` subprocess per reading (the seed scripts' way).
    #[arg(long)]
    pub with_nvidia_smi: bool,
    /// Readings taken 100 ms apart for the "at 10 Hz" figures (at least 1).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub cadence_samples: u32,
    /// Instead: render the window's frames with no display through the GPU's EGL device and
    /// report CPU per frame and memory with the GL driver loaded.
    #[arg(long)]
    pub offscreen: bool,
    /// With --offscreen: frames to draw, one per sampling interval.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(3..=100_000))]
    pub frames: u32,
    /// With --offscreen: milliseconds between frames (the window draws once per reading).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(16..=5_000))]
    pub frame_ms: u64,
    /// With --offscreen: draw with Mesa's software renderer (llvmpipe) even beside a GPU.
    #[arg(long)]
    pub software: bool,
    /// With --offscreen: hours of history behind the live readings.
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    #[command(flatten)]
    pub demo: crate::cli::DemoArg,
}

/// Name parts that pair a GPU read with the subprocess it is compared with.
const TEN_HZ: &str = "mean 10 Hz";
const BACK_TO_BACK: &str = "back to back";
const SUBPROCESS: &str = "nvidia-smi --query-gpu subprocess";

/// One benchmark's result.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// What was measured.
    pub name: String,
    /// Median time of one call.
    pub per_call: Duration,
    /// CPU time of one call (this thread's, plus a subprocess's), where it was taken: a call
    /// that waits on the driver or on a child costs wall time but not CPU.
    pub cpu_per_call: Option<Duration>,
    /// Calls per round.
    pub calls: u32,
}

/// Times `f`: `rounds` rounds of `calls` calls, median of the per-call means.
pub fn measure(name: &str, rounds: usize, calls: u32, mut f: impl FnMut()) -> Measurement {
    f(); // warm-up: first NVML calls and allocations are not typical
    let mut per_call: Vec<(Duration, Duration)> = (0..rounds.max(1))
        .map(|_| {
            let cpu = CpuClock::start();
            let started = Instant::now();
            for _ in 0..calls {
                f();
            }
            (
                started.elapsed() / calls.max(1),
                cpu.elapsed() / calls.max(1),
            )
        })
        .collect();
    per_call.sort();
    let (wall, cpu) = per_call[per_call.len() / 2];
    Measurement {
        name: name.to_string(),
        per_call: wall,
        cpu_per_call: CpuClock::AVAILABLE.then_some(cpu),
        calls,
    }
}

/// Times `samples` calls of `f` spaced 100 ms apart, like the sampler at 10 Hz: each call finds
/// the CPU and the driver cold, which is what a user pays (back to back calls are cheaper).
pub fn measure_at_10_hz(name: &str, samples: u32, f: impl FnMut()) -> Measurement {
    measure_spaced(name, samples, Duration::from_millis(100), f)
}

/// Times `samples` calls of `f`, `gap` apart (the sampler's interval).
pub fn measure_spaced(name: &str, samples: u32, gap: Duration, mut f: impl FnMut()) -> Measurement {
    let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..samples {
        let clock = CpuClock::start();
        let started = Instant::now();
        f();
        wall += started.elapsed();
        cpu += clock.elapsed();
        std::thread::sleep(gap);
    }
    Measurement {
        name: name.to_string(),
        per_call: wall / samples.max(1),
        cpu_per_call: CpuClock::AVAILABLE.then_some(cpu / samples.max(1)),
        calls: samples,
    }
}

/// CPU time spent since `start`: this thread's, plus that of children reaped meanwhile.
struct CpuClock {
    thread: Duration,
    children: Duration,
}

impl CpuClock {
    const AVAILABLE: bool = cfg!(unix);

    // The thread clock is read innermost, so the getrusage calls are not billed to `f`.
    fn start() -> Self {
        let children = children_cpu_time();
        CpuClock {
            thread: thread_cpu_time(),
            children,
        }
    }

    fn elapsed(&self) -> Duration {
        let thread = thread_cpu_time().saturating_sub(self.thread);
        thread + children_cpu_time().saturating_sub(self.children)
    }
}

pub(crate) fn thread_cpu_time() -> Duration {
    crate::platform::process::thread_cpu_time()
}

fn children_cpu_time() -> Duration {
    crate::platform::process::children_cpu_time()
}

/// Fills history with `hours` of simulated readings of `gpus` GPUs, `hz` a second, ending now
/// (measurements of the window with a day behind it).
pub fn prefill(
    telemetry: &crate::telemetry::sampler::SharedTelemetry,
    gpus: usize,
    hours: f64,
    hz: f64,
) {
    let mut sim = crate::telemetry::sim::SimulatedGpus::demo_many("prefill", gpus);
    let now = crate::telemetry::unix_seconds(std::time::SystemTime::now());
    let hz = hz.clamp(0.01, 10.0);
    let samples = (hours * 3_600.0 * hz) as u64;
    let mut t = crate::telemetry::sampler::lock(telemetry);
    for i in 0..samples {
        let elapsed = i as f64 / hz;
        let readings = sim.sample_at(Duration::from_secs_f64(elapsed));
        t.history.push(now - hours * 3_600.0 + elapsed, &readings);
    }
}

/// A history holding `hours` of `hz` readings of one GPU, ending at t = 10⁹ s.
pub fn filled_history(hours: f64, hz: f64) -> History {
    let mut h = History::new(HistoryConfig::default());
    let n = (hours * 3_600.0 * hz) as usize;
    let start = 1.0e9 - hours * 3_600.0;
    for i in 0..n {
        let t = start + i as f64 / hz;
        let v = (i % 1_000) as f32 * 40.0;
        h.push_values(0, t, Values([v, 50.0, 20.0, 60.0, 300.0]));
    }
    h
}

/// Runs every benchmark and returns the results (the GPU read first).
pub fn run_all(args: &BenchArgs, source: &mut dyn GpuSource) -> Vec<Measurement> {
    let mut results = Vec::new();
    let label = if source.kind().is_simulated() {
        "simulated"
    } else {
        "NVML"
    };
    let gpus = source.sample().map(|g| g.len()).unwrap_or(0);
    // Like for like with `nvidia-smi --query-gpu`, which lists no processes: every GPU field,
    // process lists served from the last read; then the same with them read every time.
    for (process_refresh, what) in [
        (
            Duration::MAX,
            format!(
                "read every GPU field of {}",
                crate::units::count(gpus as u64, "GPU", "GPUs")
            ),
        ),
        (Duration::ZERO, "the same plus process lists".to_string()),
    ] {
        source.set_process_refresh(process_refresh);
        results.push(measure(
            &format!("{what}, {BACK_TO_BACK} ({label})"),
            5,
            args.sample_calls,
            || {
                let _ = black_box(source.sample());
            },
        ));
    }
    // What the sampler does at 10 Hz: process lists refreshed once a second.
    source.set_process_refresh(crate::telemetry::nvml::PROCESS_REFRESH);
    results.push(measure_at_10_hz(
        &format!(
            "{TEN_HZ} sample of {}, processes refreshed each second ({label})",
            crate::units::count(gpus as u64, "GPU", "GPUs")
        ),
        args.cadence_samples,
        || {
            let _ = black_box(source.sample());
        },
    ));
    // The default interval: processes and engines are re-read every other sample.
    results.push(measure_spaced(
        &format!(
            "mean sample at the default 500 ms of {}, processes each second ({label})",
            crate::units::count(gpus as u64, "GPU", "GPUs")
        ),
        (args.cadence_samples / 2).max(4),
        Duration::from_millis(500),
        || {
            let _ = black_box(source.sample());
        },
    ));
    if args.with_nvidia_smi {
        // The seed scripts' way, side by side: at the same cadence, and back to back.
        results.push(measure_at_10_hz(
            &format!("{TEN_HZ} {SUBPROCESS}"),
            args.cadence_samples,
            || {
                let _ = black_box(nvidia_smi_query());
            },
        ));
        results.push(measure(
            &format!("{SUBPROCESS}, {BACK_TO_BACK}"),
            5,
            4,
            || {
                let _ = black_box(nvidia_smi_query());
            },
        ));
    }

    let mut history = History::new(HistoryConfig::default());
    let mut t = 1.0e9;
    results.push(measure("history insert (1 GPU, 10 Hz)", 5, 100_000, || {
        t += 0.1;
        history.push_values(0, t, Values([1_000.0, 50.0, 20.0, 60.0, 300.0]));
    }));

    // Eight GPUs' worth of history: what a frame of an 8-GPU box would read.
    let eight: Vec<History> = (0..8).map(|_| filled_history(24.0, 10.0)).collect();
    results.push(measure(
        "plot series for 8 GPUs, 24 h window (from 24 h @ 10 Hz each) → 2,000 columns",
        5,
        50,
        || {
            for h in &eight {
                black_box(h.series(0, Metric::VramUsedMib, 1.0e9 - 86_400.0, 1.0e9, 2_000));
            }
        },
    ));
    drop(eight);

    // The raw algorithm on 24 h of 10 Hz points, as if nothing were aggregated.
    let raw: Vec<(f64, f32, f32)> = (0..864_000)
        .map(|i| {
            let v = (i % 1_000) as f32;
            (i as f64 / 10.0, v, v)
        })
        .collect();
    let mut out = Vec::with_capacity(4_000);
    results.push(measure(
        "decimate 864,000 raw points (24 h @ 10 Hz) → 2,000 columns",
        5,
        5,
        || {
            out.clear();
            decimate(raw.iter().copied(), 0.0, 86_400.0, 2_000, &mut out);
            black_box(&out);
        },
    ));

    // What a frame actually does: query the tiered history for the 24 h window.
    let day = filled_history(24.0, 10.0);
    for (label, window) in [("1 min", 60.0), ("1 h", 3_600.0), ("24 h", 86_400.0)] {
        results.push(measure(
            &format!("plot series from 24 h history, {label} window → 2,000 columns"),
            5,
            200,
            || {
                black_box(day.series(0, Metric::VramUsedMib, 1.0e9 - window, 1.0e9, 2_000));
            },
        ));
    }
    results.push(measure(
        "find, map and check the CJK font (fontconfig), install it in egui",
        3,
        1,
        || {
            let ctx = egui::Context::default();
            black_box(crate::ui::fonts::install(&ctx));
        },
    ));
    results.push(ui_frame(5, 20, crate::i18n::Language::English));
    // Chinese text goes through the CJK font's glyphs: the frame that pays for it.
    results.push(ui_frame(5, 20, crate::i18n::Language::Chinese));
    if let Some(round_trip) = agent_round_trip() {
        results.push(round_trip);
    }
    results
}

/// One full UI frame (layout, plots, tessellation) of the window with 24 h of 10 Hz history
/// for two GPUs, built headless, in `language` with the CJK font installed as the app does.
pub fn ui_frame(rounds: usize, calls: u32, language: crate::i18n::Language) -> Measurement {
    use crate::settings::{PlotWindow, Settings};
    use crate::telemetry::sampler::Telemetry;
    use crate::telemetry::sim::SimulatedGpus;
    use crate::telemetry::{Snapshot, unix_seconds};
    use std::time::SystemTime;
    let mut sim = SimulatedGpus::demo("bench");
    let mut telemetry = Telemetry::new(
        sim.kind(),
        Duration::from_millis(100),
        HistoryConfig::default(),
    );
    let now = unix_seconds(SystemTime::now());
    let start = now - 86_400.0;
    for i in 0..864_000u64 {
        let t = start + i as f64 / 10.0;
        let gpus = sim.sample_at(Duration::from_millis(i * 100));
        if i % 36_000 == 0 || i == 863_999 {
            // Full records (alerts, latest) now and then; the bulk straight into history.
            telemetry.record(Snapshot {
                time: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(t),
                gpus,
            });
        } else {
            telemetry.history.push(t, &gpus);
        }
    }
    let settings = Settings {
        plot_window: PlotWindow::OneDay,
        language: Some(language),
        ..Settings::default()
    };
    let before = crate::i18n::language();
    let mut app = crate::ui::VramDeckApp::new(telemetry.shared(), None, settings, None, vec![]);
    let ctx = egui::Context::default();
    let _ = crate::ui::fonts::install(&ctx);
    let input = || egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1480.0, 900.0),
        )),
        ..Default::default()
    };
    // First frames load fonts and lay out panels: not what an idle repaint costs.
    for _ in 0..3 {
        let mut out = ctx.run_ui(input(), |ui| app.show(ui));
        // Nothing uploads textures here; dropping undelivered ones is intended.
        out.textures_delta.clear();
        black_box(ctx.tessellate(out.shapes, out.pixels_per_point));
    }
    let measured = measure(
        &format!(
            "one UI frame in {}, 24 h @ 10 Hz history, 2 GPUs (layout + tessellation)",
            language.tag()
        ),
        rounds,
        calls,
        || {
            let mut out = ctx.run_ui(input(), |ui| app.show(ui));
            out.textures_delta.clear();
            black_box(ctx.tessellate(out.shapes, out.pixels_per_point));
        },
    );
    crate::i18n::set_language(before);
    measured
}

/// hello round trips to the first running agent, if any (start one with
/// `python3 tests/fixtures/fake_webui.py`).
pub fn agent_round_trip() -> Option<Measurement> {
    use crate::release::{client::AgentClient, discovery};
    let dir = discovery::AgentDir::from_env();
    let endpoint = discovery::endpoints(&dir).ok()?.into_iter().next()?;
    let mut client = AgentClient::connect(&endpoint, Duration::from_secs(2)).ok()?;
    client.hello().ok()?;
    Some(measure(
        "agent socket round trip (hello over the Unix socket)",
        5,
        200,
        || {
            let _ = black_box(client.hello());
        },
    ))
}

fn nvidia_smi_query() -> std::io::Result<std::process::Output> {
    std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=timestamp,index,name,memory.used,memory.total,utilization.gpu,temperature.gpu",
            "--format=csv",
        ])
        .output()
}

/// Formats results as an aligned table (wall and CPU time per call), then the GPU read against
/// the nvidia-smi subprocess, like for like: back to back with back to back, 10 Hz with 10 Hz.
pub fn report(results: &[Measurement]) -> String {
    let width = results.iter().map(|m| m.name.len()).max().unwrap_or(0);
    let mut out = format!("{:<width$}  {:>12}  {:>12}\n", "", "wall", "CPU");
    for m in results {
        let cpu = m.cpu_per_call.map(format_duration).unwrap_or_default();
        out.push_str(&format!(
            "{:<width$}  {:>12}  {:>12}   ({} calls/round)\n",
            m.name,
            format_duration(m.per_call),
            cpu,
            m.calls
        ));
    }
    for cadence in [BACK_TO_BACK, TEN_HZ] {
        let at_cadence = |m: &&Measurement| m.name.contains(cadence);
        let Some(smi) = results
            .iter()
            .filter(at_cadence)
            .find(|m| m.name.contains(SUBPROCESS))
        else {
            continue;
        };
        for read in results
            .iter()
            .filter(at_cadence)
            .filter(|m| !m.name.contains(SUBPROCESS))
        {
            let ratio = |a: Duration, b: Duration| {
                (!a.is_zero()).then(|| format!("{:.0}×", b.as_secs_f64() / a.as_secs_f64()))
            };
            let wall = ratio(read.per_call, smi.per_call).unwrap_or_else(|| "-".into());
            let cpu = match (read.cpu_per_call, smi.cpu_per_call) {
                (Some(a), Some(b)) => ratio(a, b).unwrap_or_else(|| "-".into()),
                _ => "-".into(),
            };
            out.push_str(&format!(
                "{wall} cheaper in wall time, {cpu} in CPU time than the subprocess: {}\n",
                read.name
            ));
        }
    }
    out
}

fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

/// `vramdeck bench`.
pub fn command(args: &BenchArgs, demo: bool) -> anyhow::Result<()> {
    if args.offscreen {
        let size = [1480, 900];
        let r = crate::bench_offscreen::run(
            args.frames,
            size,
            Duration::from_millis(args.frame_ms),
            args.hours.clamp(0.0, 24.0),
            demo,
            args.software,
        )?;
        println!("renderer: {}", r.renderer);
        println!(
            "{} frames of {}x{} one every {} ms with {:.0} h of history: CPU {} per frame \
             (this thread), {} until the GPU finished; RSS {:.1} MiB (peak {:.1} MiB)",
            r.frames,
            size[0],
            size[1],
            args.frame_ms,
            args.hours,
            format_duration(r.cpu_per_frame),
            format_duration(r.wall_per_frame),
            r.rss_kib.0 as f64 / 1024.0,
            r.rss_kib.1 as f64 / 1024.0
        );
        println!(
            "the whole process (frames, sampler, driver threads): {:.2} % of a core",
            r.process_core_share * 100.0
        );
        println!("resident memory by mapping:");
        for (name, kib) in &r.rss_by_mapping {
            println!("  {:>8.1} MiB  {name}", *kib as f64 / 1024.0);
        }
        return Ok(());
    }
    if !demo && let Ok(nvml) = crate::telemetry::nvml::NvmlSource::open() {
        println!("NVML calls behind one read of GPU 0 (medians; cold = first call after 100 ms):");
        println!("  {:<28} {:>10} {:>10}", "", "warm", "cold");
        for (name, warm, cold) in nvml.field_costs(200, args.cadence_samples.min(30)) {
            println!(
                "  {name:<28} {:>10} {:>10}",
                format_duration(warm),
                format_duration(cold)
            );
        }
    }
    println!("What is read how often (per GPU):");
    for (what, when) in crate::telemetry::nvml::REFRESH_TIERS {
        println!("  {what:<88} {when}");
    }
    println!();
    let mut source = crate::telemetry::open_source(demo);
    if let crate::telemetry::SourceKind::Simulated { reason } = source.kind() {
        eprintln!("vramdeck: GPU read timed on the simulation ({reason})");
    }
    let mut args = args.clone();
    if args.with_nvidia_smi
        && let Some(problem) = nvidia_smi_problem(nvidia_smi_query())
    {
        // A ratio against a spawn that failed would compare with nothing.
        eprintln!("vramdeck: {problem}; the comparison with it is left out");
        args.with_nvidia_smi = false;
    }
    print!("{}", report(&run_all(&args, source.as_mut())));
    Ok(())
}

/// Why nvidia-smi cannot be compared with, judged from one run of it; `None` when it answered.
pub fn nvidia_smi_problem(run: std::io::Result<std::process::Output>) -> Option<String> {
    match run {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some("nvidia-smi is not installed (not on PATH)".into())
        }
        Err(e) => Some(format!("nvidia-smi could not be started: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "nvidia-smi failed ({}): {}",
            out.status,
            crate::text::sanitize(String::from_utf8_lossy(&out.stderr).trim())
        )),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(name: &str, wall: Duration, cpu: Duration) -> Measurement {
        Measurement {
            name: name.into(),
            per_call: wall,
            cpu_per_call: Some(cpu),
            calls: 1,
        }
    }

    #[cfg(unix)]
    #[test]
    fn an_nvidia_smi_that_cannot_run_is_named_not_timed() {
        let missing = std::process::Command::new("/nonexistent/nvidia-smi").output();
        assert_eq!(
            nvidia_smi_problem(missing).as_deref(),
            Some("nvidia-smi is not installed (not on PATH)")
        );
        let failing = std::process::Command::new("sh")
            .args(["-c", "echo 'NVIDIA-SMI has failed' >&2; exit 9"])
            .output();
        let problem = nvidia_smi_problem(failing).unwrap();
        assert!(problem.contains("NVIDIA-SMI has failed"), "{problem}");
        let fine = std::process::Command::new("true").output();
        assert_eq!(nvidia_smi_problem(fine), None);
    }

    #[test]
    fn report_pairs_each_read_with_the_subprocess_at_the_same_cadence() {
        // (name, wall µs, CPU µs)
        let results: Vec<Measurement> = [
            ("read all fields, back to back", 5, 4),
            ("mean 10 Hz sample", 50, 20),
            (
                "mean 10 Hz nvidia-smi --query-gpu subprocess",
                25_000,
                20_000,
            ),
            (
                "nvidia-smi --query-gpu subprocess, back to back",
                20_000,
                16_000,
            ),
        ]
        .into_iter()
        .map(|(name, wall, cpu)| {
            measured(
                name,
                Duration::from_micros(wall),
                Duration::from_micros(cpu),
            )
        })
        .collect();
        let text = report(&results);
        assert!(
            text.contains("5.00 µs") && text.contains("25.00 ms"),
            "{text}"
        );
        assert!(
            text.contains(
                "4000× cheaper in wall time, 4000× in CPU time than the subprocess: \
                 read all fields, back to back"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "500× cheaper in wall time, 1000× in CPU time than the subprocess: \
                 mean 10 Hz sample"
            ),
            "{text}"
        );
        // Each read is compared with the subprocess at its own cadence only.
        assert_eq!(text.matches("than the subprocess").count(), 2, "{text}");
    }

    #[test]
    fn the_thread_clock_counts_work_not_time_asleep() {
        // Per-thread, so tests running beside this one do not disturb it. Spinning is timed
        // by the clock under test, not the wall: on a loaded 2-core CI machine 20 ms of wall
        // time may hold only 11 ms of this thread's work.
        let before = thread_cpu_time();
        let started = Instant::now();
        while thread_cpu_time() - before < Duration::from_millis(20)
            && started.elapsed() < Duration::from_secs(10)
        {
            black_box(0);
        }
        let busy = thread_cpu_time() - before;
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(20));
        let asleep = thread_cpu_time() - before;
        assert!(busy >= Duration::from_millis(15), "{busy:?}");
        assert!(asleep < Duration::from_millis(5), "{asleep:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_child_process_cpu_time_is_counted() {
        // `sh` spinning in a subprocess: our thread waits, the child works. (Children reaped by
        // other tests meanwhile can only add to the figure.)
        let child = measure("child", 1, 1, || {
            let _ = std::process::Command::new("sh")
                .args(["-c", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done"])
                .status();
        });
        assert!(
            child.cpu_per_call.unwrap() >= Duration::from_millis(5),
            "{child:?}"
        );
    }

    #[test]
    fn filled_history_spans_the_requested_time() {
        let h = filled_history(2.0, 1.0);
        assert_eq!(h.newest(0), Some(1.0e9 - 1.0));
        assert!(h.oldest(0).unwrap() <= 1.0e9 - 7_199.0);
    }
}
