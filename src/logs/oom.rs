//! Finds CUDA out-of-memory events in any log (ComfyUI console, WebUI logs, PyTorch tracebacks,
//! onnxruntime) and says, with the numbers, what to change.
//!
//! Formats understood: PyTorch 1.0 ("… cached"), 1.x ("; … reserved in total by PyTorch"), the
//! comma variant some WebUIs print, 2.1 ("total capacty of … Including non-PyTorch memory …"),
//! 2.3+ ("GPU 0 has a total capacity of … Process N has … in use …"), ComfyUI's "Allocation on
//! device", and the related failures: `CUDA error: out of memory`, illegal memory access after an
//! overflow, cuBLAS workspace allocation, onnxruntime's BFC arena and CUDA allocator.

use super::lines::LogLines;
use crate::units::{Bytes, MemoryUnit};
use crate::workloads::advisor::{self, Budget, DEFAULT_MARGIN_PERCENT, Detail, Fit};
use crate::workloads::calibration::Calibration;
use crate::workloads::catalogue::Catalogue;
use regex::Regex;
use std::sync::OnceLock;

/// What failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OomKind {
    /// PyTorch's allocator ran out (`CUDA out of memory`, `OutOfMemoryError`).
    Torch,
    /// The CUDA runtime itself (`CUDA error: out of memory`).
    CudaError,
    /// `an illegal memory access was encountered`, which often follows an overflow.
    IllegalAccess,
    /// cuBLAS could not allocate its workspace.
    Cublas,
    /// onnxruntime's arena or CUDA allocator failed (FaceFusion and other ONNX apps).
    OnnxRuntime,
}

impl OomKind {
    /// Short description.
    pub fn label(self) -> &'static str {
        match self {
            OomKind::Torch => "PyTorch CUDA out of memory",
            OomKind::CudaError => "CUDA error: out of memory",
            OomKind::IllegalAccess => "illegal memory access",
            OomKind::Cublas => "cuBLAS allocation failed",
            OomKind::OnnxRuntime => "onnxruntime allocation failed",
        }
    }
}

/// A workload recognised from the lines around an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recognised {
    /// Preset id.
    pub preset_id: String,
    /// Input size, when the log says.
    pub size: Option<u32>,
    /// Batch, when the log says.
    pub batch: Option<u32>,
    /// Settings in the log the seed articles warn about.
    pub hints: Vec<String>,
}

/// One failure found in the log, with its numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct OomEvent {
    /// 1-based line number (of its first occurrence).
    pub line: usize,
    /// How many more times the same failure, with the same numbers, appeared later (a job
    /// that retried); such repeats are counted, not kept.
    pub repeats: u64,
    /// What failed.
    pub kind: OomKind,
    /// The line itself, trimmed.
    pub text: String,
    /// Bytes the failing allocation asked for.
    pub requested: Option<Bytes>,
    /// GPU index.
    pub gpu: Option<u32>,
    /// The card's capacity.
    pub total: Option<Bytes>,
    /// Free when it failed.
    pub free: Option<Bytes>,
    /// Allocated by PyTorch tensors.
    pub allocated: Option<Bytes>,
    /// Reserved by PyTorch in total (allocated + cached).
    pub reserved: Option<Bytes>,
    /// Memory the failing process held, all of it.
    pub process_in_use: Option<Bytes>,
    /// Reserved but unallocated memory large enough to suspect fragmentation.
    pub fragmentation: bool,
    /// The workload, when recognised.
    pub workload: Option<Recognised>,
    /// What to change, most useful first.
    pub advice: Vec<String>,
}

/// The result of reading a whole log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Analysis {
    /// Distinct events in file order, at most [`MAX_EVENTS`].
    pub events: Vec<OomEvent>,
    /// Lines read.
    pub lines: usize,
    /// Distinct events past [`MAX_EVENTS`], counted but not kept.
    pub more_events: u64,
    /// Lines longer than the reader keeps, cut.
    pub cut_lines: usize,
}

