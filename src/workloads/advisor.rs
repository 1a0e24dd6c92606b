//! What fits: each preset against the selected GPU's free VRAM, with a safety margin that
//! belongs to the workload, not to the card.
//!
//! A job needs its peak, plus a share of that peak (default 28 %) for what once-a-second
//! sampling misses — short spikes, fragmentation; on the seed's 12 GB card a measured 11.8 GB
//! peak already failed — plus a fixed 512 MiB (about one CUDA context: the desktop, a monitor,
//! the next job starting). A margin relative to the card (the old 25 %) asked for 20 GiB on
//! an 80 GB card and refused jobs that fit with room to spare; this one is the same for a job
//! on any card. The figures reproduce the articles' own guidance: a 12 GB card gets DDColor
//! ≤ 960 and an 8 GB card ≤ 768, and Wan2.1 14B unquantised (41.2 GB) is tight on 48 GB.

use super::calibration::{Calibration, key};
use super::catalogue::{Catalogue, Shape, SizePoint, Workload};
use crate::units::{Bytes, MIB};

/// Default safety margin, percent of the workload's peak.
pub const DEFAULT_MARGIN_PERCENT: f32 = 28.0;
/// Fixed room kept beside every job, MiB (a CUDA context is ~0.5 GiB: 518 MiB on an H100).
pub const FIXED_ALLOWANCE_MIB: f64 = 512.0;
/// Largest margin the slider and `advise --margin` accept, percent.
pub const MAX_MARGIN_PERCENT: f32 = 100.0;

/// How a preset relates to the memory available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Peak, margin and allowance fit in free memory.
    Fits,
    /// The peak fits in free memory, but not with the margin: close other programs first.
    Tight,
    /// The peak exceeds free memory: it will run out of memory.
    WontFit,
}

impl Fit {
    /// In the user's words ("fits", "放得下").
    pub fn text(self) -> String {
        match self {
            Fit::Fits => crate::t!("fit-fits"),
            Fit::Tight => crate::t!("fit-tight"),
            Fit::WontFit => crate::t!("fit-wont"),
        }
    }

    /// Stable English label (JSON, the serve API).
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
    /// Free VRAM now (never more than the card).
    pub free: Bytes,
    /// Installed VRAM.
    pub total: Bytes,
    /// Safety margin, percent of a workload's peak.
    pub margin_percent: f32,
}

impl Budget {
    /// Free memory and a margin of `margin_percent` of each workload's peak. A margin that is
    /// not a number takes the default; free memory is capped at the card.
    pub fn new(free: Bytes, total: Bytes, margin_percent: f32) -> Self {
        let margin_percent = if margin_percent.is_nan() {
            DEFAULT_MARGIN_PERCENT
        } else {
            margin_percent.clamp(0.0, MAX_MARGIN_PERCENT)
        };
        Budget {
            free: free.min(total),
            total,
            margin_percent,
        }
    }

    /// The margin a job of `peak_mib` gets, MiB.
    pub fn margin_mib(&self, peak_mib: f64) -> f64 {
        peak_mib * f64::from(self.margin_percent) / 100.0
    }

    /// What a job of `peak_mib` needs free to be safe: peak + margin + allowance, MiB.
    pub fn needs_mib(&self, peak_mib: f64) -> f64 {
        peak_mib + self.margin_mib(peak_mib) + FIXED_ALLOWANCE_MIB
    }

    fn fit(&self, peak_mib: f64) -> Fit {
        if self.needs_mib(peak_mib) <= self.free.mib() {
            Fit::Fits
        } else if peak_mib <= self.free.mib() {
            Fit::Tight
        } else {
            Fit::WontFit
        }
    }

