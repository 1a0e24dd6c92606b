//! `vramdeck analyze`: a console log's out-of-memory events and what to change, or a CSV log's
//! per-GPU summary; as text or as JSON (schema `vramdeck.analyze/1`, documented in README).

use super::AnalyzeArgs;
use crate::logs::import::ImportedLog;
use crate::logs::oom::{self, Analysis};
use crate::logs::{OpenedLog, read_log};
use crate::telemetry::history::Metric;
use crate::units::{Bytes, group_thousands};
use crate::workloads::calibration::Calibration;
use crate::workloads::catalogue::Catalogue;
use serde::Serialize;

/// The presets and this machine's calibration, which advice is based on.
fn advice_sources() -> (Catalogue, Calibration) {
    let catalogue = Catalogue::load(crate::workloads::catalogue::user_presets_path().as_deref());
    let calibration = crate::workloads::calibration::default_path()
        .map(|p| Calibration::load(&p).0)
        .unwrap_or_default();
    (catalogue, calibration)
}

/// The report `vramdeck analyze` prints for a log's text.
pub fn analysis_report(text: &str, origin: &str) -> String {
    let (catalogue, calibration) = advice_sources();
    report(&oom::analyze(text, &catalogue, &calibration), origin)
}

/// The text report for an OOM analysis.
pub fn report(analysis: &Analysis, origin: &str) -> String {
    let mut out = format!("{origin}: {}\n", analysis.summary());
    for e in &analysis.events {
        let headline = e.headline();
        out.push_str(&format!("\n{headline}\n  {}\n", e.text));
        if let Some(numbers) = e.numbers_line() {
            out.push_str(&format!("  {numbers}\n"));
        }
        for a in &e.advice {
            out.push_str(&format!("  -> {a}\n"));
        }
    }
    if analysis.more_events > 0 {
        out.push_str(&format!(
            "\n{}\n",
            crate::t!(
                "analyze-more-events",
                n = group_thousands(analysis.more_events),
                max = oom::MAX_EVENTS.to_string()
            )
        ));
    }
    out
}

/// A time as nvidia-smi prints it, local time.
fn when(t: f64) -> String {
    crate::logs::smi_csv::format_unix_seconds(t)
}

/// "1 h 2 min", "42 s".
fn span(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    let (h, m, sec) = (
        crate::t!("span-hours", n = (s / 3_600).to_string()),
        crate::t!("span-minutes", n = (s % 3_600 / 60).to_string()),
        crate::t!("span-seconds", n = (s % 60).to_string()),
    );
    match s {
        0..60 => sec,
        60..3_600 => format!("{m} {sec}"),
        _ => format!("{h} {m}"),
    }
}

