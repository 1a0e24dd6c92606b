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
    /// Calls of the GPU read per round.
    #[arg(long, default_value_t = 200)]
    pub sample_calls: u32,
    /// Also time one `nvidia-smi --query-gpu` subprocess per reading (the seed scripts' way).
    #[arg(long)]
    pub with_nvidia_smi: bool,
}

/// One benchmark's result.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// What was measured.
    pub name: String,
    /// Median time of one call.
    pub per_call: Duration,
    /// Calls per round.
    pub calls: u32,
}

/// Times `f`: `rounds` rounds of `calls` calls, median of the per-call means.
pub fn measure(name: &str, rounds: usize, calls: u32, mut f: impl FnMut()) -> Measurement {
    f(); // warm-up: first NVML calls and allocations are not typical
    let mut per_call: Vec<Duration> = (0..rounds.max(1))
        .map(|_| {
            let started = Instant::now();
            for _ in 0..calls {
                f();
            }
            started.elapsed() / calls.max(1)
        })
        .collect();
    per_call.sort();
    Measurement {
        name: name.to_string(),
        per_call: per_call[per_call.len() / 2],
        calls,
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
    source.set_process_refresh(Duration::ZERO);
    results.push(measure(
        &format!("read all fields of {gpus} GPU(s) incl. process lists ({label})"),
        5,
        args.sample_calls,
        || {
            let _ = black_box(source.sample());
        },
    ));
    // What the sampler does at 10 Hz: process lists refreshed once a second.
    source.set_process_refresh(crate::telemetry::nvml::PROCESS_REFRESH);
    let mut spent = Duration::ZERO;
    let samples = 30u32;
    for _ in 0..samples {
        let started = Instant::now();
        let _ = black_box(source.sample());
        spent += started.elapsed();
        std::thread::sleep(Duration::from_millis(100));
    }
    results.push(Measurement {
        name: format!(
            "mean 10 Hz sample of {gpus} GPU(s), processes refreshed each second ({label})"
        ),
        per_call: spent / samples,
        calls: samples,
    });
    if args.with_nvidia_smi {
        // The seed scripts' way, at the sampler's cadence: cold, like the 10 Hz sample above.
        let mut spent = Duration::ZERO;
        for _ in 0..samples {
            let started = Instant::now();
            let _ = black_box(nvidia_smi_query());
            spent += started.elapsed();
            std::thread::sleep(Duration::from_millis(100));
        }
        results.push(Measurement {
            name: "mean 10 Hz nvidia-smi --query-gpu subprocess".into(),
            per_call: spent / samples,
            calls: samples,
        });
        results.push(measure(
            "nvidia-smi --query-gpu subprocess, back to back",
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
    results.push(ui_frame(5, 20));
    if let Some(round_trip) = agent_round_trip() {
        results.push(round_trip);
    }
    results
}

/// One full UI frame (layout, plots, tessellation) of the window with 24 h of 10 Hz history
/// for two GPUs, built headless.
pub fn ui_frame(rounds: usize, calls: u32) -> Measurement {
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
        ..Settings::default()
    };
    let mut app = crate::ui::VramDeckApp::new(telemetry.shared(), None, settings, None, vec![]);
    let ctx = egui::Context::default();
    let input = || egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1480.0, 900.0),
        )),
        ..Default::default()
    };
    // First frames load fonts and lay out panels: not what an idle repaint costs.
    for _ in 0..3 {
        let out = ctx.run_ui(input(), |ui| app.show(ui));
        black_box(ctx.tessellate(out.shapes, out.pixels_per_point));
    }
    measure(
        "one UI frame, 24 h @ 10 Hz history, 2 GPUs (layout + tessellation)",
        rounds,
        calls,
        || {
            let out = ctx.run_ui(input(), |ui| app.show(ui));
            black_box(ctx.tessellate(out.shapes, out.pixels_per_point));
        },
    )
}

/// hello round trips to the first running agent, if any (start one with
/// `python3 tests/fixtures/fake_webui.py`).
pub fn agent_round_trip() -> Option<Measurement> {
    use crate::release::{client::AgentClient, discovery};
    let dir = discovery::agent_dir();
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

/// Formats results as an aligned table, with the subprocess ratio when both were measured.
pub fn report(results: &[Measurement]) -> String {
    let width = results.iter().map(|m| m.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for m in results {
        out.push_str(&format!(
            "{:<width$}  {:>12}   ({} calls/round)\n",
            m.name,
            format_duration(m.per_call),
            m.calls
        ));
    }
    if let Some(smi) = results.iter().find(|m| m.name.starts_with("nvidia-smi")) {
        for read in results
            .iter()
            .filter(|m| m.name.contains(" sample") || m.name.starts_with("read all"))
        {
            if !read.per_call.is_zero() {
                out.push_str(&format!(
                    "{:.0}× cheaper than an nvidia-smi subprocess: {}\n",
                    smi.per_call.as_secs_f64() / read.per_call.as_secs_f64(),
                    read.name
                ));
            }
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
    if !demo && let Ok(nvml) = crate::telemetry::nvml::NvmlSource::open() {
        println!("NVML calls behind one read of GPU 0 (median of 200):");
        for (name, cost) in nvml.field_costs(200) {
            println!("  {name:<28} {:>10}", format_duration(cost));
        }
    }
    let mut source = crate::telemetry::open_source(demo);
    if let crate::telemetry::SourceKind::Simulated { reason } = source.kind() {
        eprintln!("vramdeck: GPU read timed on the simulation ({reason})");
    }
    print!("{}", report(&run_all(args, source.as_mut())));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lists_every_measurement_with_a_unit() {
        let results = vec![
            Measurement {
                name: "read all fields".into(),
                per_call: Duration::from_nanos(5_000),
                calls: 1,
            },
            Measurement {
                name: "nvidia-smi --query-gpu subprocess, back to back".into(),
                per_call: Duration::from_millis(25),
                calls: 1,
            },
        ];
        let text = report(&results);
        assert!(text.contains("5.00 µs"));
        assert!(text.contains("25.00 ms"));
        assert!(
            text.contains("5000× cheaper than an nvidia-smi subprocess: read all"),
            "{text}"
        );
    }

    #[test]
    fn filled_history_spans_the_requested_time() {
        let h = filled_history(2.0, 1.0);
        assert_eq!(h.newest(0), Some(1.0e9 - 1.0));
        assert!(h.oldest(0).unwrap() <= 1.0e9 - 7_199.0);
    }
}