impl Analysis {
    /// Every event found, repeats included.
    pub fn total_events(&self) -> u64 {
        self.events
            .iter()
            .map(|e| e.repeats.saturating_add(1))
            .fold(self.more_events, u64::saturating_add)
    }
}

/// Most distinct events kept from one log (memory stays bounded on any log).
pub const MAX_EVENTS: usize = 500;
/// Lines before an event searched for the workload that ran.
const CONTEXT_LINES: usize = 60;
/// Lines after an event's first line that belong to its message (messages get wrapped).
const FOLLOWING_LINES: usize = 2;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern}: {e}"))
}

const SIZE: &str = r"([0-9]+(?:\.[0-9]+)?) ?(GiB|MiB|KiB|GB|MB|KB|bytes|B)\b";

struct Patterns {
    requested: Regex,
    gpu: Regex,
    total: Regex,
    free: Regex,
    allocated: Regex,
    reserved_total: Regex,
    reserved_unallocated: Regex,
    in_use: Regex,
    onnx_buffer: Regex,
    onnx_gpu: Regex,
    ddcolor_size: Regex,
    batch: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        requested: re(&format!(r"(?i)tried to allocate {SIZE}")),
        gpu: re(r"GPU (\d+)"),
        total: re(&format!(
            r"(?i)(?:{SIZE} total capacity|total capac(?:i)?ty of {SIZE})"
        )),
        free: re(&format!(r"(?i)(?:of which {SIZE} is free|{SIZE} free)")),
        allocated: re(&format!(
            r"(?i)(?:{SIZE} already allocated|{SIZE} is allocated by PyTorch)"
        )),
        reserved_total: re(&format!(
            r"(?i)(?:{SIZE} reserved in total by PyTorch|{SIZE} cached)"
        )),
        reserved_unallocated: re(&format!(
            r"(?i){SIZE} is reserved by PyTorch but unallocated"
        )),
        in_use: re(&format!(
            r"(?i)(?:Process \d+|this process) has {SIZE} memory in use"
        )),
        onnx_buffer: re(r"requested buffer of size (\d+)"),
        onnx_gpu: re(r"GPU=(\d+)"),
        ddcolor_size: re(r"(?i)\bsize\s*[=:]\s*(\d{3,4})\b"),
        batch: re(r"(?i)\bbatch(?:_size)?\s*[=: ]\s*(\d{1,3})\b"),
    })
}

fn unit_bytes(unit: &str) -> f64 {
    match unit {
        "GiB" | "GB" => (1u64 << 30) as f64,
        "MiB" | "MB" => (1u64 << 20) as f64,
        "KiB" | "KB" => 1024.0,
        _ => 1.0,
    }
}

/// The first size any alternative of `pattern` captured, as bytes.
fn size_in(pattern: &Regex, text: &str) -> Option<Bytes> {
    let caps = pattern.captures(text)?;
    let mut groups = caps.iter().skip(1).flatten().map(|m| m.as_str());
    // Alternatives each capture (number, unit); take the first pair that matched.
    let number: f64 = groups.next()?.parse().ok()?;
    let unit = groups.next()?;
    Some(Bytes((number * unit_bytes(unit)) as u64))
}

fn classify(line: &str) -> Option<OomKind> {
    if line.contains("CUDA error: out of memory") {
        Some(OomKind::CudaError)
    } else if line.contains("CUDA out of memory") || line.contains("OutOfMemoryError") {
        Some(OomKind::Torch)
    } else if line.contains("illegal memory access") {
        Some(OomKind::IllegalAccess)
    } else if line.contains("CUBLAS_STATUS_ALLOC_FAILED") {
        Some(OomKind::Cublas)
    } else if line.contains("Failed to allocate memory for requested buffer")
        || line.contains("CUDA failure 2: out of memory")
    {
        Some(OomKind::OnnxRuntime)
    } else {
        None
    }
}

