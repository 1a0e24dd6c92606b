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
fn fragmentation_fix(era: Era, max_split_hint: bool) -> &'static str {
    match era {
        Era::Torch21 => "set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True before starting",
        Era::Torch14 if max_split_hint => {
            "set PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:128 before starting (this PyTorch \
             predates 2.1 and its expandable_segments)"
        }
        _ => {
            "call torch.cuda.empty_cache() between jobs or restart the job; this PyTorch has no \
             allocator settings for it (max_split_size_mb came in 1.10, expandable_segments in 2.1)"
        }
    }
}

/// The sentences for the cause, most important first.
fn cause_advice(e: &OomEvent, max_split_hint: bool) -> Vec<String> {
    let n = &e.numbers;
    let requested = n.requested.unwrap_or_default();
    let mut out = Vec::new();
    match e.cause {
        Cause::LargerThanCard => out.push(format!(
            "this one allocation asks for {}, more than the whole card ({}): no freeing can help; \
             make the job smaller (resolution, batch, frames), decode in tiles, offload to the CPU \
             or use a quantised model",
            fmt(requested),
            fmt(n.total.unwrap_or_default())
        )),
        Cause::MemoryLimit => {
            let limit = fmt(n.limit.unwrap_or_default());
            out.push(match e.kind {
                OomKind::OnnxRuntime => format!(
                    "onnxruntime's memory arena is capped at {limit} and this request ({}) does \
                     not fit under it: raise the cap (the CUDA provider's gpu_mem_limit) or \
                     process less at once",
                    fmt(requested)
                ),
                _ => format!(
                    "a memory limit of {limit}{} stopped it, not the card: the program (or its \
                     launcher) set torch.cuda.set_per_process_memory_fraction; raise or remove it",
                    n.total
                        .map(|t| format!(" (below the card's {})", fmt(t)))
                        .unwrap_or_default()
                ),
            });
        }
        Cause::OtherProcesses => {
            if n.others.is_empty() {
                out.push(format!(
                    "{} was held outside this process's PyTorch cache (other programs and CUDA \
                     contexts): close other GPU programs, or release their cache with Free VRAM",
                    fmt(outside(n).unwrap_or_default())
                ));
            } else {
                let list: Vec<String> = n
                    .others
                    .iter()
                    .map(|o| format!("pid {} held {}", o.pid, fmt(o.used)))
                    .collect();
                let total: u64 = n.others.iter().fold(0, |s, o| s.saturating_add(o.used.0));
                out.push(format!(
                    "other processes held {} of the card ({}): close them, or release their \
                     cached memory with Free VRAM{}",
                    fmt(Bytes(total)),
                    list.join(", "),
                    n.process_in_use
                        .map(|p| format!("; this process itself held {}", fmt(p)))
                        .unwrap_or_default()
                ));
            }
        }
        Cause::Fragmentation => out.push(format!(
            "fragmentation: PyTorch held {} reserved but unallocated, more than the {} asked for, \
             but not in one piece; {}",
            fmt(unallocated(n).unwrap_or_default()),
            fmt(requested),
            fragmentation_fix(e.era, max_split_hint)
        )),
        Cause::FreeButFailed => out.push(format!(
            "{} was free, more than the {} asked for, when it failed: another process allocated \
             at the same moment, or the driver's memory was fragmented; run jobs one at a time \
             and retry",
            fmt(n.free.unwrap_or_default()),
            fmt(requested)
        )),
        Cause::OwnTensors => out.push(match (n.allocated, n.total) {
            (Some(a), Some(t)) => format!(
                "this process's own tensors held {} of the {} card: the job itself is too big \
                 for it",
                fmt(a),
                fmt(t)
            ),
            _ => "the card was already full when this library needed its workspace: the job \
                  itself (or another program) filled it"
                .to_string(),
        }),
        Cause::RuntimeAllocation => out.push(
            "the CUDA runtime itself could not allocate, often when a process starts its CUDA \
             context (about 0.5 GiB) on a card another program has filled: close other GPU \
             programs or free their cache with Free VRAM"
                .into(),
        ),
        Cause::AfterOverflow => out.push(
            "often the aftermath of running out of memory: fix an earlier out-of-memory first; \
             otherwise rerun with CUDA_LAUNCH_BLOCKING=1 to find the kernel"
                .into(),
        ),
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
            Some(safe) if safe < size => out.push(format!(
                "{name}: use size {safe} instead of {size} (the largest safe size on a {card} card)"
            )),
            Some(_) => out.push(format!(
                "{name} at size {size} fits a {card} card: something else held memory"
            )),
            None => out.push(format!(
                "{name}: even the smallest measured size does not fit a {card} card"
            )),
        },
        (Detail::Batch(b), _, Some(batch)) => match b.largest_safe {
            Some(safe) if safe < batch => out.push(format!(
                "{name}: process {safe} frames at once instead of {batch} \
                 (--execution-thread-count {safe}), or use --video-memory-strategy strict"
            )),
            _ => out.push(facefusion_generic(name)),
        },
        (Detail::Batch(_), _, None) => out.push(facefusion_generic(name)),
        _ if a.fit != Fit::Fits => out.push(format!(
            "{name} needs about {} at its peak: {}",
            fmt(Bytes::from_mib(a.peak_mib)),
            a.fallback.clone().unwrap_or_default()
        )),
        _ => {
            let catalogue_peak = Bytes::from_mib(a.peak_mib);
            match held {
                // The run itself held far more than the preset's peak: its settings differ.
                Some(h) if h.0 > catalogue_peak.0 / 10 * 11 => out.push(format!(
                    "this run held {}, more than the {} {name} peaks at: check resolution, frames and batch",
                    fmt(h),
                    fmt(catalogue_peak)
                )),
                _ => out.push(format!("{name} fits a {card} card: something else held memory")),
            }
        }
    }
    out
}

