//! What fits: each preset against the selected GPU's free VRAM minus a safety margin.
//!
//! The default margin is 25 % of the card. The seed figures are sampled peaks that miss short
//! spikes and fragmentation — on the 12 GB card a measured 11.8 GB peak already failed — and a
//! quarter of the card reproduces the articles' own guidance (12 GB: DDColor ≤ 960; 8 GB: ≤ 768).

use super::calibration::{Calibration, key};
use super::catalogue::{Catalogue, Shape, SizePoint, Workload};
use crate::units::{Bytes, MIB};

/// Default safety margin, percent of the card's memory.
pub const DEFAULT_MARGIN_PERCENT: f32 = 25.0;

/// How a preset relates to the memory available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Peak fits in free memory with the margin to spare.
    Fits,
    /// Peak fits in free memory, but eats into the margin: close other programs first.
    Tight,
    /// Peak exceeds free memory: it will run out of memory.
    WontFit,
}

impl Fit {
    /// Short label.
    pub fn label(self) -> &'static str {
        match self {
            Fit::Fits => "fits",
            Fit::Tight => "tight",
            Fit::WontFit => "will not fit",
        }
    }
}

/// Memory to plan with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Free VRAM now.
    pub free: Bytes,
    /// Installed VRAM.
    pub total: Bytes,
    /// Safety margin.
    pub margin: Bytes,
}

impl Budget {
    /// Free memory and a margin of `margin_percent` of `total`.
    pub fn new(free: Bytes, total: Bytes, margin_percent: f32) -> Self {
        let margin = (total.0 as f64 * (margin_percent.clamp(0.0, 90.0) as f64 / 100.0)) as u64;
        Budget {
            free,
            total,
            margin: Bytes(margin),
        }
    }

    /// What a job may use: free minus margin, MiB.
    pub fn usable_mib(&self) -> f64 {
        self.free.saturating_sub(self.margin).mib()
    }

    fn fit(&self, peak_mib: f64) -> Fit {
        if peak_mib <= self.usable_mib() {
            Fit::Fits
        } else if peak_mib <= self.free.mib() {
            Fit::Tight
        } else {
            Fit::WontFit
        }
    }
}

/// Largest safe input size for a sized workload.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeAdvice {
    /// Largest size that fits the budget, if any.
    pub largest_safe: Option<u32>,
    /// Said when the answer sits at the edge of what was measured (never extrapolated silently).
    pub note: Option<String>,
    /// (subject, the size to use for it).
    pub per_subject: Vec<(String, u32)>,
}

/// Largest safe batch for a batched workload.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchAdvice {
    /// Largest batch that fits, if any.
    pub largest_safe: Option<u32>,
}

/// Preset-specific detail.
#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    /// Nothing beyond the peak.
    None,
    /// Input size.
    Size(SizeAdvice),
    /// Batch size.
    Batch(BatchAdvice),
}

/// The advice for one preset.
#[derive(Clone, Debug, PartialEq)]
pub struct Advice {
    /// Preset id.
    pub id: String,
    /// Preset name.
    pub name: String,
    /// Peak planned with (at the advised size/batch), MiB.
    pub peak_mib: u64,
    /// The catalogue's reference peak, MiB.
    pub catalogue_mib: u64,
    /// Peak measured on this machine, when calibrated, MiB.
    pub measured_here_mib: Option<u64>,
    /// Verdict.
    pub fit: Fit,
    /// How many such jobs fit side by side: floor(usable / peak).
    pub max_concurrent: u64,
    /// Size or batch detail.
    pub detail: Detail,
    /// What to do instead, when it does not fit.
    pub fallback: Option<String>,
}

impl Advice {
    /// The size or batch detail as lines of text, as the panel and `vramdeck advise` show them.
    pub fn detail_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.detail {
            Detail::Size(s) => {
                if let Some(size) = s.largest_safe {
                    let subjects: Vec<String> = s
                        .per_subject
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect();
                    lines.push(format!(
                        "largest safe size {size} ({})",
                        subjects.join(", ")
                    ));
                }
                lines.extend(s.note.clone());
            }
            Detail::Batch(b) => lines.push(match b.largest_safe {
                Some(n) => format!("largest safe batch {n}"),
                None => "not even batch 1 fits".into(),
            }),
            Detail::None => {}
        }
        lines
    }
}