/// Reads a whole log held in memory. Never fails: unreadable parts are simply not events.
pub fn analyze(text: &str, catalogue: &Catalogue, calibration: &Calibration) -> Analysis {
    let mut analyzer = Analyzer::new(catalogue, calibration);
    let mut lines = LogLines::from_text(text);
    while let Ok(Some(line)) = lines.next_line() {
        analyzer.feed(&line);
    }
    analyzer.finish(lines.cut_lines)
}

/// Reads a log from a file or pipe, one bounded line at a time (UTF-8 or UTF-16, CRLF, colour
/// codes). Memory stays bounded whatever the size: the last lines for context and at most
/// [`MAX_EVENTS`] distinct events.
pub fn analyze_reader(
    source: impl std::io::Read + Send + 'static,
    catalogue: &Catalogue,
    calibration: &Calibration,
) -> std::io::Result<Analysis> {
    let mut analyzer = Analyzer::new(catalogue, calibration);
    let mut lines = LogLines::new(source)?;
    while let Some(line) = lines.next_line()? {
        analyzer.feed(&line);
    }
    Ok(analyzer.finish(lines.cut_lines))
}

/// An event whose message may continue on the next lines.
struct Open {
    kind: OomKind,
    line_no: usize,
    line: String,
    context: String,
    following: Vec<String>,
}

/// The streaming analyser: feed it lines, then finish.
pub struct Analyzer<'a> {
    catalogue: &'a Catalogue,
    calibration: &'a Calibration,
    recent: std::collections::VecDeque<String>,
    open: Vec<Open>,
    seen: std::collections::HashMap<String, usize>,
    analysis: Analysis,
}

impl<'a> Analyzer<'a> {
    /// An analyser that advises with `catalogue` and `calibration`.
    pub fn new(catalogue: &'a Catalogue, calibration: &'a Calibration) -> Self {
        Analyzer {
            catalogue,
            calibration,
            recent: Default::default(),
            open: Vec::new(),
            seen: Default::default(),
            analysis: Analysis::default(),
        }
    }

    /// Reads the next line.
    pub fn feed(&mut self, line: &str) {
        self.analysis.lines += 1;
        for open in &mut self.open {
            open.following.push(line.to_string());
        }
        let (done, still): (Vec<Open>, Vec<Open>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|o| o.following.len() >= FOLLOWING_LINES);
        self.open = still;
        for open in done {
            self.close(open);
        }
        if let Some(kind) = classify(line) {
            let mut context = self.recent.iter().cloned().collect::<Vec<_>>().join("\n");
            context.push('\n');
            context.push_str(line);
            self.open.push(Open {
                kind,
                line_no: self.analysis.lines,
                line: line.to_string(),
                context,
                following: Vec::new(),
            });
        }
        self.recent.push_back(line.to_string());
        if self.recent.len() > CONTEXT_LINES {
            self.recent.pop_front();
        }
    }

    /// Ends the log: events still waiting for more lines are read as they are.
    pub fn finish(mut self, cut_lines: usize) -> Analysis {
        for open in std::mem::take(&mut self.open) {
            self.close(open);
        }
        self.analysis.cut_lines = cut_lines;
        self.analysis
    }

    fn close(&mut self, open: Open) {
        let mut message = open.line.clone();
        for l in &open.following {
            message.push(' ');
            message.push_str(l);
        }
        let mut event = numbers(open.kind, open.line_no, &open.line, &message);
        // The same failure with the same numbers is one event seen again (a retrying job):
        // counted before the costlier reading of its context.
        let key = format!(
            "{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            event.kind,
            event.text,
            event.requested,
            event.total,
            event.free,
            event.allocated,
            event.reserved,
            event.process_in_use
        );
        if let Some(&i) = self.seen.get(&key) {
            let first = &mut self.analysis.events[i];
            first.repeats = first.repeats.saturating_add(1);
        } else if self.analysis.events.len() < MAX_EVENTS {
            event.workload = recognise(&open.context, self.catalogue);
            event.advice = advise(&event, self.catalogue, self.calibration);
            self.seen.insert(key, self.analysis.events.len());
            self.analysis.events.push(event);
        } else {
            self.analysis.more_events = self.analysis.more_events.saturating_add(1);
        }
    }
}

