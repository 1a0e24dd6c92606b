"""A job that copies results from the GPU into host memory at every step, as a save or preview
loop does: into pageable memory (`pageable`: each copy is staged by the driver through a pinned
bounce buffer on one host core, and the GPU waits for it) or into pinned memory (`pinned`: a
DMA the GPU overlaps with its work). For `vramdeck diagnose`, run beside it on an NVIDIA GPU.

    python3 pageable_copy_workload.py pageable|pinned SECONDS
"""
import sys
import time

import torch

mode, seconds = sys.argv[1], float(sys.argv[2])
result = torch.randn(128 * 1024 * 1024, device="cuda")  # 512 MiB of float32 per step
host = torch.empty(result.shape, dtype=result.dtype, pin_memory=(mode == "pinned"))
weights = torch.randn(4096, 4096, device="cuda")
end, steps = time.time() + seconds, 0
while time.time() < end:
    for _ in range(4):
        weights = torch.tanh(weights @ weights * 1e-3)
    host.copy_(result, non_blocking=(mode == "pinned"))
    steps += 1
torch.cuda.synchronize()
print(f"{mode}: {steps} steps, {steps * result.numel() * 4 / seconds / 1e9:.1f} GB/s copied",
      flush=True)