/// Interpolated peak at `size` by image area between measured points; `None` outside them.
pub fn peak_at_size(points: &[SizePoint], size: u32) -> Option<f64> {
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|p| p.size);
    let area = |s: u32| (s as f64) * (s as f64);
    sorted.windows(2).find_map(|w| {
        let (a, b) = (w[0], w[1]);
        (a.size..=b.size).contains(&size).then(|| {
            let f = (area(size) - area(a.size)) / (area(b.size) - area(a.size)).max(1.0);
            a.peak_mib as f64 + f * (b.peak_mib as f64 - a.peak_mib as f64)
        })
    })
}

/// The largest size whose interpolated peak fits `usable_mib`, in multiples of `step`, never
/// beyond the measured range.
pub fn largest_size(points: &[SizePoint], step: u32, usable_mib: f64) -> SizeAdvice {
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|p| p.size);
    let (Some(first), Some(last)) = (sorted.first().copied(), sorted.last().copied()) else {
        return SizeAdvice {
            largest_safe: None,
            note: Some("no measured sizes".into()),
            per_subject: vec![],
        };
    };
    if usable_mib < first.peak_mib as f64 {
        return SizeAdvice {
            largest_safe: None,
            note: Some(format!(
                "even the smallest measured size ({}) needs {} MiB",
                first.size, first.peak_mib
            )),
            per_subject: vec![],
        };
    }
    if usable_mib >= last.peak_mib as f64 {
        return SizeAdvice {
            largest_safe: Some(last.size),
            note: Some(format!(
                "larger sizes may fit, but {} is the largest measured: not extrapolated",
                last.size
            )),
            per_subject: vec![],
        };
    }
    let area = |s: u32| (s as f64) * (s as f64);
    let size = sorted
        .windows(2)
        .find(|w| usable_mib < w[1].peak_mib as f64)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let f = (usable_mib - a.peak_mib as f64) / (b.peak_mib as f64 - a.peak_mib as f64);
            let interpolated = (area(a.size) + f * (area(b.size) - area(a.size))).sqrt() as u32;
            let stepped = interpolated / step.max(1) * step.max(1);
            // A measured size that fits beats a rounded-down interpolation.
            stepped.max(a.size)
        })
        .unwrap_or(first.size);
    SizeAdvice {
        largest_safe: Some(size),
        note: None,
        per_subject: vec![],
    }
}

fn measured_points(
    w: &Workload,
    points: &[SizePoint],
    calibration: &Calibration,
) -> Vec<SizePoint> {
    points
        .iter()
        .map(|p| SizePoint {
            size: p.size,
            peak_mib: calibration
                .peak_mib(&key(&w.id, Some(p.size)))
                .unwrap_or(p.peak_mib),
        })
        .collect()
}

