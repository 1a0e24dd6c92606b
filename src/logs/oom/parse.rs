//! Reading one out-of-memory message: which producer printed it, in which era's format, and
//! its numbers. Every format here was read from the code that prints it:
//!
//! - PyTorch 1.0–1.3 (`c10/cuda/CUDACachingAllocator.cpp`, `THCCachingAllocator`):
//!   `CUDA out of memory. Tried to allocate R (GPU n; T total capacity; A already allocated;
//!   F free; C cached)`, where "cached" is `amount_cached - amount_allocated`: memory the
//!   allocator holds but no tensor uses. Reserved is therefore A + C.
//! - PyTorch 1.4–2.0: `… F free; [L allowed; ]R reserved in total by PyTorch)`, from 1.10 on
//!   followed by a `max_split_size_mb` hint.
//! - PyTorch 2.1+: `Tried to allocate R. GPU n has a total capacity of T of which F is free.
//!   [Process p has X memory in use. …] Including non-PyTorch memory, this process has P memory
//!   in use. [L allowed; ]Of the allocated memory A is allocated by PyTorch, [with P allocated in
//!   private pools (e.g., CUDA Graphs), ]and U is reserved by PyTorch but unallocated.` (2.1
//!   spells it "capacty"; other processes may come before or after this process; A includes
//!   P, so reserved is A + U). `expandable_segments` exists from 2.1 on.
//! - PyTorch's cudaMallocAsync backend (ComfyUI turns it on): `Allocation on device n would
//!   exceed allowed memory. (out of memory)` then `Currently allocated : A`, `Requested : R`,
//!   `Device limit : T`, `Free (according to CUDA): F`, `PyTorch limit (set by user-supplied
//!   memory fraction)` with the limit on the next line.
//! - CUDA runtime errors through PyTorch: `CUDA error: out of memory` (RuntimeError, from 2.8
//!   `torch.AcceleratorError`), `CUBLAS_STATUS_ALLOC_FAILED`, `CUDNN_STATUS_ALLOC_FAILED`.
//! - onnxruntime (`bfc_arena.cc`, `cuda_call.cc`): `Failed to allocate memory for requested
//!   buffer of size N`, `Available memory of L is smaller than requested bytes of N`, and
//!   `CUDA failure 2: out of memory ; GPU=n ; hostname=… ; expr=cudaMalloc(…)`; its cuBLAS
//!   and cuDNN failures carry the same `; GPU=n ;`.
//! - ggml (llama.cpp, Ollama's runners; `ggml-cuda.cu`, `ggml-alloc.c`, llama.cpp's
//!   `llama-model.cpp`, `llama-kv-cache.cpp`, `llama-context.cpp`): `<fn>: allocating X MiB on
//!   device D: cudaMalloc failed: out of memory`, then `<fn>: failed to allocate CUDA0 buffer
//!   of size N` (ROCm0 under ROCm, where the source is the same file through hipify), `unable
//!   to allocate CUDA0 buffer`, `failed to allocate buffer for kv cache`, `failed to allocate
//!   compute buffers`; Ollama's journald copies carry `host ollama[pid]:` before each.
//! - vLLM: its cumem allocator (`csrc/cumem_allocator.cpp`, sleep mode) prints `CUDA Error: out
//!   of memory at <file>:<line>`; each worker process prefixes its lines with `(VllmWorker
//!   rank=N pid=P)` or `(EngineCore_DP0 pid=P)`, and a failure on two ranks is two failures.
//! - XLA (JAX, TensorFlow; `xla/tsl/framework/bfc_allocator.cc`): `Allocator (GPU_0_bfc) ran
//!   out of memory trying to allocate 16.00GiB (rounded to 17179869184)`, a `Stats:` summary
//!   with `Limit:` and `InUse:`, and `RESOURCE_EXHAUSTED: Out of memory while trying to
//!   allocate N bytes`. The same warning ending "The caller indicates that this is not a
//!   failure" is not one.
//! - PyTorch on Apple (`aten/src/ATen/mps/MPSAllocator.mm`): `MPS backend out of memory (MPS
//!   allocated: A, other allocations: O, max allowed: M). Tried to allocate R on private
//!   pool.`; "max allowed" is the high-watermark limit, not a card.
//! - PyTorch on ROCm (`HIPCachingAllocator`, hipified from the CUDA one): `HIP out of memory.`
//!   with the 2.1+ figures.
//! - ComfyUI's Dynamic VRAM (comfy-aimdo, `vbar.c`/`pyt-cu-plug-alloc.c`): `VRAM Allocation
//!   failed (non OOM)` and `VBAR allocation failed` are failures to map memory, not an
//!   out-of-memory.