fn numbers(kind: OomKind, line_no: usize, line: &str, message: &str) -> OomEvent {
    let p = patterns();
    let mut e = OomEvent {
        line: line_no,
        repeats: 0,
        kind,
        // The line came from a file anyone may have written: no escape reaches a terminal.
        text: crate::text::sanitized(&line.trim().chars().take(400).collect::<String>()),
        requested: size_in(&p.requested, message),
        gpu: p
            .gpu
            .captures(message)
            .or_else(|| p.onnx_gpu.captures(message))
            .and_then(|c| c[1].parse().ok()),
        total: size_in(&p.total, message),
        free: size_in(&p.free, message),
        allocated: size_in(&p.allocated, message),
        reserved: size_in(&p.reserved_total, message),
        process_in_use: size_in(&p.in_use, message),
        fragmentation: false,
        workload: None,
        advice: Vec::new(),
    };
    if kind == OomKind::OnnxRuntime && e.requested.is_none() {
        e.requested = p
            .onnx_buffer
            .captures(message)
            .and_then(|c| c[1].parse().ok())
            .map(Bytes);
    }
    if let (None, Some(unallocated)) = (e.reserved, size_in(&p.reserved_unallocated, message)) {
        // Numbers from a log are untrusted: a sum must not wrap.
        e.reserved = Some(Bytes(
            e.allocated
                .unwrap_or_default()
                .0
                .saturating_add(unallocated.0),
        ));
    }
    if let (Some(reserved), Some(allocated)) = (e.reserved, e.allocated) {
        let unallocated = reserved.saturating_sub(allocated);
        let asked = e.requested.unwrap_or_default();
        // Cached blocks bigger than the request, yet no block fit it: the cache is fragmented.
        e.fragmentation = unallocated.0 >= 128 << 20 && unallocated >= asked;
    }
    e
}

fn recognise(context: &str, catalogue: &Catalogue) -> Option<Recognised> {
    let p = patterns();
    let lower = context.to_lowercase();
    let mut hints = Vec::new();
    let last_number = |re: &Regex| {
        re.captures_iter(context)
            .last()
            .and_then(|c| c[1].parse::<u32>().ok())
    };
    let id = if lower.contains("ddcolor") {
        "ddcolor".to_string()
    } else if lower.contains("facefusion") {
        "facefusion-fp16".to_string()
    } else if (lower.contains("wan2.1") || lower.contains("wan2.2") || lower.contains("wan 2."))
        // Without the model size the preset would be a guess: say nothing rather than mislead.
        && (lower.contains("14b") || lower.contains("1.3b"))
    {
        let i2v = lower.contains("i2v") || lower.contains("a14b");
        let big = lower.contains("14b");
        let hd = lower.contains("720p") || lower.contains("height=720");
        let unquantised = lower.contains("quant_linear=false");
        if big && hd {
            hints.push("720p on a 14B model: drop to 480p or render fewer frames".to_string());
        }
        match (i2v, big, hd, unquantised) {
            (true, ..) => "wan22-i2v-a14b",
            (false, true, _, true) => "wan21-t2v-14b-480p",
            (false, true, ..) => "wan21-t2v-14b-480p-quant",
            (false, false, true, _) => "wan21-t2v-1.3b-720p",
            _ => "wan21-t2v-1.3b-480p",
        }
        .to_string()
    } else {
        return None;
    };
    catalogue.get(&id)?;
    Some(Recognised {
        preset_id: id,
        size: last_number(&p.ddcolor_size),
        batch: last_number(&p.batch),
        hints,
    })
}

fn fmt(b: Bytes) -> String {
    if b.0 >= 1 << 30 {
        MemoryUnit::GiB.format(b)
    } else {
        MemoryUnit::MiB.format(b)
    }
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
                "{name}: use batch {safe} instead of {batch}, with --fp16"
            )),
            _ => out.push(format!("{name}: use --fp16 and a smaller batch")),
        },
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

