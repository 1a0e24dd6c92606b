//! `vramdeck analyze`: out-of-memory events in a log, and what to change.

use crate::logs::oom::{self, Analysis};
use crate::units::count;
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
    let mut out = format!("{origin}: {}\n", analysis.summary());
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
        if let Some(numbers) = e.numbers_line() {
            out.push_str(&format!("  {numbers}\n"));
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