use crate::units::Bytes;
use regex::Regex;
use std::sync::OnceLock;

/// What failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OomKind {
    /// PyTorch's caching allocator ran out (`CUDA out of memory`, `OutOfMemoryError`).
    Torch,
    /// PyTorch's cudaMallocAsync backend ran out (ComfyUI's default on recent cards).
    TorchAsync,
    /// The CUDA runtime itself (`CUDA error: out of memory`).
    CudaError,
    /// `an illegal memory access was encountered`, which often follows an overflow.
    IllegalAccess,
    /// cuBLAS could not allocate its workspace.
    Cublas,
    /// cuDNN could not allocate.
    Cudnn,
    /// onnxruntime's arena or CUDA allocator failed (FaceFusion and other ONNX apps).
    OnnxRuntime,
    /// ggml's CUDA/ROCm buffer could not be allocated (llama.cpp, Ollama).
    Ggml,
    /// vLLM's cumem allocator (sleep mode) got no memory from the driver.
    VllmCumem,
    /// XLA's BFC allocator ran out (JAX, TensorFlow).
    Xla,
    /// PyTorch's MPS allocator hit its high watermark (Apple).
    Mps,
    /// PyTorch's HIP caching allocator ran out (ROCm).
    Hip,
    /// comfy-aimdo could not map memory: not an out-of-memory.
    AimdoNotOom,
}

impl OomKind {
    /// Short description.
    pub fn label(self) -> &'static str {
        match self {
            OomKind::Torch => "PyTorch CUDA out of memory",
            OomKind::TorchAsync => "PyTorch CUDA out of memory (cudaMallocAsync)",
            OomKind::CudaError => "CUDA error: out of memory",
            OomKind::IllegalAccess => "illegal memory access",
            OomKind::Cublas => "cuBLAS allocation failed",
            OomKind::Cudnn => "cuDNN allocation failed",
            OomKind::OnnxRuntime => "onnxruntime allocation failed",
            OomKind::Ggml => "ggml buffer allocation failed",
            OomKind::VllmCumem => "vLLM cumem allocation failed",
            OomKind::Xla => "XLA out of memory",
            OomKind::Mps => "PyTorch MPS out of memory",
            OomKind::Hip => "PyTorch HIP out of memory",
            OomKind::AimdoNotOom => "Dynamic VRAM mapping failed (not OOM)",
        }
    }

    /// The description in the user's language.
    pub fn text(self) -> String {
        match self {
            OomKind::Torch => crate::t!("oom-kind-torch"),
            OomKind::TorchAsync => crate::t!("oom-kind-torch-async"),
            OomKind::CudaError => crate::t!("oom-kind-cuda-error"),
            OomKind::IllegalAccess => crate::t!("oom-kind-illegal-access"),
            OomKind::Cublas => crate::t!("oom-kind-cublas"),
            OomKind::Cudnn => crate::t!("oom-kind-cudnn"),
            OomKind::OnnxRuntime => crate::t!("oom-kind-onnxruntime"),
            OomKind::Ggml => crate::t!("oom-kind-ggml"),
            OomKind::VllmCumem => crate::t!("oom-kind-vllm-cumem"),
            OomKind::Xla => crate::t!("oom-kind-xla"),
            OomKind::Mps => crate::t!("oom-kind-mps"),
            OomKind::Hip => crate::t!("oom-kind-hip"),
            OomKind::AimdoNotOom => crate::t!("oom-kind-aimdo"),
        }
    }

    /// Stable name for JSON.
    pub fn id(self) -> &'static str {
        match self {
            OomKind::Torch => "torch",
            OomKind::TorchAsync => "torch_async",
            OomKind::CudaError => "cuda_error",
            OomKind::IllegalAccess => "illegal_access",
            OomKind::Cublas => "cublas",
            OomKind::Cudnn => "cudnn",
            OomKind::OnnxRuntime => "onnxruntime",
            OomKind::Ggml => "ggml",
            OomKind::VllmCumem => "vllm_cumem",
            OomKind::Xla => "xla",
            OomKind::Mps => "mps",
            OomKind::Hip => "hip",
            OomKind::AimdoNotOom => "aimdo_not_oom",
        }
    }
}

