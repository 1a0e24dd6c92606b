//! `vramdeck advise`: which presets fit, headless.

use super::AdviseArgs;
use crate::units::{Bytes, MemoryUnit};
use crate::workloads::advisor::{self, Budget, MAX_MARGIN_PERCENT};
use crate::workloads::{calibration, catalogue::Catalogue};
use std::fmt::Write as _;

/// `vramdeck advise`: the advisor's verdicts as text.
pub fn advise_command(args: &AdviseArgs, demo: bool) -> anyhow::Result<()> {
    print!("{}", advise_text(args, demo)?);
    Ok(())
}

/// Refuses numbers no card or margin can have.
fn check(args: &AdviseArgs) -> anyhow::Result<()> {
    if !(0.0..=MAX_MARGIN_PERCENT).contains(&args.margin) {
        anyhow::bail!(
            "--margin is a share of the workload's peak from 0 to {MAX_MARGIN_PERCENT:.0} %, not {}",
            args.margin
        );
    }
    if let (Some(free), Some(total)) = (args.free_mib, args.total_mib) {
        if total == 0 {
            anyhow::bail!("--total-mib must be more than 0");
        }
        if free > total {
            anyhow::bail!("--free-mib ({free}) cannot be more than --total-mib ({total})");
        }
    }
    Ok(())
}

/// The text `vramdeck advise` prints.
pub fn advise_text(args: &AdviseArgs, demo: bool) -> anyhow::Result<String> {
    check(args)?;
    let unit = if args.gib {
        MemoryUnit::GiB
    } else {
        MemoryUnit::MiB
    };
    let catalogue = Catalogue::load(crate::workloads::catalogue::user_presets_path().as_deref());
    let (cal, cal_warning) = calibration::default_path()
        .map(|p| calibration::Calibration::load(&p))
        .unwrap_or_default();
    let mut out = String::new();
    for w in catalogue.warnings.iter().chain(cal_warning.iter()) {
        eprintln!("{}", crate::t!("out-warning", what = w.clone()));
    }
    if args.templates {
        let margin = format!("{:.0}", advisor::DEFAULT_MARGIN_PERCENT);
        writeln!(out, "{}", crate::t!("adv-templates-intro", margin = margin))?;
        for card in advisor::templates(&catalogue, &cal) {
            writeln!(
                out,
                "\n{}",
                crate::t!("adv-card-gb", gib = card.gib.to_string())
            )?;
            for (level, settings) in ["low", "medium", "high"].iter().zip(&card.levels) {
                let text = if settings.is_empty() {
                    crate::t!("adv-nothing-fits")
                } else {
                    settings
                        .iter()
                        .map(|s| s.setting.clone())
                        .collect::<Vec<_>>()
                        .join(" · ")
                };
                writeln!(out, "  {level:<6} {text}")?;
            }
        }
        return Ok(out);
    }
    let (gpu_name, free, total) = match (args.free_mib, args.total_mib) {
        (Some(free), Some(total)) => (
            crate::t!("adv-what-if-card"),
            Bytes::from_mib(free),
            Bytes::from_mib(total),
        ),
        _ => {
            let mut source = crate::telemetry::open_source(demo);
            if let crate::telemetry::SourceKind::Simulated { reason } = source.kind() {
                eprintln!(
                    "{}",
                    crate::t!("out-demo-simulated", reason = reason.clone())
                );
            }
            let gpus = source.sample()?;
            let g = gpus.iter().find(|g| g.index == args.gpu).ok_or_else(|| {
                anyhow::anyhow!(crate::t!(
                    "out-no-gpu",
                    index = args.gpu.to_string(),
                    count = gpus.len().to_string()
                ))
            })?;
            (g.name.clone(), g.memory.free, g.memory.total)
        }
    };
    let budget = Budget::new(free, total, args.margin);
    writeln!(
        out,
        "{}",
        crate::t!(
            "adv-header",
            index = args.gpu.to_string(),
            name = gpu_name,
            free = unit.format(free),
            total = unit.format(total),
            margin = format!("{:.0}", budget.margin_percent),
            allowance = format!("{:.0}", advisor::FIXED_ALLOWANCE_MIB)
        )
    )?;
    let all = advisor::advise(&catalogue, &budget, &cal);
    let chosen: Vec<_> = match &args.workload {
        Some(name) => {
            let w = catalogue.find(name).ok_or_else(|| {
                anyhow::anyhow!(crate::t!("adv-no-preset", name = format!("{name:?}")))
            })?;
            all.into_iter().filter(|a| a.id == w.id).collect()
        }
        None => all,
    };
    for a in chosen {
        let measured = a
            .measured_here_mib
            .map(|_| {
                format!(
                    " {}",
                    crate::t!(
                        "adv-measured-here-catalogue",
                        size = unit.format_mib(a.catalogue_mib as f64)
                    )
                )
            })
            .unwrap_or_default();
        writeln!(
            out,
            "{:<14} {}{measured}",
            format!("[{}]", a.fit.text()),
            a.name,
        )?;
        writeln!(out, "               {}", a.reasoning(&budget, unit))?;
        for line in a.detail_lines() {
            writeln!(out, "               {line}")?;
        }
        if let Some(f) = &a.fallback {
            writeln!(
                out,
                "               {}",
                crate::t!("adv-instead", what = f.clone())
            )?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn what_if(workload: Option<&str>, free: u64, total: u64) -> AdviseArgs {
        AdviseArgs {
            gpu: 0,
            workload: workload.map(str::to_string),
            margin: advisor::DEFAULT_MARGIN_PERCENT,
            free_mib: Some(free),
            total_mib: Some(total),
            templates: false,
            gib: false,
            demo: Default::default(),
        }
    }

    #[test]
    fn advise_what_if_prints_the_same_advice_headless() {
        let text = advise_text(&what_if(Some("ddcolor"), 11_980, 12_288), true).unwrap();
        assert!(text.contains("[fits]         DDColor (ComfyUI)"), "{text}");
        assert!(
            text.contains("largest safe size 960 (building 960, portrait 680)"),
            "{text}"
        );
        let all = advise_text(&what_if(None, 11_980, 12_288), true).unwrap();
        assert!(
            all.contains("[will not fit] Wan2.1 T2V 14B 480p (not quantised)"),
            "{all}"
        );
        let templates = advise_text(
            &AdviseArgs {
                templates: true,
                ..what_if(None, 1, 1)
            },
            true,
        )
        .unwrap();
        assert!(templates.contains("\n8 GB card:\n  low "), "{templates}");
    }

    #[test]
    fn impossible_numbers_are_refused() {
        for (margin, free, total, why) in [
            (150.0, 1, 2, "--margin"),
            (f32::NAN, 1, 2, "--margin"),
            (f32::INFINITY, 1, 2, "--margin"),
            (25.0, 3, 2, "cannot be more than --total-mib"),
            (25.0, 0, 0, "--total-mib must be more than 0"),
        ] {
            let args = AdviseArgs {
                margin,
                ..what_if(None, free, total)
            };
            let err = advise_text(&args, true).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn gib_prints_gib() {
        let args = AdviseArgs {
            gib: true,
            ..what_if(Some("ddcolor"), 11_980, 12_288)
        };
        let text = advise_text(&args, true).unwrap();
        assert!(text.contains("11.7 GiB free of 12.0 GiB"), "{text}");
        assert!(!text.contains(" MiB free"), "{text}");
    }
}
