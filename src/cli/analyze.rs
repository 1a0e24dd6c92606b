//! `vramdeck analyze`: out-of-memory events in a log, and what to change.

use crate::logs::oom::{self, Analysis};
use crate::units::{Bytes, MemoryUnit, count};
use crate::workloads::calibration::Calibration;
use crate::workloads::catalogue::Catalogue;

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

/// The report for an analysis already made.
pub fn report(analysis: &Analysis, origin: &str) -> String {
    let lines = count(analysis.lines as u64, "line", "lines");
    if analysis.events.is_empty() {
        return format!("{origin}: no CUDA out-of-memory events in {lines}\n");
    }
    let total = analysis.total_events();
    let distinct = analysis.events.len() as u64;
    let mut out = format!("{origin}: {} in {lines}", count(total, "event", "events"));
    if total > distinct {
        out.push_str(&format!(
            " ({} distinct; repeats are counted, not listed)",
            crate::units::group_thousands(distinct + analysis.more_events)
        ));
    }
    out.push('\n');
    let b = |v: Option<Bytes>| {
        v.map(|b| MemoryUnit::MiB.format(b))
            .unwrap_or_else(|| "n/a".into())
    };
    for e in &analysis.events {
        let repeats = match e.repeats {
            0 => String::new(),
            n => format!(" (and {} more)", count(n, "time", "times")),
        };
        out.push_str(&format!(
            "\nline {}: {}{repeats}\n  {}\n",
            e.line,
            e.kind.label(),
            e.text
        ));
        if e.requested.is_some() || e.total.is_some() {
            out.push_str(&format!(
                "  requested {} · GPU {} · total {} · free {} · allocated {} · reserved {}{}\n",
                b(e.requested),
                e.gpu.map(|g| g.to_string()).unwrap_or_else(|| "n/a".into()),
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
    if analysis.more_events > 0 {
        out.push_str(&format!(
            "\n{} more distinct events not listed (the first {} are)\n",
            crate::units::group_thousands(analysis.more_events),
            oom::MAX_EVENTS
        ));
    }
    out
}

/// `vramdeck analyze LOG` (`-` reads standard input), streamed: any size, bounded memory.
pub fn analyze_command(log: &std::path::Path) -> anyhow::Result<()> {
    let (catalogue, calibration) = advice_sources();
    let (analysis, origin) = if log == std::path::Path::new("-") {
        (
            crate::logs::oom::analyze_reader(std::io::stdin(), &catalogue, &calibration)?,
            "standard input".to_string(),
        )
    } else {
        let file = crate::persist::open_regular(log)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", log.display()))?;
        (
            crate::logs::oom::analyze_reader(file, &catalogue, &calibration)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", log.display()))?,
            crate::text::sanitized(&log.display().to_string()),
        )
    };
    print!("{}", report(&analysis, &origin));
    Ok(())
}