/// Which format a PyTorch message has, which tells the PyTorch version's era.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Era {
    /// 1.0–1.3: "… C cached)" (cached = reserved but unallocated).
    Torch10,
    /// 1.4–2.0: "… R reserved in total by PyTorch)".
    Torch14,
    /// 2.1 and later: "GPU n has a total capacity of …".
    Torch21,
    /// The cudaMallocAsync backend (2.0 and later).
    Async,
    /// Not a PyTorch allocator message, or too little of it to tell.
    Unknown,
}

impl Era {
    /// Stable name for JSON.
    pub fn id(self) -> &'static str {
        match self {
            Era::Torch10 => "pytorch_1.0-1.3",
            Era::Torch14 => "pytorch_1.4-2.0",
            Era::Torch21 => "pytorch_2.1+",
            Era::Async => "pytorch_cudaMallocAsync",
            Era::Unknown => "unknown",
        }
    }
}

/// Another process holding memory, as PyTorch 2.1+ lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OtherProcess {
    /// Its pid (in the failing process's pid namespace).
    pub pid: u32,
    /// Memory it held on the GPU.
    pub used: Bytes,
}

/// The numbers a message carried; `None` where it did not say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Numbers {
    /// Bytes the failing allocation asked for.
    pub requested: Option<Bytes>,
    /// GPU index.
    pub gpu: Option<u32>,
    /// The card's capacity.
    pub total: Option<Bytes>,
    /// Free when it failed.
    pub free: Option<Bytes>,
    /// Allocated by PyTorch tensors (this process).
    pub allocated: Option<Bytes>,
    /// Reserved by PyTorch in total (allocated + cached), this process.
    pub reserved: Option<Bytes>,
    /// Everything the failing process held on the GPU (PyTorch 2.1+: "this process has").
    pub process_in_use: Option<Bytes>,
    /// Other processes and what they held (PyTorch 2.1+).
    pub others: Vec<OtherProcess>,
    /// A limit below the card's capacity (a memory fraction, an arena cap).
    pub limit: Option<Bytes>,
    /// Of `allocated`, what sits in private pools (CUDA Graphs), when PyTorch says.
    pub private_pools: Option<Bytes>,
    /// In a container the driver lists the failing process under its host pid, not as "this
    /// process": the listed pid whose memory matches what PyTorch reserved, when there is one.
    pub self_listed_as: Option<u32>,
    /// The worker rank that failed (vLLM's tensor-parallel workers), when the line says.
    pub rank: Option<u32>,
    /// Memory held outside PyTorch's MPS heaps ("other allocations": Metal, the system).
    pub other_allocations: Option<Bytes>,
}

/// True when `line` has `needle` as a message, not quoted in code (a traceback shows source
/// lines such as `except torch.OutOfMemoryError:` or `if "CUDA out of memory" in str(e)`).
fn says(line: &str, needle: &str) -> bool {
    line.match_indices(needle).any(|(at, _)| {
        let quoted = line[..at].ends_with(['"', '\'']);
        let code = line.trim_start().starts_with("except ");
        !quoted && !code
    })
}

/// How a line starts a failure, if it does.
pub fn classify(line: &str) -> Option<OomKind> {
    // PyTorch 2.3-2.5's cudaMallocAsync message was just "Allocation on device " (seen in
    // ComfyUI's error reports of that time); later ones add "N would exceed allowed memory".
    if let Some(kind) = classify_other_stacks(line) {
        Some(kind)
    } else if says(line, "Allocation on device") {
        Some(OomKind::TorchAsync)
    } else if says(line, "CUDA error: out of memory") {
        Some(OomKind::CudaError)
    } else if says(line, "CUDA out of memory") || says(line, "OutOfMemoryError: ") {
        Some(OomKind::Torch)
    } else if says(line, "an illegal memory access was encountered") {
        Some(OomKind::IllegalAccess)
    } else if says(line, "CUBLAS_STATUS_ALLOC_FAILED") {
        Some(OomKind::Cublas)
    } else if says(line, "CUDNN_STATUS_ALLOC_FAILED") {
        Some(OomKind::Cudnn)
    } else if says(line, "Failed to allocate memory for requested buffer")
        || says(line, "is smaller than requested bytes of")
        || says(line, "CUDA failure 2: out of memory")
    {
        Some(OomKind::OnnxRuntime)
    } else {
        None
    }
}