    /// How many jobs of `peak_mib` fit side by side, each with its margin, sharing one allowance.
    fn concurrent(&self, peak_mib: f64) -> u64 {
        let per_job = peak_mib + self.margin_mib(peak_mib);
        if per_job <= 0.0 {
            return 0;
        }
        ((self.free.mib() - FIXED_ALLOWANCE_MIB) / per_job)
            .floor()
            .max(0.0) as u64
    }

    /// The largest peak that is safe: the inverse of [`needs_mib`](Self::needs_mib), MiB.
    pub fn largest_safe_peak_mib(&self) -> f64 {
        (self.free.mib() - FIXED_ALLOWANCE_MIB) / (1.0 + f64::from(self.margin_percent) / 100.0)
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
    /// The margin planned on top of the peak, MiB.
    pub margin_mib: u64,
    /// Peak + margin + the fixed allowance: what must be free, MiB.
    pub needs_mib: u64,
    /// How many such jobs fit side by side with their margins (0 unless it fits).
    pub max_concurrent: u64,
    /// Size or batch detail.
    pub detail: Detail,
    /// What to do instead, when it does not fit.
    pub fallback: Option<String>,
}

impl Advice {
    /// The reasoning in one line, in `unit`: "needs 16,128 MiB (peak 12,200 MiB + 28 % +
    /// 512 MiB) · 2 at once". The free memory it is held against heads the panel.
    pub fn reasoning(&self, budget: &Budget, unit: crate::units::MemoryUnit) -> String {
        let f = |mib: u64| unit.format_mib(mib as f64);
        let needs = crate::t!(
            "adv-needs",
            needs = f(self.needs_mib),
            peak = f(self.peak_mib),
            margin = format!("{:.0}", budget.margin_percent),
            allowance = format!("{FIXED_ALLOWANCE_MIB:.0}")
        );
        match self.fit {
            Fit::Fits if self.max_concurrent > 1 => crate::t!(
                "adv-fits-at-once",
                needs = needs,
                count = self.max_concurrent
            ),
            Fit::Fits => crate::t!("adv-fits-one", needs = needs),
            Fit::Tight => crate::t!("adv-tight", needs = needs),
            Fit::WontFit => crate::t!(
                "adv-wont",
                peak = f(self.peak_mib),
                free = unit.format(budget.free)
            ),
        }
    }

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
                    lines.push(crate::t!(
                        "adv-largest-size",
                        size = size.to_string(),
                        subjects = subjects.join(", ")
                    ));
                }
                lines.extend(s.note.clone());
            }
            Detail::Batch(b) => lines.push(match (b.largest_safe, self.fit) {
                (Some(n), _) => crate::t!("adv-largest-batch", count = n),
                (None, Fit::Tight) => crate::t!("adv-batch-tight"),
                (None, _) => crate::t!("adv-batch-none"),
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
            note: Some(crate::t!("adv-no-sizes")),
            per_subject: vec![],
        };
    };
    if usable_mib < first.peak_mib as f64 {
        return SizeAdvice {
            largest_safe: None,
            note: Some(crate::t!(
                "adv-smallest-too-big",
                size = first.size.to_string(),
                peak = crate::units::group_thousands(first.peak_mib)
            )),
            per_subject: vec![],
        };
    }
    if usable_mib >= last.peak_mib as f64 {
        return SizeAdvice {
            largest_safe: Some(last.size),
            note: Some(crate::t!(
                "adv-not-extrapolated",
                size = last.size.to_string()
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

/// The catalogue's measured sizes with this machine's measurements in their place, plus any
/// size measured here that the catalogue does not have (a run recorded at an advised size).
fn measured_points(
    w: &Workload,
    points: &[SizePoint],
    calibration: &Calibration,
) -> Vec<SizePoint> {
    let mut out: Vec<SizePoint> = points
        .iter()
        .map(|p| SizePoint {
            size: p.size,
            peak_mib: calibration
                .peak_mib(&key(&w.id, Some(p.size)))
                .unwrap_or(p.peak_mib),
        })
        .collect();
    let prefix = format!("{}@", w.id);
    for (k, m) in &calibration.measured {
        if let Some(size) = k.strip_prefix(&prefix).and_then(|s| s.parse::<u32>().ok())
            && !out.iter().any(|p| p.size == size)
        {
            out.push(SizePoint {
                size,
                peak_mib: m.peak_mib,
            });
        }
    }
    out.sort_by_key(|p| p.size);
    out
}

/// Advice for one preset.
pub fn advise_one(w: &Workload, budget: &Budget, calibration: &Calibration) -> Advice {
    // The largest peak a job may have and still leave its margin and the allowance free.
    let safe_peak = budget.largest_safe_peak_mib();
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
            let mut advice = largest_size(&points, *size_step, safe_peak);
            if let Some(largest) = advice.largest_safe {
                advice.per_subject = guidance
                    .iter()
                    .map(|g| (w.text().subject(&g.subject).to_string(), largest.min(g.max)))
                    .collect();
            }
            // Planned at the advised size; with none safe, at the smallest measured one.
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
            let batch = ((safe_peak - base) / per).floor();
            let largest =
                (batch >= 1.0).then(|| (batch.min(f64::from(u32::MAX)) as u32).min(*max_batch));
            let planned = base + per * f64::from(largest.unwrap_or(1));
            (
                planned.round() as u64,
                measured,
                Detail::Batch(BatchAdvice {
                    largest_safe: largest,
                }),
            )
        }
    };
    // One verdict from one rule: the planned peak against free memory.
    let fit = budget.fit(peak_mib as f64);
    let max_concurrent = match fit {
        Fit::Fits => budget.concurrent(peak_mib as f64).max(1),
        _ => 0,
    };
    Advice {
        id: w.id.clone(),
        name: w.text().name.to_string(),
        peak_mib,
        catalogue_mib,
        measured_here_mib,
        fit,
        margin_mib: budget.margin_mib(peak_mib as f64).round() as u64,
        needs_mib: budget.needs_mib(peak_mib as f64).round() as u64,
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
        let mut text = w
            .text()
            .fallback_advice
            .map(str::to_string)
            .unwrap_or_default();
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
                    crate::t!("adv-use", name = name)
                } else {
                    crate::t!("adv-advice-and-fits", advice = text, name = name)
                };
                break;
            }
            next = catalogue.get(&id).and_then(|f| f.fallback.clone());
            if hops > catalogue.workloads.len() {
                break;
            }
        }
        if text.is_empty() {
            text = crate::t!("adv-close-others");
        }
        advice.fallback = Some(text);
    }
    all
}