fn advise(e: &OomEvent, catalogue: &Catalogue, calibration: &Calibration) -> Vec<String> {
    let mut advice = Vec::new();
    // The workload first: it is the most specific thing to change.
    if let Some(w) = &e.workload {
        advice.extend(w.hints.iter().cloned());
    }
    if let Some(w) = &e.workload
        && let Some(preset) = catalogue.get(&w.preset_id)
    {
        match e.total {
            Some(total) => {
                let budget = Budget::new(total, total, DEFAULT_MARGIN_PERCENT);
                if let Some(a) = advisor::advise(catalogue, &budget, calibration)
                    .into_iter()
                    .find(|a| a.id == preset.id)
                {
                    let held = e.process_in_use.or(e.reserved);
                    advice.extend(workload_advice(&preset.name, &a, w, total, held));
                }
            }
            None => {
                if let (crate::workloads::catalogue::Shape::Batched { max_batch, .. }, Some(batch)) =
                    (&preset.shape, w.batch)
                    && batch > *max_batch
                {
                    advice.push(format!(
                        "{}: use batch {max_batch} or less instead of {batch}, with --fp16",
                        preset.name
                    ));
                }
            }
        }
    }
    if let (Some(req), Some(free), Some(total)) = (e.requested, e.free, e.total) {
        advice.push(format!(
            "needed {} with {} free at {} total",
            fmt(req),
            fmt(free),
            fmt(total)
        ));
    }
    if let (Some(total), Some(free)) = (e.total, e.free) {
        let used = total.saturating_sub(free);
        if let Some(process) = e.process_in_use {
            // New messages say what the failing process held in all: the rest is others'.
            let others = used.saturating_sub(process);
            if others.0 >= 1 << 30 {
                advice.push(format!(
                    "other processes held {}: close them, or release their cache with Free VRAM",
                    fmt(others)
                ));
            }
        } else if let Some(reserved) = e.reserved {
            // Old messages only give PyTorch's share; the CUDA context alone is ~0.5-1 GiB.
            let outside = used.saturating_sub(reserved);
            if outside.0 >= 3 << 29 {
                advice.push(format!(
                    "{} was held outside PyTorch's cache (the CUDA context and other programs): close other GPU programs",
                    fmt(outside)
                ));
            }
        }
    }
    if e.fragmentation {
        let unallocated = e
            .reserved
            .unwrap_or_default()
            .saturating_sub(e.allocated.unwrap_or_default());
        advice.push(format!(
            "fragmentation: PyTorch held {} reserved but unallocated (more than the {} asked for); set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True",
            fmt(unallocated),
            fmt(e.requested.unwrap_or_default())
        ));
    }
    match e.kind {
        OomKind::IllegalAccess => advice.push(
            "often the aftermath of running out of memory: fix an earlier out-of-memory first; otherwise rerun with CUDA_LAUNCH_BLOCKING=1 to find the kernel".into(),
        ),
        OomKind::CudaError => advice.push(
            "the CUDA runtime itself could not allocate: close other GPU programs, lower resolution or batch".into(),
        ),
        OomKind::Cublas => advice.push(
            "cuBLAS could not allocate its workspace: the GPU was already full before this layer ran".into(),
        ),
        OomKind::OnnxRuntime => advice.push(
            "onnxruntime could not allocate: lower the batch (FaceFusion: --fp16 halves memory), or cap its arena with the CUDA provider's gpu_mem_limit".into(),
        ),
        OomKind::Torch if advice.is_empty() => advice.push(
            "lower resolution or batch, run jobs one at a time, or release cached VRAM first".into(),
        ),
        OomKind::Torch => {}
    }
    advice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Analysis {
        analyze(text, &Catalogue::load(None), &Calibration::default())
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..300 {
            let len = (round * 37) % 2_000;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if round % 3 == 0 {
                text.push_str("CUDA out of memory. Tried to allocate 99999999999999999999 GiB (GPU 4294967296");
            }
            let _ = run(&text);
        }
    }
}
