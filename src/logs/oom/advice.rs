//! What caused a failure, from its numbers, and what to change: the real cause first (another
//! process, a request bigger than the card, a memory limit, fragmentation, this process's own
//! tensors), then the concrete change for the workload when the log shows which one ran.

use super::parse::{Era, Numbers, OomKind};
use super::{OomEvent, Recognised};
use crate::units::{Bytes, MemoryUnit};
use crate::workloads::advisor::{self, Budget, DEFAULT_MARGIN_PERCENT, Detail, Fit};
use crate::workloads::calibration::Calibration;
use crate::workloads::catalogue::{Catalogue, Shape};

const GIB: u64 = 1 << 30;

/// The main reason a failure happened, as far as its numbers tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// One request was bigger than the whole card: no freeing can help.
    LargerThanCard,
    /// A limit below the card (a memory fraction, an arena cap) was hit.
    MemoryLimit,
    /// Other processes held a large share of the card.
    OtherProcesses,
    /// Enough memory was cached, but not in one piece.
    Fragmentation,
    /// More was free than asked for, yet it failed.
    FreeButFailed,
    /// The failing process's own tensors filled the card.
    OwnTensors,
    /// A CUDA runtime allocation failed with no numbers (often creating a CUDA context on a
    /// full card).
    RuntimeAllocation,
    /// An illegal memory access, which often follows an earlier overflow.
    AfterOverflow,
    /// Not an out-of-memory at all (comfy-aimdo could not map memory).
    NotOutOfMemory,
    /// The numbers do not tell.
    Unknown,
}

impl Cause {
    /// Stable name for JSON.
    pub fn id(self) -> &'static str {
        match self {
            Cause::LargerThanCard => "request_larger_than_card",
            Cause::MemoryLimit => "memory_limit",
            Cause::OtherProcesses => "other_processes",
            Cause::Fragmentation => "fragmentation",
            Cause::FreeButFailed => "free_but_failed",
            Cause::OwnTensors => "own_tensors",
            Cause::RuntimeAllocation => "cuda_runtime_allocation",
            Cause::AfterOverflow => "after_overflow",
            Cause::NotOutOfMemory => "not_out_of_memory",
            Cause::Unknown => "unknown",
        }
    }
}

/// "1.2 GiB" from 1 GiB up, "512 MiB" below.
pub fn fmt(b: Bytes) -> String {
    if b.0 >= GIB {
        MemoryUnit::GiB.format(b)
    } else {
        MemoryUnit::MiB.format(b)
    }
}

/// Memory held outside this process's PyTorch cache: other processes, plus CUDA contexts.
fn outside(n: &Numbers) -> Option<Bytes> {
    let used = n.total?.saturating_sub(n.free?);
    let ours = n.process_in_use.or(n.reserved)?;
    Some(used.saturating_sub(ours))
}

/// Reserved by PyTorch but not used by any tensor.
pub fn unallocated(n: &Numbers) -> Option<Bytes> {
    Some(n.reserved?.saturating_sub(n.allocated?))
}

/// Decides the main cause of a failure.
pub fn diagnose(kind: OomKind, n: &Numbers) -> Cause {
    let requested = n.requested.unwrap_or_default();
    match kind {
        OomKind::IllegalAccess => return Cause::AfterOverflow,
        OomKind::AimdoNotOom => return Cause::NotOutOfMemory,
        OomKind::CudaError if n.requested.is_none() => return Cause::RuntimeAllocation,
        _ => {}
    }
    if let Some(total) = n.total
        && requested > total
    {
        return Cause::LargerThanCard;
    }
    if let Some(limit) = n.limit {
        let would_hold = n
            .allocated
            .unwrap_or_default()
            .0
            .saturating_add(n.other_allocations.unwrap_or_default().0)
            .saturating_add(requested.0);
        if requested > limit || would_hold > limit.0 {
            return Cause::MemoryLimit;
        }
    }
    let others: u64 = n.others.iter().fold(0, |s, o| s.saturating_add(o.used.0));
    let others = if n.others.is_empty() {
        // Older formats do not list processes: what lies outside this process's cache (less
        // the ~0.5 GiB of its own CUDA context) is the best estimate.
        outside(n).map_or(0, |b| b.0.saturating_sub(GIB / 2))
    } else {
        others
    };
    let share = n.total.map_or(0, |t| t.0 / 4);
    if others >= GIB.max(requested.0) && others >= share {
        return Cause::OtherProcesses;
    }
    if let Some(unused) = unallocated(n)
        && unused.0 >= (128 << 20)
        && unused >= requested
    {
        return Cause::Fragmentation;
    }
    if let Some(free) = n.free
        && n.requested.is_some()
        && free >= requested
    {
        return Cause::FreeButFailed;
    }
    if let (Some(allocated), Some(total)) = (n.allocated, n.total)
        && allocated.0 >= total.0 / 2
    {
        return Cause::OwnTensors;
    }
    if matches!(kind, OomKind::Cublas | OomKind::Cudnn) {
        return Cause::OwnTensors;
    }
    Cause::Unknown
}