/// The failures of stacks other than PyTorch-on-CUDA (ggml, vLLM, XLA, MPS, HIP, aimdo).
fn classify_other_stacks(line: &str) -> Option<OomKind> {
    if says(line, "cudaMalloc failed: out of memory") || ggml_follow_up(line) {
        Some(OomKind::Ggml)
    } else if says(line, "CUDA Error: out of memory at ") {
        Some(OomKind::VllmCumem)
    } else if (says(line, "ran out of memory trying to allocate")
        && line.contains("_bfc)")
        && !line.contains("not a failure"))
        || says(
            line,
            "RESOURCE_EXHAUSTED: Out of memory while trying to allocate",
        )
    {
        Some(OomKind::Xla)
    } else if says(line, "MPS backend out of memory") {
        Some(OomKind::Mps)
    } else if says(line, "HIP out of memory") {
        Some(OomKind::Hip)
    } else if says(line, "VRAM Allocation failed (non OOM)") || says(line, "VBAR allocation failed")
    {
        Some(OomKind::AimdoNotOom)
    } else {
        None
    }
}

/// A line ggml or llama.cpp prints after a failed device allocation.
fn ggml_follow_up(line: &str) -> bool {
    let p = patterns();
    p.ggml_buffer.is_match(line)
        || says(line, "failed to allocate buffer for kv cache")
        || says(line, "failed to allocate compute buffers")
        || says(line, "failed to allocate compute pp buffers")
}

/// True when `line`, coming right after a failure of `kind`, is part of that same failure (ggml
/// names the failed cudaMalloc, then the buffer it was for, then what could not be made).
pub fn continues(kind: OomKind, line: &str) -> bool {
    match kind {
        OomKind::Ggml => ggml_follow_up(line) || says(line, "failed to initialize the context"),
        OomKind::Xla => says(
            line,
            "RESOURCE_EXHAUSTED: Out of memory while trying to allocate",
        ),
        _ => false,
    }
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern}: {e}"))
}

/// A size as PyTorch's `format_size` prints it (and the decimal units other tools use).
const SIZE: &str = r"([0-9]+(?:\.[0-9]+)?) ?(GiB|MiB|KiB|GB|MB|KB|bytes|B)\b";
/// A size as XLA prints it (`16.00GiB`, no space).
const SIZE_TIGHT: &str = r"([0-9]+(?:\.[0-9]+)?)(GiB|MiB|KiB|B)";

struct Patterns {
    requested: Regex,
    gpu: Regex,
    torch10: Regex,
    torch14: Regex,
    torch21_head: Regex,
    this_process: Regex,
    other_process: Regex,
    allowed: Regex,
    torch21_split: Regex,
    async_device: Regex,
    async_field: Regex,
    size: Regex,
    onnx_buffer: Regex,
    onnx_available: Regex,
    onnx_gpu: Regex,
    ggml_malloc: Regex,
    ggml_buffer: Regex,
    xla_bfc: Regex,
    xla_bytes: Regex,
    xla_stat: Regex,
    mps: Regex,
    rank: Regex,
    loose_total: Regex,
    loose_allocated: Regex,
    loose_free: Regex,
    loose_reserved: Regex,
    loose_cached: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        requested: re(&format!(r"(?i)tried to allocate {SIZE}")),
        gpu: re(r"\bGPU (\d{1,4})\b"),
        torch10: re(&format!(
            r"\(GPU (\d+); {SIZE} total capacity; {SIZE} already allocated; {SIZE} free; {SIZE} cached\)"
        )),
        torch14: re(&format!(
            r"\(GPU (\d+); {SIZE} total capacity; {SIZE} already allocated; {SIZE} free; (?:{SIZE} allowed; )?{SIZE} reserved in total by PyTorch\)"
        )),
        torch21_head: re(&format!(
            r"GPU (\d+) has a total capac(?:i)?ty of {SIZE} of which {SIZE} is free"
        )),
        this_process: re(&format!(r"this process has {SIZE} memory in use")),
        other_process: re(&format!(r"Process (\d+) has {SIZE} memory in use")),
        allowed: re(&format!(r"{SIZE} allowed;")),
        // With CUDA Graphs (or another private pool) PyTorch adds "with P allocated in private
        // pools (e.g., CUDA Graphs), " between the two figures; A includes P, so reserved is
        // still A + U.
        torch21_split: re(&format!(
            r"Of the allocated memory {SIZE} is allocated by PyTorch, (?:with {SIZE} allocated in private pools \(e\.g\., CUDA Graphs\), )?and {SIZE} is reserved by PyTorch but unallocated"
        )),
        async_device: re(r"Allocation on device (\d+)"),
        async_field: re(&format!(
            r"(Currently allocated|Requested|Device limit|Free \(according to CUDA\))\s*:\s*{SIZE}"
        )),
        size: re(SIZE),
        onnx_buffer: re(r"requested buffer of size (\d+)"),
        onnx_available: re(r"Available memory of (\d+) is smaller than requested bytes of (\d+)"),
        onnx_gpu: re(r"GPU=(\d+)"),
        ggml_malloc: re(r"allocating ([0-9]+(?:\.[0-9]+)?) MiB on device (\d+): cudaMalloc failed"),
        ggml_buffer: re(r"(?:failed|unable) to allocate (CUDA|ROCm|Vulkan|SYCL|Metal)(\d+) buffer(?: of size (\d+))?"),
        xla_bfc: re(&format!(
            r"Allocator \(GPU_(\d+)_bfc\) ran out of memory trying to allocate {SIZE_TIGHT}(?: \(rounded to (\d+)\))?"
        )),
        xla_bytes: re(r"Out of memory while trying to allocate (\d+) bytes"),
        xla_stat: re(r"\b(Limit|InUse):\s+(\d+)"),
        mps: re(&format!(
            r"MPS allocated: {SIZE}, other allocations: {SIZE}, max allowed: {SIZE}\)\. Tried to allocate {SIZE}"
        )),
        rank: re(r"\brank[= ](\d{1,5})\b"),
        // For variants with other separators, e.g. the commas in seed 002's quote.
        loose_total: re(&format!(r"{SIZE} total capacity")),
        loose_allocated: re(&format!(r"{SIZE} already allocated")),
        loose_free: re(&format!(r"{SIZE} free\b")),
        loose_reserved: re(&format!(r"{SIZE} reserved in total by PyTorch")),
        loose_cached: re(&format!(r"{SIZE} cached\b")),
    })
}

