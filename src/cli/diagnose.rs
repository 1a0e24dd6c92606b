//! `vramdeck diagnose`: samples every GPU at 10 Hz for a while, then says why each is busy but
//! slow (or not), with the numbers the verdict rests on. Text, or JSON (`vramdeck.diagnose/1`).

use super::DiagnoseArgs;
use crate::diagnosis::{Diagnosis, diagnose};
use crate::telemetry::activity::ActivityLog;
use crate::telemetry::{GpuSource, Snapshot};
use serde::Serialize;
use std::time::{Duration, Instant, SystemTime};

/// Readings are taken this often, as the window's fastest sampling.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// One GPU's answer.
#[derive(Clone, Debug)]
pub struct GpuDiagnosis {
    /// NVML index.
    pub index: u32,
    /// Product name.
    pub name: String,
    /// Asleep for the whole run (runtime PM): not read.
    pub asleep: bool,
    /// The diagnosis.
    pub diagnosis: Diagnosis,
    /// Its processes at the last reading.
    pub processes: Vec<crate::telemetry::ProcessInfo>,
}

/// "python3 main.py (pid 507): VRAM 16,420 MiB · SM 99 % · CPU 100 % · host 2,113 MiB".
pub fn process_line(p: &crate::telemetry::ProcessInfo) -> String {
    let mut parts = vec![match p.used {
        Some(b) => crate::t!(
            "dx-process-vram",
            v = crate::units::MemoryUnit::MiB.format(b)
        ),
        None => crate::t!("dx-process-vram", v = crate::t!("na")),
    }];
    if let Some(shared) = p.shared {
        parts.push(crate::t!(
            "dx-process-shared",
            v = crate::units::MemoryUnit::MiB.format(shared)
        ));
    }
    parts.push(match p.sm_util {
        Some(u) => format!("SM {:.0} %", u.0),
        None => format!("SM {}", crate::t!("na")),
    });
    parts.push(match p.cpu_percent {
        Some(c) => format!("CPU {c:.0} %"),
        None => format!("CPU {}", crate::t!("na")),
    });
    if let Some(rss) = p.host_rss {
        parts.push(crate::t!(
            "dx-process-host",
            v = crate::units::MemoryUnit::MiB.format(rss)
        ));
    }
    format!("{} (pid {}): {}", p.name, p.pid, parts.join(" · "))
}

/// Diagnoses every GPU from `snapshots` (oldest first).
pub fn diagnose_snapshots(snapshots: &[Snapshot]) -> Vec<GpuDiagnosis> {
    let mut log = ActivityLog::default();
    for s in snapshots {
        log.record(s);
    }
    let Some(last) = snapshots.last() else {
        return Vec::new();
    };
    last.gpus
        .iter()
        .enumerate()
        .map(|(slot, g)| GpuDiagnosis {
            index: g.index,
            name: g.name.clone(),
            asleep: g.asleep && log.newest(slot).is_none(),
            diagnosis: diagnose(&log.window(slot, f64::MAX, f64::INFINITY)),
            processes: g.processes.clone(),
        })
        .collect()
}

/// The text report.
pub fn report(gpus: &[GpuDiagnosis]) -> String {
    let mut out = String::new();
    for g in gpus {
        let d = &g.diagnosis;
        out.push_str(&format!("GPU {} · {}", g.index, g.name));
        if g.asleep {
            out.push_str(&format!(": {}\n\n", crate::t!("dx-asleep")));
            continue;
        }
        out.push_str(&format!(
            " {}\n  {}\n",
            crate::t!(
                "dx-window",
                seconds = format!("{:.1}", d.seconds),
                count = d.samples as u64,
                n = crate::units::group_thousands(d.samples as u64)
            ),
            crate::t!("dx-verdict", what = d.verdict.headline())
        ));
        for e in &d.evidence {
            out.push_str(&format!("  - {e}\n"));
        }
        let measured = d.means.line();
        if !measured.is_empty() {
            out.push_str(&format!(
                "  {}\n",
                crate::t!("dx-measured", what = measured)
            ));
        }
        for p in &g.processes {
            out.push_str(&format!(
                "  {}\n",
                crate::t!("dx-process", what = process_line(p))
            ));
        }
        for a in &d.advice {
            out.push_str(&format!("  -> {a}\n"));
        }
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    schema: &'static str,
    gpus: Vec<JsonGpu<'a>>,
}

#[derive(Serialize)]
struct JsonGpu<'a> {
    index: u32,
    name: &'a str,
    asleep: bool,
    seconds: f64,
    readings: usize,
    verdict: &'static str,
    headline: String,
    busy_share: f32,
    mean_utilization: f32,
    idle_gaps: JsonGaps,
    means: crate::diagnosis::Means,
    evidence: &'a [String],
    advice: &'a [String],
}