/// How to fight fragmentation with the PyTorch this message came from.
fn fragmentation_fix(kind: OomKind, era: Era, max_split_hint: bool) -> String {
    match era {
        Era::Torch21 if kind == OomKind::Hip => crate::t!("oom-fix-expandable-hip"),
        Era::Torch21 => crate::t!("oom-fix-expandable"),
        Era::Torch14 if max_split_hint => crate::t!("oom-fix-max-split"),
        _ => crate::t!("oom-fix-empty-cache"),
    }
}

/// The sentences for the cause, most important first.
fn cause_advice(e: &OomEvent, max_split_hint: bool) -> Vec<String> {
    let n = &e.numbers;
    let requested = fmt(n.requested.unwrap_or_default());
    let mut out = Vec::new();
    match e.cause {
        Cause::LargerThanCard => out.push(crate::t!(
            "oom-cause-larger-than-card",
            requested = requested,
            total = fmt(n.total.unwrap_or_default())
        )),
        Cause::MemoryLimit => {
            let limit = fmt(n.limit.unwrap_or_default());
            out.extend(match (e.kind, n.total) {
                // Apple's limit is said with its figures in the MPS advice below.
                (OomKind::Mps, _) => None,
                (OomKind::Xla, _) => Some(crate::t!(
                    "oom-cause-xla-limit",
                    limit = limit,
                    requested = requested
                )),
                (OomKind::OnnxRuntime, _) => Some({
                    crate::t!("oom-cause-onnx-limit", limit = limit, requested = requested)
                }),
                (_, Some(total)) => Some(crate::t!(
                    "oom-cause-limit-below-card",
                    limit = limit,
                    total = fmt(total)
                )),
                (_, None) => Some(crate::t!("oom-cause-limit", limit = limit)),
            });
        }
        Cause::OtherProcesses => {
            if n.others.is_empty() {
                out.push(crate::t!(
                    "oom-cause-outside",
                    held = fmt(outside(n).unwrap_or_default())
                ));
            } else {
                let list: Vec<String> = n
                    .others
                    .iter()
                    .map(|o| {
                        crate::t!(
                            "oom-cause-other-pid",
                            pid = o.pid.to_string(),
                            held = fmt(o.used)
                        )
                    })
                    .collect();
                let total: u64 = n.others.iter().fold(0, |s, o| s.saturating_add(o.used.0));
                let (held, list) = (fmt(Bytes(total)), list.join(", "));
                out.push(match n.process_in_use {
                    Some(own) => crate::t!(
                        "oom-cause-others-self",
                        held = held,
                        list = list,
                        own = fmt(own)
                    ),
                    None => crate::t!("oom-cause-others", held = held, list = list),
                });
            }
        }
        Cause::Fragmentation => out.push(crate::t!(
            "oom-cause-fragmentation",
            unused = fmt(unallocated(n).unwrap_or_default()),
            requested = requested,
            fix = fragmentation_fix(e.kind, e.era, max_split_hint)
        )),
        Cause::FreeButFailed => out.push(crate::t!(
            "oom-cause-free-but-failed",
            free = fmt(n.free.unwrap_or_default()),
            requested = requested
        )),
        Cause::OwnTensors => out.push(match (n.allocated, n.total) {
            (Some(a), Some(t)) => {
                crate::t!("oom-cause-own-tensors", allocated = fmt(a), total = fmt(t))
            }
            _ => crate::t!("oom-cause-workspace"),
        }),
        Cause::RuntimeAllocation => out.push(crate::t!("oom-cause-runtime")),
        Cause::AfterOverflow => out.push(crate::t!("oom-cause-after-overflow")),
        Cause::NotOutOfMemory => out.push(crate::t!("oom-cause-aimdo")),
        Cause::Unknown => {}
    }
    out
}

/// What to change about a recognised workload on a card of `total`; `held` is what the failing
/// process held, when the message says.
fn workload_advice(
    name: &str,
    a: &advisor::Advice,
    w: &Recognised,
    total: Bytes,
    held: Option<Bytes>,
) -> Vec<String> {
    let card = fmt(total);
    let mut out = Vec::new();
    match (&a.detail, w.size, w.batch) {
        (Detail::Size(s), Some(size), _) => match s.largest_safe {
            Some(safe) if safe < size => out.push(crate::t!(
                "oom-workload-use-size",
                name = name,
                safe = safe.to_string(),
                size = size.to_string(),
                card = card
            )),
            Some(_) => out.push(crate::t!(
                "oom-workload-size-fits",
                name = name,
                size = size.to_string(),
                card = card
            )),
            None => out.push(crate::t!(
                "oom-workload-none-fits",
                name = name,
                card = card
            )),
        },
        (Detail::Batch(b), _, Some(batch)) => match b.largest_safe {
            Some(safe) if safe < batch => out.push(crate::t!(
                "oom-workload-frames",
                name = name,
                safe = safe.to_string(),
                batch = batch.to_string()
            )),
            _ => out.push(facefusion_generic(name)),
        },
        (Detail::Batch(_), _, None) => out.push(facefusion_generic(name)),
        _ if a.fit != Fit::Fits => out.push(crate::t!(
            "oom-workload-peak",
            name = name,
            peak = fmt(Bytes::from_mib(a.peak_mib)),
            fallback = a.fallback.clone().unwrap_or_default()
        )),
        _ => {
            let catalogue_peak = Bytes::from_mib(a.peak_mib);
            match held {
                // The run itself held far more than the preset's peak: its settings differ.
                Some(h) if h.0 > catalogue_peak.0 / 10 * 11 => out.push(crate::t!(
                    "oom-workload-held-more",
                    held = fmt(h),
                    peak = fmt(catalogue_peak),
                    name = name
                )),
                _ => out.push(crate::t!("oom-workload-fits", name = name, card = card)),
            }
        }
    }
    out
}

