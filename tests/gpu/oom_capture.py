"""Produces real CUDA out-of-memory failures with the PyTorch on the GPU machine, one scenario a
process, and saves what each prints to stderr (the traceback a user would paste), so the OOM
analyser's fixtures reproduce the formats the real allocator prints. Not run in CI (no GPU).

usage: python3 oom_capture.py OUT_DIR
"""

import os
import subprocess
import sys
import textwrap

out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)

PRELUDE = """
import os, sys, time, torch
free, total = torch.cuda.mem_get_info(0)
GIB = 2**30
def take(nbytes):
    return torch.empty(int(nbytes), dtype=torch.uint8, device="cuda")
"""

SCENARIOS = {
    # One request larger than the whole card: no freeing can help.
    "larger_than_card": "take(total * 1.5)",
    # This process's own live tensors fill the card.
    "own_live_tensors": """
held = [take(GIB) for _ in range(int(free / GIB) - 1)]
take(4 * GIB)
""",
    # Another process holds most of the card (its pid is listed before this process's).
    "other_process_holds_memory": """
hog = subprocess_hog(0.6)
take(free * 0.5)
""",
    # Cached memory is free in total but not in one piece: requests between 1 and 10 MiB share
    # 20 MiB segments, and a segment with one live tensor left cannot be given back.
    "fragmented_cache": """
small = []
while True:
    try:
        small.append(take(6 * 2**20))
    except torch.OutOfMemoryError:
        break
del small[1::3], small[1::2]
take(8 * GIB)
""",
    # A memory-fraction limit set by the program.
    "memory_fraction": """
torch.cuda.set_per_process_memory_fraction(0.25, 0)
take(total * 0.4)
""",
    # ComfyUI's default allocator backend (its cuda_malloc.py turns it on).
    "async_backend_larger_than_card": "take(total * 1.5)",
    "async_backend_memory_fraction": """
torch.cuda.set_per_process_memory_fraction(0.25, 0)
take(total * 0.4)
""",
    "expandable_segments": """
held = [take(GIB) for _ in range(int(free / GIB) - 1)]
take(4 * GIB)
""",
    # A fresh process cannot even create its CUDA context: another one took everything.
    "context_creation_fails": "CONTEXT",
    # cuBLAS needs a workspace when the card is already full.
    "cublas_workspace": """
a = torch.randn(64, 64, device="cuda")
held = []
while True:
    try:
        held.append(take(256 * 2**20))
    except torch.OutOfMemoryError:
        break
while True:
    try:
        held.append(take(2**20))
    except torch.OutOfMemoryError:
        break
torch.cuda.empty_cache()
b = a.half() @ a.half()
torch.cuda.synchronize()
""",
}

ENV = {
    "async_backend_larger_than_card": {"PYTORCH_CUDA_ALLOC_CONF": "backend:cudaMallocAsync"},
    "async_backend_memory_fraction": {"PYTORCH_CUDA_ALLOC_CONF": "backend:cudaMallocAsync"},
    "expandable_segments": {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"},
}

HOG = """
import subprocess
def subprocess_hog(share):
    code = (
        "import torch, sys, time\\n"
        f"x = torch.empty(int(torch.cuda.mem_get_info(0)[1] * {share}), dtype=torch.uint8, device='cuda')\\n"
        "print('ready', flush=True)\\n"
        "time.sleep(120)\\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    p.stdout.readline()
    return p
"""


def run(name, body):
    env = dict(os.environ, **ENV.get(name, {}))
    if body == "CONTEXT":
        hog = subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent("""
            held = []
            for size in (GIB, 256 * 2**20, 16 * 2**20, 2 * 2**20):
                while True:
                    try:
                        held.append(take(size))
                    except torch.OutOfMemoryError:
                        break
            print("full", flush=True)
            time.sleep(120)
        """)], stdout=subprocess.PIPE, env=env)
        hog.stdout.readline()
        code = "import torch\nx = torch.zeros(1, device='cuda')\nprint(x)\n"
        try:
            result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, env=env, timeout=60)
        finally:
            hog.kill()
    else:
        code = PRELUDE + HOG + textwrap.dedent(body)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env=env, timeout=60)
    path = os.path.join(out_dir, f"{name}.log")
    with open(path, "w") as f:
        f.write(result.stderr)
    last = [l for l in result.stderr.splitlines() if l.strip()][-1:] or ["(no error)"]
    print(f"{name}: exit {result.returncode}: {last[0][:160]}", flush=True)


import torch  # noqa: E402

print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}",
      flush=True)
for name, body in SCENARIOS.items():
    try:
        run(name, body)
    except Exception as e:  # one scenario failing to run must not lose the others
        print(f"{name}: could not run: {e}", flush=True)