/// FaceFusion's own options that lower its VRAM (checked against FaceFusion 3.8's program.py).
fn facefusion_generic(name: &str) -> String {
    format!(
        "{name}: lower --execution-thread-count (frames processed at once; default 8), use \
         --video-memory-strategy strict, a smaller --face-swapper-pixel-boost, or an _fp16 \
         model such as inswapper_128_fp16"
    )
}

/// Generic change when the workload is unknown, by what failed.
fn generic_change(kind: OomKind, n: &Numbers) -> &'static str {
    match kind {
        // The async backend is ComfyUI's default; 2.3-2.5 printed no numbers at all.
        OomKind::TorchAsync if n.requested.is_none() => {
            "lower resolution, batch or frames; in ComfyUI start with --lowvram (or \
             --reserve-vram 1) to keep headroom, and with --disable-cuda-malloc PyTorch's next \
             message will say how much was asked for and how much was free"
        }
        OomKind::TorchAsync => {
            "lower resolution, batch or frames, decode in tiles (VAE Decode (Tiled)); in ComfyUI \
             start with --lowvram to offload model weights to system RAM"
        }
        OomKind::OnnxRuntime => {
            "process less at once (FaceFusion: lower --execution-thread-count or use \
             --video-memory-strategy strict), or cap onnxruntime's arena with the CUDA \
             provider's gpu_mem_limit"
        }
        _ => {
            "lower resolution, batch or frames, decode in tiles, offload to the CPU or use a \
              quantised model"
        }
    }
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
    // Freeing other programs' memory is the change; the workload itself may be fine.
    let workload_matters = !matches!(
        e.cause,
        Cause::OtherProcesses | Cause::RuntimeAllocation | Cause::AfterOverflow
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
                        advice.extend(workload_advice(&preset.name, &a, w, total, held));
                    }
                }
                None => match (&preset.shape, w.batch) {
                    (Shape::Batched { max_batch, .. }, Some(batch)) if batch > *max_batch => advice
                        .push(format!(
                            "{}: process {max_batch} frames at once or fewer instead of {batch} \
                             (--execution-thread-count {max_batch})",
                            preset.name
                        )),
                    (Shape::Batched { .. }, _) => advice.push(facefusion_generic(&preset.name)),
                    _ => {}
                },
            }
        }
    } else if matches!(e.cause, Cause::OwnTensors | Cause::Unknown) {
        advice.push(generic_change(e.kind, n).to_string());
    }
    if let (Some(req), Some(free), Some(total)) = (n.requested, n.free, n.total) {
        advice.push(format!(
            "needed {} with {} free at {} total",
            fmt(req),
            fmt(free),
            fmt(total)
        ));
    }
    advice
}