#[derive(Serialize)]
struct JsonGaps {
    count: usize,
    mean_seconds: f64,
    longest_seconds: f64,
    period_seconds: Option<f64>,
}

/// The JSON report (schema `vramdeck.diagnose/1`, described in README).
pub fn json_report(gpus: &[GpuDiagnosis]) -> String {
    let report = JsonReport {
        schema: "vramdeck.diagnose/1",
        gpus: gpus
            .iter()
            .map(|g| {
                let d = &g.diagnosis;
                JsonGpu {
                    index: g.index,
                    name: &g.name,
                    asleep: g.asleep,
                    seconds: d.seconds,
                    readings: d.samples,
                    verdict: d.verdict.id(),
                    headline: d.verdict.headline(),
                    busy_share: d.busy_share,
                    mean_utilization: d.mean_util,
                    idle_gaps: JsonGaps {
                        count: d.gaps.count,
                        mean_seconds: d.gaps.mean_seconds,
                        longest_seconds: d.gaps.longest_seconds,
                        period_seconds: d.gaps.period_seconds,
                    },
                    means: d.means,
                    evidence: &d.evidence,
                    advice: &d.advice,
                }
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

/// Reads `source` every [`INTERVAL`] for `seconds`.
fn sample_for(source: &mut dyn GpuSource, seconds: f64) -> anyhow::Result<Vec<Snapshot>> {
    let started = Instant::now();
    let mut snapshots = Vec::new();
    while started.elapsed().as_secs_f64() < seconds {
        let tick = Instant::now();
        let gpus = source.sample()?;
        snapshots.push(Snapshot {
            time: SystemTime::now(),
            gpus,
        });
        std::thread::sleep(INTERVAL.saturating_sub(tick.elapsed()));
    }
    Ok(snapshots)
}

/// `vramdeck diagnose`.
pub fn diagnose_command(args: &DiagnoseArgs, demo: bool) -> anyhow::Result<()> {
    let mut source: Box<dyn GpuSource> = if demo {
        // One simulated GPU per verdict.
        Box::new(crate::telemetry::sim::SimulatedGpus::demo_many(
            "demo mode was requested (--demo)",
            crate::telemetry::sim::Scenario::all().len(),
        ))
    } else {
        crate::telemetry::open_source(false)
    };
    if let crate::telemetry::SourceKind::Simulated { reason } = source.kind() {
        eprintln!(
            "{}",
            crate::t!("dx-demo-simulated", reason = reason.clone())
        );
    }
    eprintln!(
        "{}",
        crate::t!("dx-watching", seconds = format!("{:.0}", args.seconds))
    );
    let snapshots = sample_for(source.as_mut(), args.seconds)?;
    let mut gpus = diagnose_snapshots(&snapshots);
    if let Some(only) = args.gpu {
        gpus.retain(|g| g.index == only);
        if gpus.is_empty() {
            anyhow::bail!(crate::t!("dx-no-gpu", index = only.to_string()));
        }
    }
    if args.json {
        println!("{}", json_report(&gpus));
    } else {
        print!("{}", report(&gpus));
    }
    Ok(())
}