/// FaceFusion's own options that lower its VRAM (checked against FaceFusion 3.8's program.py).
fn facefusion_generic(name: &str) -> String {
    crate::t!("oom-facefusion-generic", name = name)
}

/// Generic change when the workload is unknown, by what failed.
fn generic_change(kind: OomKind, n: &Numbers) -> String {
    match kind {
        // The async backend is ComfyUI's default; 2.3-2.5 printed no numbers at all.
        OomKind::TorchAsync if n.requested.is_none() => crate::t!("oom-generic-async-no-numbers"),
        OomKind::TorchAsync => crate::t!("oom-generic-async"),
        OomKind::OnnxRuntime => crate::t!("oom-generic-onnx"),
        _ => crate::t!("oom-generic"),
    }
}

/// What the program that printed the failure offers to lower its memory (llama.cpp and
/// Ollama, vLLM, XLA, Apple's MPS, ROCm).
fn stack_advice(e: &OomEvent) -> Option<String> {
    let n = &e.numbers;
    Some(match e.kind {
        OomKind::Ggml => crate::t!("oom-stack-ggml"),
        OomKind::VllmCumem => crate::t!("oom-stack-vllm-cumem"),
        OomKind::Torch if e.text.contains("warming up sampler") => {
            crate::t!("oom-stack-vllm-sampler")
        }
        OomKind::Xla => crate::t!("oom-stack-xla"),
        OomKind::Mps => crate::t!(
            "oom-stack-mps",
            allocated = fmt(n.allocated.unwrap_or_default()),
            other = fmt(n.other_allocations.unwrap_or_default()),
            limit = fmt(n.limit.unwrap_or_default())
        ),
        OomKind::Hip => crate::t!("oom-stack-hip"),
        _ => return None,
    })
}

/// Every piece of advice for an event, the real cause first.
pub fn advise(
    e: &OomEvent,
    max_split_hint: bool,
    catalogue: &Catalogue,
    calibration: &Calibration,
) -> Vec<String> {
    let n = &e.numbers;
    let mut advice = cause_advice(e, max_split_hint);
    advice.extend(stack_advice(e));
    // Freeing other programs' memory is the change; the workload itself may be fine.
    let workload_matters = !matches!(
        e.cause,
        Cause::OtherProcesses
            | Cause::RuntimeAllocation
            | Cause::AfterOverflow
            | Cause::NotOutOfMemory
    );
    if let Some(w) = e.workload.as_ref().filter(|_| workload_matters) {
        advice.extend(w.hints.iter().cloned());
        if let Some(preset) = catalogue.get(&w.preset_id) {
            match n.total {
                Some(total) => {
                    let budget = Budget::new(total, total, DEFAULT_MARGIN_PERCENT);
                    if let Some(a) = advisor::advise(catalogue, &budget, calibration)
                        .into_iter()
                        .find(|a| a.id == preset.id)
                    {
                        let held = n.process_in_use.or(n.reserved);
                        advice.extend(workload_advice(preset.text().name, &a, w, total, held));
                    }
                }
                None => match (&preset.shape, w.batch) {
                    (Shape::Batched { max_batch, .. }, Some(batch)) if batch > *max_batch => advice
                        .push(crate::t!(
                            "oom-facefusion-max-batch",
                            name = preset.text().name,
                            max = max_batch.to_string(),
                            batch = batch.to_string()
                        )),
                    (Shape::Batched { .. }, _) => {
                        advice.push(facefusion_generic(preset.text().name))
                    }
                    _ => {}
                },
            }
        }
    } else if matches!(e.cause, Cause::OwnTensors | Cause::Unknown) && stack_advice(e).is_none() {
        advice.push(generic_change(e.kind, n));
    }
    if let (Some(req), Some(free), Some(total)) = (n.requested, n.free, n.total) {
        advice.push(crate::t!(
            "oom-needed-free-total",
            requested = fmt(req),
            free = fmt(free),
            total = fmt(total)
        ));
    }
    advice
}