/// Advice for one preset.
pub fn advise_one(w: &Workload, budget: &Budget, calibration: &Calibration) -> Advice {
    let usable = budget.usable_mib();
    let catalogue_mib = w.reference_peak_mib();
    let (peak_mib, measured_here_mib, detail) = match &w.shape {
        Shape::Fixed { peak_mib, .. } => {
            let measured = calibration.peak_mib(&key(&w.id, None));
            (measured.unwrap_or(*peak_mib), measured, Detail::None)
        }
        Shape::Sized {
            points,
            size_step,
            guidance,
        } => {
            let points = measured_points(w, points, calibration);
            let measured = points
                .iter()
                .find_map(|p| calibration.peak_mib(&key(&w.id, Some(p.size))));
            let mut advice = largest_size(&points, *size_step, usable);
            if let Some(largest) = advice.largest_safe {
                advice.per_subject = guidance
                    .iter()
                    .map(|g| (g.subject.clone(), largest.min(g.max)))
                    .collect();
            }
            let at = advice
                .largest_safe
                .or(points.iter().map(|p| p.size).min())
                .unwrap_or(0);
            let peak = peak_at_size(&points, at)
                .or_else(|| {
                    points
                        .iter()
                        .find(|p| p.size == at)
                        .map(|p| p.peak_mib as f64)
                })
                .unwrap_or(0.0);
            (peak.round() as u64, measured, Detail::Size(advice))
        }
        Shape::Batched {
            base_mib,
            per_item_mib,
            max_batch,
            reference_batch,
        } => {
            // A recorded run is the peak at the reference batch: the model's share is what is
            // left after that batch's frames.
            let measured = calibration.peak_mib(&key(&w.id, None));
            let base = measured
                .map(|m| m.saturating_sub(per_item_mib.saturating_mul(*reference_batch as u64)))
                .unwrap_or(*base_mib) as f64;
            let per = (*per_item_mib).max(1) as f64;
            let batch = ((usable - base) / per).floor();
            let largest = (batch >= 1.0).then(|| (batch as u32).min(*max_batch));
            let planned = base + per * largest.unwrap_or(1) as f64;
            (
                planned.round() as u64,
                measured,
                Detail::Batch(BatchAdvice {
                    largest_safe: largest,
                }),
            )
        }
    };
    let fit = match &detail {
        Detail::Size(s) if s.largest_safe.is_some() => Fit::Fits,
        Detail::Batch(b) if b.largest_safe.is_some() => Fit::Fits,
        _ => budget.fit(peak_mib as f64),
    };
    let max_concurrent = if peak_mib == 0 {
        0
    } else {
        (usable / peak_mib as f64).floor().max(0.0) as u64
    };
    Advice {
        id: w.id.clone(),
        name: w.name.clone(),
        peak_mib,
        catalogue_mib,
        measured_here_mib,
        fit,
        max_concurrent,
        detail,
        fallback: None,
    }
}

/// Advice for every preset, with fallbacks for those that do not fit.
pub fn advise(catalogue: &Catalogue, budget: &Budget, calibration: &Calibration) -> Vec<Advice> {
    let mut all: Vec<Advice> = catalogue
        .workloads
        .iter()
        .map(|w| advise_one(w, budget, calibration))
        .collect();
    let verdicts: Vec<(String, Fit, String)> = all
        .iter()
        .map(|a| (a.id.clone(), a.fit, a.name.clone()))
        .collect();
    for (advice, w) in all.iter_mut().zip(&catalogue.workloads) {
        if advice.fit == Fit::Fits {
            continue;
        }
        let mut text = w.fallback_advice.clone().unwrap_or_default();
        // Follow the chain to the first lighter preset that fits.
        let mut next = w.fallback.clone();
        let mut hops = 0;
        while let Some(id) = next.take() {
            hops += 1;
            let Some((_, fit, name)) = verdicts.iter().find(|(i, ..)| *i == id) else {
                break;
            };
            if *fit == Fit::Fits {
                text = if text.is_empty() {
                    format!("use {name}")
                } else {
                    format!("{text} ({name} fits)")
                };
                break;
            }
            next = catalogue.get(&id).and_then(|f| f.fallback.clone());
            if hops > catalogue.workloads.len() {
                break;
            }
        }
        if text.is_empty() {
            text = "close other programs using the GPU, or free cached VRAM".into();
        }
        advice.fallback = Some(text);
    }
    all
}

