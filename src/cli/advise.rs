//! `vramdeck advise`: which presets fit, headless.

use super::AdviseArgs;

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
}
