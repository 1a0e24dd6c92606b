"""Three real torch workloads for the "busy but slow?" proof (tests/gpu/diagnose_proof.sh), each
running for the given number of seconds:

  starved  a few ms of kernels, then 25 ms of Python between them (batch 1 fed by one thread)
  bound    large fp16 matmuls back to back (on an H100 this reaches the 700 W power cap)
  bound32  fp32 matmuls back to back, TF32 off (busy, below the power cap)
  pcie     1 GiB copied between pinned host buffers and the GPU, both ways, in a loop
  h2d      1 GiB copied from a pinned host buffer to the GPU only, in a loop (the link's limit
           one way; NVML reads the copies as 100 % utilisation)
  bf16     bf16 8192² matmuls back to back (full load at the power cap)

Usage: python3 busy_workloads.py starved|bound|pcie SECONDS
"""
import sys
import time

import torch

kind, seconds = sys.argv[1], float(sys.argv[2])
end = time.time() + seconds
dev = torch.device("cuda")

if kind == "starved":
    a = torch.randn(4096, 4096, device=dev)
    torch.backends.cuda.matmul.allow_tf32 = False
    while time.time() < end:
        for _ in range(3):
            b = torch.tanh(a @ a)
        torch.cuda.synchronize()
        # The host "prepares the next frame": ~25 ms of pure Python on one core.
        t = time.perf_counter()
        x = 0
        while time.perf_counter() - t < 0.025:
            x += 1
elif kind == "bound":
    a = torch.randn(8192, 8192, device=dev, dtype=torch.float16)
    b = torch.randn(8192, 8192, device=dev, dtype=torch.float16)
    while time.time() < end:
        for _ in range(20):
            c = a @ b
        torch.cuda.synchronize()
elif kind == "bound32":
    torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(8192, 8192, device=dev)
    while time.time() < end:
        for _ in range(4):
            c = a @ a
        torch.cuda.synchronize()
elif kind == "pcie":
    # Pinned buffers both ways, so the copies run at the link's speed (a pageable buffer makes
    # the CPU's memcpy the limit instead: measured at ~0.5 GB/s here).
    host = torch.empty(1024**3, dtype=torch.uint8, pin_memory=True)
    back = torch.empty(1024**3, dtype=torch.uint8, pin_memory=True)
    on_gpu = torch.empty(1024**3, dtype=torch.uint8, device=dev)
    host.fill_(7)
    while time.time() < end:
        on_gpu.copy_(host)
        back.copy_(on_gpu)
        torch.cuda.synchronize()
elif kind == "h2d":
    host = torch.empty(1024**3, dtype=torch.uint8, pin_memory=True)
    on_gpu = torch.empty(1024**3, dtype=torch.uint8, device=dev)
    host.fill_(7)
    while time.time() < end:
        for _ in range(64):  # queued back to back: the link never waits for the host
            on_gpu.copy_(host, non_blocking=True)
        torch.cuda.synchronize()
elif kind == "bf16":
    a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    while time.time() < end:
        for _ in range(20):
            c = a @ b
        torch.cuda.synchronize()
else:
    sys.exit(f"unknown workload {kind}")