/// One setting of a template: a preset at the size or batch that suits the level.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateSetting {
    /// The family's name (its first preset's name, e.g. "Wan2.1 / Wan2.2 video").
    pub family: String,
    /// What to run, e.g. "Wan2.1 T2V 1.3B 720p" or "DDColor (ComfyUI) size 960".
    pub setting: String,
}

/// A card's three templates: the low, medium and high setting of each workload family.
#[derive(Clone, Debug, PartialEq)]
pub struct CardTemplates {
    /// Card size, GiB.
    pub gib: u32,
    /// Low (the lightest setting that fits), medium (the middle one), high (the heaviest);
    /// a family with nothing that fits is left out.
    pub levels: [Vec<TemplateSetting>; 3],
}

/// Presets connected by fallbacks form a family (the Wan presets); others stand alone.
fn families(catalogue: &Catalogue) -> Vec<Vec<usize>> {
    let n = catalogue.workloads.len();
    let mut family: Vec<usize> = (0..n).collect();
    fn root(family: &mut [usize], mut i: usize) -> usize {
        while family[i] != i {
            family[i] = family[family[i]];
            i = family[i];
        }
        i
    }
    for (i, w) in catalogue.workloads.iter().enumerate() {
        if let Some(j) = w
            .fallback
            .as_ref()
            .and_then(|f| catalogue.workloads.iter().position(|x| &x.id == f))
        {
            let (a, b) = (root(&mut family, i), root(&mut family, j));
            family[a] = b;
        }
    }
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in 0..n {
        let r = root(&mut family, i);
        match groups.iter_mut().find(|(root, _)| *root == r) {
            Some((_, members)) => members.push(i),
            None => groups.push((r, vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// Every setting of a family that fits `budget`, lightest first: each fixed preset, each
/// measured size up to the largest safe one, each batch up to the largest safe one.
fn fitting_settings(
    catalogue: &Catalogue,
    members: &[usize],
    budget: &Budget,
    calibration: &Calibration,
) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for &i in members {
        let w = &catalogue.workloads[i];
        let a = advise_one(w, budget, calibration);
        if a.fit != Fit::Fits {
            continue;
        }
        match (&w.shape, &a.detail) {
            (Shape::Sized { points, .. }, Detail::Size(s)) => {
                let largest = s.largest_safe.unwrap_or(0);
                let points = measured_points(w, points, calibration);
                let mut sizes: Vec<u32> = points
                    .iter()
                    .map(|p| p.size)
                    .filter(|&size| size < largest)
                    .collect();
                sizes.push(largest);
                for size in sizes {
                    let peak = peak_at_size(&points, size).unwrap_or(0.0).round() as u64;
                    out.push((
                        peak,
                        crate::t!(
                            "adv-template-size",
                            name = w.text().name,
                            size = size.to_string()
                        ),
                    ));
                }
            }
            (
                Shape::Batched {
                    base_mib,
                    per_item_mib,
                    ..
                },
                Detail::Batch(b),
            ) => {
                for n in batch_steps(b.largest_safe.unwrap_or(0)) {
                    let peak = base_mib.saturating_add(per_item_mib.saturating_mul(u64::from(n)));
                    out.push((
                        peak,
                        crate::t!("adv-template-batch", name = w.text().name, count = n),
                    ));
                }
            }
            _ => out.push((a.peak_mib, a.name.clone())),
        }
    }
    out.sort_by_key(|(peak, _)| *peak);
    out
}

/// Batches a template considers: every one up to 32, else 32 spread from 1 to `largest`
/// (a preset may allow thousands; a template only needs the lightest, middle and heaviest).
fn batch_steps(largest: u32) -> Vec<u32> {
    const STEPS: u32 = 32;
    if largest <= STEPS {
        return (1..=largest).collect();
    }
    let mut steps: Vec<u32> = (0..STEPS)
        .map(|i| 1 + ((u64::from(largest) - 1) * u64::from(i) / u64::from(STEPS - 1)) as u32)
        .collect();
    steps.dedup();
    steps
}

/// Templates for 8, 12, 24, 48 and 80 GB cards, assuming the card is otherwise empty: for each
/// workload family, among the settings that fit with the default margin, the lightest (low:
/// fastest, least detail), the middle one (medium) and the heaviest (high).
pub fn templates(catalogue: &Catalogue, calibration: &Calibration) -> Vec<CardTemplates> {
    let families = families(catalogue);
    [8u32, 12, 24, 48, 80]
        .into_iter()
        .map(|gib| {
            let total = Bytes(u64::from(gib) * 1024 * MIB);
            let budget = Budget::new(total, total, DEFAULT_MARGIN_PERCENT);
            let mut levels: [Vec<TemplateSetting>; 3] = Default::default();
            for members in &families {
                let settings = fitting_settings(catalogue, members, &budget, calibration);
                if settings.is_empty() {
                    continue;
                }
                let family = catalogue.workloads[members[0]].text().name.to_string();
                let picks = [0, settings.len() / 2, settings.len() - 1];
                for (level, pick) in levels.iter_mut().zip(picks) {
                    level.push(TemplateSetting {
                        family: family.clone(),
                        setting: settings[pick].1.clone(),
                    });
                }
            }
            CardTemplates { gib, levels }
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
        // The article: "12 GB: buildings ≤ 960" (1280 failed near the limit).
        assert_eq!(ddcolor_size(&card(12.0, 12.0)), Some(960));
        assert_eq!(ddcolor_size(&card(12.0, 11.7)), Some(960));
        let a = advice(&card(12.0, 11.7), "ddcolor");
        let Detail::Size(s) = a.detail else { panic!() };
        assert_eq!(
            s.per_subject,
            vec![("building".into(), 960), ("portrait".into(), 680)]
        );
    }

    #[test]
    fn an_8_gb_card_gets_ddcolor_768_at_most() {
        assert_eq!(ddcolor_size(&card(8.0, 8.0)), Some(768));
        // A desktop holding 300 MiB brings it one measured step down (720 px was measured).
        assert_eq!(ddcolor_size(&card(8.0, 7.7)), Some(720));
    }

    #[test]
    fn the_margin_belongs_to_the_workload_not_the_card() {
        // 14B unquantised (41.2 GB) on the seed's 48 GB card: near the limit, as measured.
        assert_eq!(
            advice(&card(48.0, 48.0), "wan21-t2v-14b-480p").fit,
            Fit::Tight
        );
        // On an 80 GB card with 55 GB free it fits with room to spare; a quarter of the card
        // as margin (20 GiB) called it tight.
        let a = advice(&card(80.0, 55.0), "wan22-i2v-a14b");
        assert_eq!(a.fit, Fit::Fits);
        assert_eq!(a.needs_mib, 39_500 + 11_060 + 512);
    }

    #[test]
    fn verdicts_never_contradict_their_details() {
        let c = Catalogue::load(None);
        for free_gib in [0.5, 3.0, 3.5, 7.0, 12.0, 16.0, 40.0, 47.5, 79.0] {
            let b = card(80.0, free_gib);
            for a in advise(&c, &b, &Calibration::default()) {
                match a.fit {
                    Fit::Fits => assert!(a.max_concurrent >= 1, "{} at {free_gib}", a.name),
                    _ => assert_eq!(a.max_concurrent, 0, "{} at {free_gib}", a.name),
                }
                if let Detail::Batch(batch) = &a.detail {
                    assert_eq!(
                        batch.largest_safe.is_some(),
                        a.fit == Fit::Fits,
                        "{free_gib}"
                    );
                }
                if let Detail::Size(size) = &a.detail {
                    assert_eq!(
                        size.largest_safe.is_some(),
                        a.fit == Fit::Fits,
                        "{free_gib}"
                    );
                }
                assert_eq!(a.fallback.is_some(), a.fit != Fit::Fits);
            }
        }
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
        // 480 needs 3,174 MiB: inside 3.5 GiB free, but not with its margin.
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
    }

    #[test]
    fn fallback_chain_reaches_a_preset_that_fits() {
        // 16 GiB free: 14B does not fit; 1.3B 480p needs 16,128 MiB and 16,384 are free.
        let a = advice(&card(16.0, 16.0), "wan21-t2v-14b-480p");
        assert_eq!(a.fit, Fit::WontFit);
        assert_eq!(
            a.fallback.as_deref(),
            Some("enable quant_linear=True (Wan2.1 T2V 1.3B 480p fits)")
        );
    }

    #[test]
    fn concurrency_counts_each_jobs_margin() {
        // H100: 81,000 MiB free: (81,000 - 512) / (12,200 × 1.28) = 5 jobs of 1.3B 480p.
        let b = Budget::new(Bytes::from_mib(81_000), Bytes::from_mib(81_559), 28.0);
        assert_eq!(advice(&b, "wan21-t2v-1.3b-480p").max_concurrent, 5);
        assert_eq!(advice(&b, "wan22-i2v-a14b").max_concurrent, 1);
    }

    #[test]
    fn facefusion_frames_follow_free_memory() {
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
        // 16,000 free: 13,500 measured needs 17,792 with its margin: tight.
        let b = Budget::new(Bytes::from_mib(16_000), Bytes::from_mib(24_576), 28.0);
        let a = advise_one(c.get("wan21-t2v-1.3b-480p").unwrap(), &b, &cal);
        assert_eq!(
            (a.peak_mib, a.catalogue_mib, a.measured_here_mib),
            (13_500, 12_200, Some(13_500))
        );
        assert_eq!((a.fit, a.max_concurrent), (Fit::Tight, 0));
    }

    #[test]
    fn a_size_measured_here_joins_the_measured_points() {
        let c = Catalogue::load(None);
        let mut cal = Calibration::default();
        cal.record(&key("ddcolor", Some(1_088)), 9_600, "RTX 3060");
        let a = advise_one(c.get("ddcolor").unwrap(), &card(12.0, 12.0), &cal);
        assert_eq!(a.measured_here_mib, Some(9_600));
        let w = c.get("ddcolor").unwrap();
        let Shape::Sized { points, .. } = &w.shape else {
            panic!()
        };
        assert!(
            measured_points(w, points, &cal)
                .iter()
                .any(|p| p.size == 1_088)
        );
    }

    #[test]
    fn a_measured_facefusion_run_moves_the_batch_advice() {
        let c = Catalogue::load(None);
        let w = c.get("facefusion-fp16").unwrap();
        let b = Budget::new(Bytes::from_mib(12_000), Bytes::from_mib(12_288), 28.0);
        let batch = |cal: &Calibration| match advise_one(w, &b, cal).detail {
            Detail::Batch(b) => b.largest_safe,
            _ => unreachable!(),
        };
        assert_eq!(batch(&Calibration::default()), Some(5));
        // Measured here: 9,035 MiB at 4 frames → the model takes 6,987 → 3 frames fit.
        let mut cal = Calibration::default();
        cal.record(&key("facefusion-fp16", None), 9_035, "RTX 3060");
        assert_eq!(batch(&cal), Some(3));
    }

    #[test]
    fn templates_are_low_medium_and_high_per_family() {
        let c = Catalogue::load(None);
        let t = templates(&c, &Calibration::default());
        assert_eq!(
            t.iter().map(|c| c.gib).collect::<Vec<_>>(),
            vec![8, 12, 24, 48, 80]
        );
        let setting = |gib: u32, level: usize, family: &str| {
            t.iter().find(|c| c.gib == gib).unwrap().levels[level]
                .iter()
                .find(|s| s.family.starts_with(family))
                .map(|s| s.setting.clone())
        };
        assert_eq!(
            setting(12, 2, "DDColor").as_deref(),
            Some("DDColor (ComfyUI) size 960")
        );
        assert_eq!(
            setting(8, 2, "DDColor").as_deref(),
            Some("DDColor (ComfyUI) size 768")
        );
        assert_eq!(
            setting(80, 0, "Wan").as_deref(),
            Some("Wan2.1 T2V 1.3B 480p")
        );
        assert_eq!(
            setting(80, 2, "Wan").as_deref(),
            Some("Wan2.1 T2V 14B 480p (not quantised)")
        );
        assert_eq!(setting(8, 1, "Wan"), None, "nothing of Wan fits 8 GB");
    }

    #[test]
    fn a_margin_that_is_not_a_number_takes_the_default() {
        let b = Budget::new(Bytes::from_mib(1), Bytes::from_mib(2), f32::NAN);
        assert_eq!(b.margin_percent, DEFAULT_MARGIN_PERCENT);
        let b = Budget::new(Bytes::from_mib(5), Bytes::from_mib(2), 500.0);
        assert_eq!(
            (b.margin_percent, b.free),
            (MAX_MARGIN_PERCENT, Bytes::from_mib(2))
        );
    }
}