/// The text report for an imported CSV log: one paragraph per GPU.
pub fn csv_report(log: &ImportedLog) -> String {
    let mut out = format!(
        "{}\n",
        crate::t!(
            "analyze-csv-title",
            origin = log.origin.clone(),
            summary = log.summary()
        )
    );
    for (slot, g) in log.gpus.iter().enumerate() {
        out.push_str(&format!(
            "\n{}: {}",
            g.label(),
            crate::t!("logs-rows", count = g.rows as u64)
        ));
        if let (Some(first), Some(last)) = first_last(log, slot) {
            out.push_str(&format!(
                ", {}",
                crate::t!(
                    "analyze-span",
                    first = when(first),
                    last = when(last),
                    span = span(last - first)
                )
            ));
        }
        out.push('\n');
        match log.stats(slot, Metric::VramUsedMib) {
            Some((peak, mean)) => {
                let (peak, mean) = (
                    group_thousands(peak.round() as u64),
                    group_thousands(mean.round() as u64),
                );
                let line = match g.total_mib {
                    Some(t) => crate::t!(
                        "analyze-memory-of",
                        peak = peak,
                        mean = mean,
                        total = group_thousands(t.round() as u64)
                    ),
                    None => crate::t!("analyze-memory", peak = peak, mean = mean),
                };
                out.push_str(&format!("  {line}\n"));
            }
            None => out.push_str(&format!("  {}\n", crate::t!("analyze-memory-na"))),
        }
        if let Some((peak, mean)) = log.stats(slot, Metric::GpuUtil) {
            out.push_str(&format!(
                "  {}\n",
                crate::t!(
                    "analyze-util",
                    peak = format!("{peak:.0}"),
                    mean = format!("{mean:.0}")
                )
            ));
        }
    }
    if !log.problems.is_empty() {
        let (bad, n) = (log.bad_rows as u64, group_thousands(log.bad_rows as u64));
        let heading = if log.bad_rows > log.problems.len() {
            crate::t!(
                "analyze-bad-rows-first",
                count = bad,
                n = n,
                first = log.problems.len().to_string()
            )
        } else {
            crate::t!("analyze-bad-rows", count = bad, n = n)
        };
        out.push_str(&format!("\n{heading}\n"));
        for p in &log.problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    out
}

fn first_last(log: &ImportedLog, slot: usize) -> (Option<f64>, Option<f64>) {
    let readings = log.history.readings(slot, log.span.0, log.span.1);
    (
        readings.first().map(|(t, _)| *t),
        readings.last().map(|(t, _)| *t),
    )
}

// -- JSON (schema vramdeck.analyze/1) ---------------------------------------------------------

#[derive(Serialize)]
struct JsonOomLog<'a> {
    schema: &'static str,
    kind: &'static str,
    origin: &'a str,
    lines: usize,
    cut_lines: usize,
    events_total: u64,
    events_not_listed: u64,
    events: Vec<JsonEvent<'a>>,
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    line: usize,
    repeats: u64,
    kind: &'static str,
    era: &'static str,
    cause: &'static str,
    text: &'a str,
    numbers: JsonNumbers,
    workload: Option<JsonWorkload<'a>>,
    advice: &'a [String],
}

#[derive(Serialize)]
struct JsonNumbers {
    gpu: Option<u32>,
    requested_bytes: Option<u64>,
    total_bytes: Option<u64>,
    free_bytes: Option<u64>,
    allocated_bytes: Option<u64>,
    reserved_bytes: Option<u64>,
    process_in_use_bytes: Option<u64>,
    limit_bytes: Option<u64>,
    process_listed_as_pid: Option<u32>,
    other_processes: Vec<JsonProcess>,
    /// The worker rank (vLLM), when the line names one.
    rank: Option<u32>,
    /// Memory outside PyTorch's MPS heaps (Apple).
    other_allocations_bytes: Option<u64>,
}

#[derive(Serialize)]
struct JsonProcess {
    pid: u32,
    used_bytes: u64,
}

#[derive(Serialize)]
struct JsonWorkload<'a> {
    preset: &'a str,
    size: Option<u32>,
    batch: Option<u32>,
}

#[derive(Serialize)]
struct JsonCsvLog<'a> {
    schema: &'static str,
    kind: &'static str,
    origin: &'a str,
    rows: usize,
    bad_rows: usize,
    problems: &'a [String],
    assumed_columns: Option<&'a str>,
    grouping: Option<&'a str>,
    gpus: Vec<JsonGpu<'a>>,
}

#[derive(Serialize)]
struct JsonGpu<'a> {
    index: u32,
    name: &'a str,
    id: Option<&'a str>,
    total_mib: Option<f64>,
    rows: usize,
    first: Option<String>,
    last: Option<String>,
    span_seconds: Option<f64>,
    memory_used_mib: Option<JsonPeakMean>,
    utilization_gpu_percent: Option<JsonPeakMean>,
}

#[derive(Serialize)]
struct JsonPeakMean {
    peak: f64,
    mean: f64,
}

const SCHEMA: &str = "vramdeck.analyze/1";

fn bytes(b: Option<Bytes>) -> Option<u64> {
    b.map(|b| b.0)
}