/// Templates: what to run on a card of `gib` GiB at low (safest) / medium / high settings,
/// assuming the card is otherwise empty. Margins 40 % / 25 % / 10 %.
pub fn templates(catalogue: &Catalogue, calibration: &Calibration) -> Vec<(u32, [Vec<String>; 3])> {
    [8u32, 12, 24, 48, 80]
        .into_iter()
        .map(|gib| {
            let total = Bytes(gib as u64 * 1024 * MIB);
            let levels = [40.0, DEFAULT_MARGIN_PERCENT, 10.0].map(|margin| {
                let budget = Budget::new(total, total, margin);
                advise(catalogue, &budget, calibration)
                    .into_iter()
                    .filter(|a| a.fit == Fit::Fits)
                    .map(|a| match &a.detail {
                        Detail::Size(s) => {
                            format!("{} size {}", a.name, s.largest_safe.unwrap_or(0))
                        }
                        Detail::Batch(b) => {
                            format!("{} batch {}", a.name, b.largest_safe.unwrap_or(0))
                        }
                        Detail::None => a.name.clone(),
                    })
                    .collect()
            });
            (gib, levels)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * MIB;

    fn card(total_gib: f64, free_gib: f64) -> Budget {
        Budget::new(
            Bytes((free_gib * GIB as f64) as u64),
            Bytes((total_gib * GIB as f64) as u64),
            DEFAULT_MARGIN_PERCENT,
        )
    }

    fn advice(budget: &Budget, id: &str) -> Advice {
        let c = Catalogue::load(None);
        advise(&c, budget, &Calibration::default())
            .into_iter()
            .find(|a| a.id == id)
            .unwrap()
    }

    fn ddcolor_size(budget: &Budget) -> Option<u32> {
        match advice(budget, "ddcolor").detail {
            Detail::Size(s) => s.largest_safe,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_12_gb_card_gets_ddcolor_960_at_most() {
        // A desktop holds ~300 MiB; the article: "12 GB: buildings ≤ 960".
        assert_eq!(ddcolor_size(&card(12.0, 11.7)), Some(960));
        assert_eq!(ddcolor_size(&card(12.0, 12.0)), Some(960));
        let a = advice(&card(12.0, 11.7), "ddcolor");
        let Detail::Size(s) = a.detail else { panic!() };
        assert_eq!(
            s.per_subject,
            vec![("building".into(), 960), ("portrait".into(), 680)]
        );
    }

    #[test]
    fn an_8_gb_card_gets_ddcolor_around_768() {
        let size = ddcolor_size(&card(8.0, 7.7)).unwrap();
        assert!((704..=768).contains(&size), "{size}");
        assert_eq!(ddcolor_size(&card(8.0, 8.0)), Some(768));
    }

    #[test]
    fn sizes_are_never_extrapolated_silently() {
        let big = advice(&card(80.0, 79.0), "ddcolor");
        let Detail::Size(s) = big.detail else {
            panic!()
        };
        assert_eq!(s.largest_safe, Some(1280));
        assert!(s.note.unwrap().contains("not extrapolated"));
        let tiny = advice(&card(4.0, 3.5), "ddcolor");
        let Detail::Size(s) = tiny.detail else {
            panic!()
        };
        assert_eq!(s.largest_safe, None);
        assert!(s.note.unwrap().contains("smallest measured size (480)"));
        // 480 needs 3,174 MiB: inside 3.5 GiB free, but not with the 1 GiB margin.
        assert_eq!((tiny.fit, tiny.peak_mib), (Fit::Tight, 3_174));
        assert_eq!(advice(&card(4.0, 3.0), "ddcolor").fit, Fit::WontFit);
    }

    #[test]
    fn area_interpolation_passes_through_measured_points() {
        let c = Catalogue::load(None);
        let Shape::Sized { points, .. } = &c.get("ddcolor").unwrap().shape else {
            panic!()
        };
        assert_eq!(peak_at_size(points, 960), Some(8_704.0));
        let mid = peak_at_size(points, 1_120).unwrap();
        assert!(mid > 8_704.0 && mid < 12_083.0);
        assert_eq!(peak_at_size(points, 2_000), None);
    }

    #[test]
    fn wan_14b_unquantised_does_not_fit_40_gb_free_and_quantising_is_suggested() {
        let a = advice(&card(48.0, 40.0), "wan21-t2v-14b-480p");
        assert_eq!(a.fit, Fit::WontFit);
        assert!(a.fallback.unwrap().starts_with("enable quant_linear=True"));
        // With a whole 48 GB card free it runs, but inside the margin: tight.
        assert_eq!(
            advice(&card(48.0, 47.5), "wan21-t2v-14b-480p").fit,
            Fit::Tight
        );
    }

    #[test]
    fn fallback_chain_reaches_a_preset_that_fits() {
        // 16 GB free: 14B quantised does not fit; the chain ends at 1.3B 480p (12,200 MiB fits?
        // 16 - 25 % of 16 = 12 GiB = 12,288 MiB: yes).
        let a = advice(&card(16.0, 16.0), "wan21-t2v-14b-480p");
        assert_eq!(a.fit, Fit::WontFit);
        assert_eq!(
            a.fallback.as_deref(),
            Some("enable quant_linear=True (Wan2.1 T2V 1.3B 480p fits)")
        );
    }

    #[test]
    fn concurrency_is_usable_memory_over_peak() {
        // H100: 81,559 MiB, 81,000 free, margin 25 % → 60,610 MiB usable → 4 jobs of 12,200.
        let b = Budget::new(Bytes::from_mib(81_000), Bytes::from_mib(81_559), 25.0);
        assert_eq!(advice(&b, "wan21-t2v-1.3b-480p").max_concurrent, 4);
        assert_eq!(advice(&b, "wan22-i2v-a14b").max_concurrent, 1);
    }

    #[test]
    fn facefusion_batch_follows_free_memory() {
        let batch = |b: &Budget| match advice(b, "facefusion-fp16").detail {
            Detail::Batch(b) => b.largest_safe,
            _ => unreachable!(),
        };
        assert_eq!(batch(&card(24.0, 23.5)), Some(8)); // capped at the article's 8
        assert_eq!(batch(&card(12.0, 11.5)), Some(5));
        assert_eq!(batch(&card(8.0, 7.5)), None);
    }

    #[test]
    fn calibration_on_this_machine_wins_over_the_catalogue() {
        let c = Catalogue::load(None);
        let mut cal = Calibration::default();
        cal.record(&key("wan21-t2v-1.3b-480p", None), 13_500, "test GPU");
        // 16,000 free − 6,144 margin = 9,856 usable: 13,500 measured is tight (12,200 was too).
        let b = Budget::new(Bytes::from_mib(16_000), Bytes::from_mib(24_576), 25.0);
        let a = advise_one(c.get("wan21-t2v-1.3b-480p").unwrap(), &b, &cal);
        assert_eq!(
            (a.peak_mib, a.catalogue_mib, a.measured_here_mib),
            (13_500, 12_200, Some(13_500))
        );
        assert_eq!(a.max_concurrent, 0);
        assert_eq!(a.fit, Fit::Tight);
    }

    #[test]
    fn a_measured_facefusion_run_moves_the_batch_advice() {
        let c = Catalogue::load(None);
        let w = c.get("facefusion-fp16").unwrap();
        let b = Budget::new(Bytes::from_mib(12_000), Bytes::from_mib(12_288), 25.0);
        let batch = |cal: &Calibration| match advise_one(w, &b, cal).detail {
            Detail::Batch(b) => b.largest_safe,
            _ => unreachable!(),
        };
        // Catalogue: 5,939 + 512 per frame within 8,928 usable → 5 frames.
        assert_eq!(batch(&Calibration::default()), Some(5));
        // Measured here: 9,035 MiB at batch 4 → the model takes 6,987 → 3 frames fit.
        let mut cal = Calibration::default();
        cal.record(&key("facefusion-fp16", None), 9_035, "RTX 3060");
        assert_eq!(batch(&cal), Some(3));
    }

    #[test]
    fn templates_grow_with_the_card() {
        let c = Catalogue::load(None);
        let t = templates(&c, &Calibration::default());
        assert_eq!(
            t.iter().map(|(g, _)| *g).collect::<Vec<_>>(),
            vec![8, 12, 24, 48, 80]
        );
        for (_, [low, medium, high]) in &t {
            assert!(low.len() <= medium.len() && medium.len() <= high.len());
        }
        let (_, [_, _, high_80]) = &t[4];
        assert!(high_80.iter().any(|s| s.starts_with("Wan2.2 I2V")));
        let (_, [_, medium_12, _]) = &t[1];
        assert!(
            medium_12.contains(&"DDColor (ComfyUI) size 960".to_string()),
            "{medium_12:?}"
        );
    }
}
