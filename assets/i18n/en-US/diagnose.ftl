diag-verdict-not-enough = not enough readings yet
diag-verdict-idle = idle
diag-verdict-gpu-bound = GPU-bound: the GPU itself is the limit
diag-verdict-power-limit = GPU-bound, at its power limit: the GPU is the limit, and its power cap sets the clock
diag-verdict-starved = CPU/data-starved: the GPU waits for its input
diag-verdict-throttled = throttled: { $reason } holds the clock down
diag-verdict-pcie = PCIe-bound: the model streams over PCIe
diag-verdict-encoder = encoder-bound: NVENC is saturated
diag-verdict-decoder = decoder-bound: NVDEC is saturated
diag-verdict-partly = partly busy, no bottleneck in view
diag-means-pcie = PCIe rx { $rx } / tx { $tx } MB/s
diag-means-clock = SM clock { $mhz } MHz
diag-means-power = power { $watts } W
diag-means-host = busiest host process { $percent } % of a core
diag-ev-util = kernels ran { $util } % of the time over { $seconds } s (peak reading { $peak } %)
diag-ev-gaps =
    { $count ->
        [one] 1 idle gap between bursts, { $mean } s (longest { $longest } s)
       *[other] { $count } idle gaps between bursts, { $mean } s on average (longest { $longest } s)
    }
diag-ev-gaps-period = { $gaps }, a burst every { $period } s
diag-advice-idle = nothing to speed up: no kernels ran in this window
diag-ev-pcie-capacity = PCIe { $rx } MB/s into the GPU and { $tx } MB/s out: { $share } % of the link's { $max } MB/s, its capacity
diag-ev-copies-busy = utilisation reads { $util } %, but NVML counts the time copies run as busy: the GPU waits for the link
diag-advice-pcie-capacity = the PCIe link is the limit: keep the data on the GPU between steps instead of copying it each time (a model that does not fit in VRAM is streamed like this: ComfyUI's --lowvram offload), use a smaller or quantised (fp8 / GGUF) model, or free VRAM so it fits; check the card runs at its full link (nvidia-smi -q: PCIe Generation and Link Width)
diag-ev-power-cap-share = the power cap held the clock in { $share } % of busy readings
diag-ev-clock-share = SM clock { $mhz } MHz while busy, { $share } % of its { $max } MHz maximum
diag-ev-power = power { $watts } W while busy, limit { $limit } W
diag-advice-power-limit = the GPU runs flat out within the power it may draw: that is its speed. If the limit was lowered (nvidia-smi -pl, MSI Afterburner), raising it back to the card's default gives the speed back; otherwise fewer steps or a lower resolution, FP16 / quantised models, or a faster GPU
diag-ev-clock-event = clock event "{ $reason }" active in { $share } % of busy readings
diag-advice-power-cap = the power limit holds it back: raise it (nvidia-smi -pl, up to the card's default) or accept the lower speed
diag-advice-thermal = it runs too hot: improve airflow, clean the fans, or lower the power limit to run cooler and steadier
diag-advice-hardware = the hardware slows itself (power supply or temperature): check cooling and the power connectors
diag-ev-nvenc = NVENC busy { $engine } % while the SMs average { $util } %
diag-advice-encoder = the video encoder is the limit: a faster preset, lower output resolution or frame rate, or split the encode across GPUs
diag-ev-nvdec = NVDEC busy { $engine } % while the SMs average { $util } %
diag-advice-decoder = video decoding is the limit: lower the input resolution, or decode on the CPU in parallel
diag-ev-pcie-share = PCIe { $rx } MB/s into the GPU and { $tx } MB/s out, { $share } % of the link's { $max } MB/s
diag-ev-pcie = PCIe { $rx } MB/s into the GPU and { $tx } MB/s out
diag-ev-sms-idle = SMs busy only { $util } % on average
diag-advice-pcie = the model does not fit in VRAM and is streamed over PCIe every step (ComfyUI's --lowvram offload does this): lower the resolution, use a quantised (fp8 / GGUF) model, or free VRAM so it fits
diag-clock-holds = { $reason } reached, but the clock holds
diag-not-throttled = not throttled
diag-ev-clock-of = SM clock { $mhz } MHz of { $max } MHz: { $note }
diag-advice-gpu-bound = the GPU itself is the limit: fewer steps or a lower resolution, FP16 / quantised models, or a faster GPU
diag-ev-host-used = its busiest host process used { $percent } % of a CPU core
diag-advice-starved = feed the GPU more per call: raise the batch size or the number of execution threads (FaceFusion: --execution-thread-count, --execution-queue-count), use FP16 or TensorRT, and decode / preprocess on other threads
diag-ev-host-busiest = busiest host process: { $percent } % of a CPU core
diag-advice-partly = the GPU has room to spare: a larger batch or a second job would use it
dx-process-vram = VRAM { $v }
dx-process-host = host { $v }
dx-asleep = asleep (runtime power management); not woken to be read
dx-window =
    ({ $seconds } s, { $count ->
            [one] { $n } reading
           *[other] { $n } readings
        })
dx-verdict = verdict: { $what }
dx-measured = measured: { $what }
dx-process = process: { $what }
dx-demo-simulated = vramdeck: demo mode, these GPUs are simulated ({ $reason })
dx-watching = vramdeck: watching every GPU for { $seconds } s at 10 Hz...
dx-no-gpu = there is no GPU { $index }
diag-verdict-spill = spilling into system memory
diag-ev-spill-full = VRAM { $share } % full
diag-ev-spill-shared = a process's shared GPU memory (system memory the GPU reads over the bus) rose by { $grew } MiB, to { $now } MiB
diag-advice-spill-policy = the job no longer fits in VRAM and the NVIDIA driver is placing it in system memory, so it runs many times slower instead of stopping with an out-of-memory error. To get the error instead: NVIDIA Control Panel > Manage 3D settings > CUDA - Sysmem Fallback Policy > Prefer No Sysmem Fallback (for the WebUI's python.exe, or globally)
diag-advice-spill-fit = to make the job fit: lower the resolution, frame count or batch size, use a smaller or quantised model (FP8, GGUF), or free the VRAM other apps hold first
dx-process-shared = shared GPU memory { $v }
diag-verdict-host-copies = transfer-bound: results copied into host memory every step
diag-ev-host-copies = PCIe { $tx } MB/s out of the GPU while the busiest host process uses { $percent } % of a core and kernels run { $util } % of the time: copies into pageable memory are staged through that core and the GPU waits for each
diag-advice-host-copies = copy into pinned memory (a buffer made once with pin_memory=True, then .copy_(…, non_blocking=True)), copy less often or in fewer, larger pieces (save or preview every N steps), or keep the results on the GPU until the end