fn unit_bytes(unit: &str) -> f64 {
    match unit {
        "GiB" => (1u64 << 30) as f64,
        "MiB" => (1u64 << 20) as f64,
        "KiB" => 1024.0,
        "GB" => 1e9,
        "MB" => 1e6,
        "KB" => 1e3,
        _ => 1.0,
    }
}

/// A (number, unit) pair as bytes; absurd numbers saturate (a log may say anything).
fn bytes(number: &str, unit: &str) -> Option<Bytes> {
    let value: f64 = number.parse().ok()?;
    let b = value * unit_bytes(unit);
    // `as` saturates at u64::MAX and maps NaN to 0.
    b.is_finite().then_some(Bytes(b as u64))
}

/// The size captured by groups `at` (number) and `at + 1` (unit).
fn size_at(caps: &regex::Captures, at: usize) -> Option<Bytes> {
    bytes(caps.get(at)?.as_str(), caps.get(at + 1)?.as_str())
}

/// Reads the numbers of a message: `lines[0]` is the line that failed, the rest follow it (a
/// message may be wrapped, and the async backend's comes on several lines).
pub fn numbers(kind: OomKind, lines: &[&str]) -> (Numbers, Era) {
    let p = patterns();
    let joined = lines.join(" ");
    let mut n = Numbers::default();
    let mut era = Era::Unknown;
    match kind {
        OomKind::TorchAsync => {
            era = Era::Async;
            n.gpu = p
                .async_device
                .captures(&joined)
                .and_then(|c| c[1].parse().ok());
            let mut limit_next = false;
            for line in lines {
                if limit_next {
                    n.limit = p.size.captures(line).and_then(|c| size_at(&c, 1));
                    limit_next = false;
                }
                if line.contains("PyTorch limit") {
                    // The value is on this line after a colon, or alone on the next one.
                    match line
                        .split_once("fraction)")
                        .and_then(|(_, rest)| p.size.captures(rest))
                    {
                        Some(c) => n.limit = size_at(&c, 1),
                        None => limit_next = true,
                    }
                }
                for c in p.async_field.captures_iter(line) {
                    let value = size_at(&c, 2);
                    match &c[1] {
                        "Currently allocated" => n.allocated = value,
                        "Requested" => n.requested = value,
                        "Device limit" => n.total = value,
                        _ => n.free = value,
                    }
                }
            }
        }
        OomKind::OnnxRuntime => {
            if let Some(c) = p.onnx_available.captures(&joined) {
                n.limit = c[1].parse().ok().map(Bytes);
                n.requested = c[2].parse().ok().map(Bytes);
            } else {
                n.requested = p
                    .onnx_buffer
                    .captures(&joined)
                    .and_then(|c| c[1].parse().ok())
                    .map(Bytes);
            }
            n.gpu = p.onnx_gpu.captures(&joined).and_then(|c| c[1].parse().ok());
        }
        OomKind::Ggml => {
            if let Some(c) = p.ggml_malloc.captures(&joined) {
                n.requested = bytes(&c[1], "MiB");
                n.gpu = c[2].parse().ok();
            }
            if let Some(c) = p.ggml_buffer.captures(&joined) {
                n.gpu = n.gpu.or_else(|| c[2].parse().ok());
                // The exact byte count, where the buffer line gives it.
                if let Some(size) = c.get(3).and_then(|s| s.as_str().parse().ok()) {
                    n.requested = Some(Bytes(size));
                }
            }
        }
        OomKind::Xla => {
            if let Some(c) = p.xla_bfc.captures(&joined) {
                n.gpu = c[1].parse().ok();
                n.requested = c
                    .get(4)
                    .and_then(|b| b.as_str().parse().ok())
                    .map(Bytes)
                    .or_else(|| size_at(&c, 2));
            }
            if let Some(c) = p.xla_bytes.captures(&joined) {
                n.requested = c[1].parse().ok().map(Bytes);
            }
            for c in p.xla_stat.captures_iter(&joined) {
                let value = c[2].parse().ok().map(Bytes);
                match &c[1] {
                    "Limit" => n.limit = value,
                    _ => n.allocated = value,
                }
            }
        }
        OomKind::Mps => {
            // The MPS allocator's own format_size writes binary sizes as "GB", "MB", "KB".
            let binary = |c: &regex::Captures, at: usize| {
                let unit = match c.get(at + 1)?.as_str() {
                    "GB" => "GiB",
                    "MB" => "MiB",
                    "KB" => "KiB",
                    other => other,
                };
                bytes(c.get(at)?.as_str(), unit)
            };
            if let Some(c) = p.mps.captures(&joined) {
                n.allocated = binary(&c, 1);
                n.other_allocations = binary(&c, 3);
                n.limit = binary(&c, 5);
                n.requested = binary(&c, 7);
            }
        }
        OomKind::VllmCumem | OomKind::AimdoNotOom => {}
        _ => {
            n.requested = p.requested.captures(&joined).and_then(|c| size_at(&c, 1));
            if let Some(c) = p.torch21_head.captures(&joined) {
                era = Era::Torch21;
                n.gpu = c[1].parse().ok();
                n.total = size_at(&c, 2);
                n.free = size_at(&c, 4);
                n.process_in_use = p
                    .this_process
                    .captures(&joined)
                    .and_then(|c| size_at(&c, 1));
                n.others = p
                    .other_process
                    .captures_iter(&joined)
                    .filter_map(|c| {
                        Some(OtherProcess {
                            pid: c[1].parse().ok()?,
                            used: size_at(&c, 2)?,
                        })
                    })
                    .collect();
                n.limit = p.allowed.captures(&joined).and_then(|c| size_at(&c, 1));
                if let Some(c) = p.torch21_split.captures(&joined) {
                    n.allocated = size_at(&c, 1);
                    n.private_pools = size_at(&c, 3);
                    let unallocated = size_at(&c, 5);
                    n.reserved = n
                        .allocated
                        .zip(unallocated)
                        .map(|(a, u)| Bytes(a.0.saturating_add(u.0)));
                }
            } else if let Some(c) = p.torch14.captures(&joined) {
                era = Era::Torch14;
                n.gpu = c[1].parse().ok();
                n.total = size_at(&c, 2);
                n.allocated = size_at(&c, 4);
                n.free = size_at(&c, 6);
                n.limit = size_at(&c, 8);
                n.reserved = size_at(&c, 10);
            } else if let Some(c) = p.torch10.captures(&joined) {
                era = Era::Torch10;
                n.gpu = c[1].parse().ok();
                n.total = size_at(&c, 2);
                n.allocated = size_at(&c, 4);
                n.free = size_at(&c, 6);
                // "cached" was memory held but unused: reserved is allocated plus that.
                let cached = size_at(&c, 8);
                n.reserved = n
                    .allocated
                    .zip(cached)
                    .map(|(a, c)| Bytes(a.0.saturating_add(c.0)));
            } else {
                // Not one of the exact formats (a quote, a variant): read what is there.
                let loose = |re: &Regex| re.captures(&joined).and_then(|c| size_at(&c, 1));
                n.gpu = p.gpu.captures(&joined).and_then(|c| c[1].parse().ok());
                n.total = loose(&p.loose_total);
                n.allocated = loose(&p.loose_allocated);
                n.free = loose(&p.loose_free);
                n.reserved = loose(&p.loose_reserved).or_else(|| {
                    let cached = loose(&p.loose_cached)?;
                    Some(Bytes(n.allocated?.0.saturating_add(cached.0)))
                });
            }
        }
    }
    // cuBLAS and cuDNN failures reported by onnxruntime name their GPU as it does.
    if n.gpu.is_none() && matches!(kind, OomKind::Cublas | OomKind::Cudnn | OomKind::CudaError) {
        n.gpu = p.onnx_gpu.captures(&joined).and_then(|c| c[1].parse().ok());
    }
    n.rank = lines
        .first()
        .and_then(|l| p.rank.captures(l))
        .and_then(|c| c[1].parse().ok());
    recognise_self(&mut n);
    // A "limit" at or above the card is no limit (the async backend prints 16 EiB for none).
    if let (Some(limit), Some(total)) = (n.limit, n.total)
        && limit >= total
    {
        n.limit = None;
    }
    (n, era)
}