/// The JSON for an OOM analysis.
pub fn oom_json(analysis: &Analysis, origin: &str) -> String {
    let doc = JsonOomLog {
        schema: SCHEMA,
        kind: "oom_log",
        origin,
        lines: analysis.lines,
        cut_lines: analysis.cut_lines,
        events_total: analysis.total_events(),
        events_not_listed: analysis.more_events,
        events: analysis
            .events
            .iter()
            .map(|e| JsonEvent {
                line: e.line,
                repeats: e.repeats,
                kind: e.kind.id(),
                era: e.era.id(),
                cause: e.cause.id(),
                text: &e.text,
                numbers: JsonNumbers {
                    gpu: e.numbers.gpu,
                    requested_bytes: bytes(e.numbers.requested),
                    total_bytes: bytes(e.numbers.total),
                    free_bytes: bytes(e.numbers.free),
                    allocated_bytes: bytes(e.numbers.allocated),
                    reserved_bytes: bytes(e.numbers.reserved),
                    process_in_use_bytes: bytes(e.numbers.process_in_use),
                    limit_bytes: bytes(e.numbers.limit),
                    process_listed_as_pid: e.numbers.self_listed_as,
                    other_processes: e
                        .numbers
                        .others
                        .iter()
                        .map(|o| JsonProcess {
                            pid: o.pid,
                            used_bytes: o.used.0,
                        })
                        .collect(),
                    rank: e.numbers.rank,
                    other_allocations_bytes: bytes(e.numbers.other_allocations),
                },
                workload: e.workload.as_ref().map(|w| JsonWorkload {
                    preset: &w.preset_id,
                    size: w.size,
                    batch: w.batch,
                }),
                advice: &e.advice,
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The JSON for an imported CSV log.
pub fn csv_json(log: &ImportedLog) -> String {
    let peak_mean = |slot, metric| {
        log.stats(slot, metric)
            .map(|(peak, mean)| JsonPeakMean { peak, mean })
    };
    let doc = JsonCsvLog {
        schema: SCHEMA,
        kind: "nvidia_smi_csv",
        origin: &log.origin,
        rows: log.rows,
        bad_rows: log.bad_rows,
        problems: &log.problems,
        assumed_columns: log.assumed_columns.as_deref(),
        grouping: log.grouping.as_deref(),
        gpus: log
            .gpus
            .iter()
            .enumerate()
            .map(|(slot, g)| {
                let (first, last) = first_last(log, slot);
                JsonGpu {
                    index: g.index,
                    name: &g.name,
                    id: g.id.as_deref(),
                    total_mib: g.total_mib,
                    rows: g.rows,
                    first: first.map(when),
                    last: last.map(when),
                    span_seconds: first.zip(last).map(|(a, b)| b - a),
                    memory_used_mib: peak_mean(slot, Metric::VramUsedMib),
                    utilization_gpu_percent: peak_mean(slot, Metric::GpuUtil),
                }
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// `vramdeck analyze LOG` (`-` reads standard input), streamed: any size, bounded memory.
pub fn analyze_command(args: &AnalyzeArgs) -> anyhow::Result<()> {
    let (catalogue, calibration) = advice_sources();
    let opened = if args.log == std::path::Path::new("-") {
        read_log(std::io::stdin(), "standard input", &catalogue, &calibration)
    } else {
        crate::logs::open_log(&args.log, &catalogue, &calibration)
    }
    .map_err(anyhow::Error::msg)?;
    let text = match (&opened, args.json) {
        (OpenedLog::Csv(log), false) => csv_report(log),
        (OpenedLog::Csv(log), true) => csv_json(log) + "\n",
        (OpenedLog::Text { origin, analysis }, false) => report(analysis, origin),
        (OpenedLog::Text { origin, analysis }, true) => oom_json(analysis, origin) + "\n",
    };
    print!("{text}");
    Ok(())
}
