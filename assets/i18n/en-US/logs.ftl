span-hours = { $n } h
span-minutes = { $n } min
span-seconds = { $n } s
logs-title = Log
logs-back = Back to live
logs-back-hover = Close the log and show this machine's GPUs again
logs-rows =
    { $count ->
        [one] 1 row
       *[other] { $count } rows
    }
logs-vram-peak-of = VRAM peak { $peak } of { $total }
logs-vram-peak = VRAM peak { $peak }
logs-vram-not-logged = VRAM not logged
logs-util-mean = GPU utilisation mean { $mean } %
logs-gpu-hover = Show this GPU's charts
logs-header = Log: { $origin }
logs-oom-title = Out-of-memory analysis
logs-event = line { $line }: { $kind }
logs-event-repeats =
    { $repeats ->
        [one] line { $line }: { $kind } (and 1 time more)
       *[other] line { $line }: { $kind } (and { $repeats } times more)
    }
import-summary =
    { $rows ->
        [one] 1 row
       *[other] { $rows } rows
    } from { $gpus ->
        [one] 1 GPU
       *[other] { $gpus } GPUs
    }
import-bad =
    { $bad ->
        [one] 1 bad row skipped ({ $first })
       *[other] { $bad } bad rows skipped ({ $first })
    }
import-assumed = no header, columns assumed: { $columns }
import-read-failed = { $origin }: reading failed after { $lines } lines: { $error }
import-problem-line = line { $line }: { $why }
import-unknown-layout = not a CSV row of a known layout
import-cells = { $cells } cells where the header has { $header }
import-row-limit = past the { $limit }-row limit
import-bad-timestamp = unreadable timestamp { $cell }
import-bad-memory = unreadable memory.used { $cell }
import-no-value = no readable value (memory.used, utilisation, temperature, power)
import-no-readable-rows = { $origin }: no readable rows ({ $bad } bad; { $first })
import-no-rows = { $origin }: no rows
import-by-time = GPUs told apart by time within each pass
import-by-order = GPUs told apart by their order in each pass
import-per-pass = { $gpus } GPUs per pass, { $how }
oom-kind-torch = PyTorch CUDA out of memory
oom-kind-torch-async = PyTorch CUDA out of memory (cudaMallocAsync)
oom-kind-cuda-error = CUDA error: out of memory
oom-kind-illegal-access = illegal memory access
oom-kind-cublas = cuBLAS allocation failed
oom-kind-cudnn = cuDNN allocation failed
oom-kind-onnxruntime = onnxruntime allocation failed
oom-fix-expandable = set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True before starting
oom-fix-max-split = set PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:128 before starting (this PyTorch predates 2.1 and its expandable_segments)
oom-fix-empty-cache = call torch.cuda.empty_cache() between jobs or restart the job; this PyTorch has no allocator settings for it (max_split_size_mb came in 1.10, expandable_segments in 2.1)
oom-cause-larger-than-card = this one allocation asks for { $requested }, more than the whole card ({ $total }): no freeing can help; make the job smaller (resolution, batch, frames), decode in tiles, offload to the CPU or use a quantised model
oom-cause-onnx-limit = onnxruntime's memory arena is capped at { $limit } and this request ({ $requested }) does not fit under it: raise the cap (the CUDA provider's gpu_mem_limit) or process less at once
oom-cause-limit = a memory limit of { $limit } stopped it, not the card: the program (or its launcher) set torch.cuda.set_per_process_memory_fraction; raise or remove it
oom-cause-limit-below-card = a memory limit of { $limit } (below the card's { $total }) stopped it, not the card: the program (or its launcher) set torch.cuda.set_per_process_memory_fraction; raise or remove it
oom-cause-outside = { $held } was held outside this process's PyTorch cache (other programs and CUDA contexts): close other GPU programs, or release their cache with Free VRAM
oom-cause-other-pid = pid { $pid } held { $held }
oom-cause-others = other processes held { $held } of the card ({ $list }): close them, or release their cached memory with Free VRAM
oom-cause-others-self = other processes held { $held } of the card ({ $list }): close them, or release their cached memory with Free VRAM; this process itself held { $own }
oom-cause-fragmentation = fragmentation: PyTorch held { $unused } reserved but unallocated, more than the { $requested } asked for, but not in one piece; { $fix }
oom-cause-free-but-failed = { $free } was free, more than the { $requested } asked for, when it failed: another process allocated at the same moment, or the driver's memory was fragmented; run jobs one at a time and retry
oom-cause-own-tensors = this process's own tensors held { $allocated } of the { $total } card: the job itself is too big for it
oom-cause-workspace = the card was already full when this library needed its workspace: the job itself (or another program) filled it
oom-cause-runtime = the CUDA runtime itself could not allocate, often when a process starts its CUDA context (about 0.5 GiB) on a card another program has filled: close other GPU programs or free their cache with Free VRAM
oom-cause-after-overflow = often the aftermath of running out of memory: fix an earlier out-of-memory first; otherwise rerun with CUDA_LAUNCH_BLOCKING=1 to find the kernel
oom-workload-use-size = { $name }: use size { $safe } instead of { $size } (the largest safe size on a { $card } card)
oom-workload-size-fits = { $name } at size { $size } fits a { $card } card: something else held memory
oom-workload-none-fits = { $name }: even the smallest measured size does not fit a { $card } card
oom-workload-frames = { $name }: process { $safe } frames at once instead of { $batch } (--execution-thread-count { $safe }), or use --video-memory-strategy strict
oom-workload-peak = { $name } needs about { $peak } at its peak: { $fallback }
oom-workload-held-more = this run held { $held }, more than the { $peak } { $name } peaks at: check resolution, frames and batch
oom-workload-fits = { $name } fits a { $card } card: something else held memory
oom-facefusion-generic = { $name }: lower --execution-thread-count (frames processed at once; default 8), use --video-memory-strategy strict, a smaller --face-swapper-pixel-boost, or an _fp16 model such as inswapper_128_fp16
oom-facefusion-max-batch = { $name }: process { $max } frames at once or fewer instead of { $batch } (--execution-thread-count { $max })
oom-generic-async-no-numbers = lower resolution, batch or frames; in ComfyUI start with --lowvram (or --reserve-vram 1) to keep headroom, and with --disable-cuda-malloc PyTorch's next message will say how much was asked for and how much was free
oom-generic-async = lower resolution, batch or frames, decode in tiles (VAE Decode (Tiled)); in ComfyUI start with --lowvram to offload model weights to system RAM
oom-generic-onnx = process less at once (FaceFusion: lower --execution-thread-count or use --video-memory-strategy strict), or cap onnxruntime's arena with the CUDA provider's gpu_mem_limit
oom-generic = lower resolution, batch or frames, decode in tiles, offload to the CPU or use a quantised model
oom-needed-free-total = needed { $requested } with { $free } free at { $total } total
oom-hint-720p-14b = 720p on a 14B model: drop to 480p or render fewer frames
oom-num-requested = requested { $v }
oom-num-total = total { $v }
oom-num-free = free { $v }
oom-num-allocated = allocated { $v }
oom-num-private-pools = in private pools { $v }
oom-num-reserved = reserved { $v }
oom-num-self-listed = this process (pid { $pid } to the driver) { $v }
oom-num-self = this process { $v }
oom-num-limit = limit { $v }
oom-num-other = pid { $pid } { $v }
oom-summary-none =
    no CUDA out-of-memory events in { $lines ->
            [one] { $n } line
           *[other] { $n } lines
        }
oom-summary =
    { $events ->
            [one] { $e } event
           *[other] { $e } events
        } in { $lines ->
            [one] { $n } line
           *[other] { $n } lines
        }
oom-summary-repeats = { $summary } ({ $distinct } distinct; repeats are counted, not listed)
analyze-more-events = { $n } more distinct events not listed (the first { $max } are)
analyze-csv-title = { $origin }: nvidia-smi CSV log, { $summary }
analyze-span = { $first } to { $last } ({ $span })
analyze-memory = memory.used peak { $peak } MiB, mean { $mean } MiB
analyze-memory-of = memory.used peak { $peak } MiB, mean { $mean } MiB of { $total } MiB
analyze-memory-na = memory.used not reported ([N/A] in every row: a unified-memory device such as GB10 or Jetson)
analyze-util = utilization.gpu peak { $peak } %, mean { $mean } %
analyze-bad-rows =
    { $count ->
            [one] { $n } bad row
           *[other] { $n } bad rows
        }:
analyze-bad-rows-first =
    { $count ->
            [one] { $n } bad row
           *[other] { $n } bad rows
        } (the first { $first }):
not-a-csv-log = Not a readable nvidia-smi CSV log: { $error }

oom-kind-ggml = ggml buffer allocation failed (llama.cpp / Ollama)
oom-kind-vllm-cumem = vLLM allocation failed (cumem allocator)
oom-kind-xla = XLA out of memory (JAX / TensorFlow)
oom-kind-mps = PyTorch MPS out of memory (Apple)
oom-kind-hip = PyTorch HIP out of memory (ROCm)
oom-kind-aimdo = Dynamic VRAM could not map memory (not an out-of-memory)
oom-cause-aimdo = not an out-of-memory: ComfyUI's Dynamic VRAM (comfy-aimdo) could not map memory — a driver or HIP runtime limit, not a full card
oom-stack-ggml = llama.cpp / Ollama: offload fewer layers to the GPU (-ngl, Ollama's num_gpu), use a smaller context (-c, num_ctx), quantise the KV cache (--cache-type-k q8_0 --cache-type-v q8_0 with flash attention; OLLAMA_KV_CACHE_TYPE=q8_0), or free the app holding the card (vramdeck's Free VRAM)
oom-stack-vllm-cumem = vLLM's sleep-mode allocator got no memory from the driver: another app holds the card, or --gpu-memory-utilization asks for too much; lower it or --max-model-len, and free the card before waking vLLM
oom-stack-vllm-sampler = vLLM ran out while warming up its sampler: lower --max-num-seqs or --gpu-memory-utilization (each rank that fails says so on its own line)
oom-stack-xla = XLA takes 75 % of the card up front: set XLA_PYTHON_CLIENT_MEM_FRACTION (e.g. .5) or XLA_PYTHON_CLIENT_PREALLOCATE=false for JAX (TensorFlow: set_memory_growth), then a smaller batch
oom-stack-mps = PyTorch on Apple stopped at its limit of { $limit } ({ $allocated } in PyTorch, { $other } in other allocations): memory is unified with the system, so close other apps or lower the batch or size; PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 lifts the limit at the risk of the system swapping or stalling
oom-stack-hip = on ROCm the same PyTorch settings apply with PYTORCH_HIP_ALLOC_CONF (e.g. expandable_segments:True); lower resolution or batch, or free the app holding the card
oom-cause-xla-limit = XLA's memory pool of { $limit } was full when it needed { $requested } more: its size is a fraction of the card taken up front
oom-fix-expandable-hip = set PYTORCH_HIP_ALLOC_CONF=expandable_segments:True before starting
oom-num-other-allocations = other allocations { $v }
oom-num-rank = rank { $rank }