/// Finds the failing process among "other" processes when the driver listed it under another
/// pid (a container's pid namespace): no "this process has" phrase, and one listed process
/// holding what PyTorch reserved plus at most a CUDA context's worth (1.5 GiB).
fn recognise_self(n: &mut Numbers) {
    let (None, Some(reserved)) = (n.process_in_use, n.reserved) else {
        return;
    };
    let slack = 3 << 29;
    let matching = n
        .others
        .iter()
        .position(|o| o.used >= reserved && o.used.0 - reserved.0 <= slack);
    if let Some(i) = matching {
        let own = n.others.remove(i);
        n.process_in_use = Some(own.used);
        n.self_listed_as = Some(own.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = (1u64 << 30) as f64;

    fn gib(x: f64) -> Option<Bytes> {
        Some(Bytes((x * GIB) as u64))
    }

    #[test]
    fn private_pools_keep_allocated_reserved_and_this_process() {
        // PyTorch 2.x's message when CUDA Graphs hold a private pool, wrapped as a console
        // wraps it (CUDACachingAllocator.cpp: "with " + format_size(private) + " allocated in
        // private pools (e.g., CUDA Graphs), ").
        let lines = [
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 768.00 MiB. GPU 0 has a total capacity of 23.52 GiB of which 140.38 MiB is free.",
            "Process 4121 has 23.33 GiB memory in use. Of the allocated memory 21.92 GiB is allocated by PyTorch, with 104.00 MiB",
            "allocated in private pools (e.g., CUDA Graphs), and 797.79 MiB is reserved by PyTorch but unallocated.",
        ];
        let (n, era) = numbers(OomKind::Torch, &lines);
        assert_eq!(era, Era::Torch21);
        assert_eq!(n.allocated, gib(21.92));
        assert_eq!(n.private_pools, Some(Bytes(104 << 20)));
        let reserved = (21.92 * GIB) as u64 + (797.79 * (1u64 << 20) as f64) as u64;
        assert_eq!(n.reserved, Some(Bytes(reserved)));
        // Without "this process has", the listed pid holding what PyTorch reserved is it.
        assert_eq!(n.self_listed_as, Some(4121));
        assert_eq!(n.process_in_use, gib(23.33));
    }

    #[test]
    fn the_1_0_era_cached_figure_is_unallocated_memory() {
        let line = "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 10.92 GiB total capacity; 6.00 GiB already allocated; 1.00 GiB free; 3.00 GiB cached)";
        let (n, era) = numbers(OomKind::Torch, &[line]);
        assert_eq!(era, Era::Torch10);
        assert_eq!(n.allocated, gib(6.0));
        assert_eq!(n.reserved, gib(9.0), "allocated + cached");
    }

    #[test]
    fn other_processes_are_not_taken_for_this_one_whatever_their_order() {
        let before = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 8.00 GiB. GPU 0 has a total capacity of 79.18 GiB of which 20.56 MiB is free. Process 918 has 48.01 GiB memory in use. Including non-PyTorch memory, this process has 31.13 GiB memory in use. Of the allocated memory 9.19 GiB is allocated by PyTorch, and 21.44 GiB is reserved by PyTorch but unallocated.";
        let (n, era) = numbers(OomKind::Torch, &[before]);
        assert_eq!(era, Era::Torch21);
        assert_eq!(n.process_in_use, gib(31.13));
        assert_eq!(
            n.others,
            vec![OtherProcess {
                pid: 918,
                used: gib(48.01).unwrap()
            }]
        );
        let after = "Including non-PyTorch memory, this process has 518.00 MiB memory in use. Process 547 has 48.01 GiB memory in use.";
        let (n, _) = numbers(
            OomKind::Torch,
            &[&format!(
                "CUDA out of memory. Tried to allocate 1 GiB. GPU 0 has a total capacity of 79.18 GiB of which 30.65 GiB is free. {after}"
            )],
        );
        assert_eq!(n.process_in_use, Some(Bytes(518 << 20)));
        assert_eq!(n.others[0].pid, 547);
    }

    #[test]
    fn the_async_backend_message_is_read_line_by_line_even_with_prefixes() {
        let lines = [
            "[12:00:01] torch.OutOfMemoryError: Allocation on device 0 would exceed allowed memory. (out of memory)",
            "[12:00:01] Currently allocated     : 1.50 GiB",
            "[12:00:01] Requested               : 31.67 GiB",
            "[12:00:01] Device limit            : 79.18 GiB",
            "[12:00:01] Free (according to CUDA): 78.60 GiB",
            "[12:00:01] PyTorch limit (set by user-supplied memory fraction)",
            "[12:00:01]                         : 19.79 GiB",
        ];
        let (n, era) = numbers(OomKind::TorchAsync, &lines);
        assert_eq!(era, Era::Async);
        assert_eq!(n.gpu, Some(0));
        assert_eq!(n.allocated, gib(1.5));
        assert_eq!(n.requested, gib(31.67));
        assert_eq!(n.total, gib(79.18));
        assert_eq!(n.free, gib(78.60));
        assert_eq!(n.limit, gib(19.79));
        // The backend's "no limit" is 16 EiB: not a limit.
        let mut unlimited = lines;
        unlimited[6] = "                        : 17179869184.00 GiB";
        assert_eq!(numbers(OomKind::TorchAsync, &unlimited).0.limit, None);
    }

    #[test]
    fn source_lines_in_a_traceback_are_not_failures() {
        assert_eq!(classify("    except torch.OutOfMemoryError:"), None);
        assert_eq!(classify("    if \"CUDA out of memory\" in str(e):"), None);
        assert_eq!(
            classify("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."),
            Some(OomKind::Torch)
        );
        assert_eq!(
            classify(
                "!!! Exception during processing !!! Allocation on device 0 would exceed allowed memory. (out of memory)"
            ),
            Some(OomKind::TorchAsync)
        );
    }

    #[test]
    fn in_a_container_the_process_is_listed_under_its_host_pid() {
        let line = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.52 GiB. GPU 0 has a total capacity of 47.50 GiB of which 2.11 GiB is free. Process 28411 has 45.38 GiB memory in use. Of the allocated memory 36.02 GiB is allocated by PyTorch, and 8.91 GiB is reserved by PyTorch but unallocated.";
        let (n, _) = numbers(OomKind::Torch, &[line]);
        assert_eq!(n.self_listed_as, Some(28411));
        assert_eq!(n.process_in_use, gib(45.38));
        assert!(n.others.is_empty());
    }

    #[test]
    fn a_variant_with_commas_is_still_read() {
        let line = "RuntimeError: CUDA out of memory. Tried to allocate 1.2 GiB (GPU 0; 12.00 GiB total capacity, 9.8 GiB already allocated, 512.00 MiB free)";
        let (n, era) = numbers(OomKind::Torch, &[line]);
        assert_eq!(era, Era::Unknown);
        assert_eq!((n.total, n.allocated), (gib(12.0), gib(9.8)));
        assert_eq!(n.free, Some(Bytes(512 << 20)));
    }

    #[test]
    fn absurd_numbers_saturate() {
        let line = "CUDA out of memory. Tried to allocate 99999999999999999999999999999 GiB (GPU 4294967296; 1e999 GiB total capacity";
        let (n, _) = numbers(OomKind::Torch, &[line]);
        assert_eq!(n.requested, Some(Bytes(u64::MAX)));
    }

    #[test]
    fn onnxruntime_arena_limits_and_buffers() {
        let (n, _) = numbers(
            OomKind::OnnxRuntime,
            &[
                "Status Message: bfc_arena.cc:360 Available memory of 67108864 is smaller than requested bytes of 268435456",
            ],
        );
        assert_eq!(
            (n.limit, n.requested),
            (Some(Bytes(67_108_864)), Some(Bytes(268_435_456)))
        );
    }
}
