"""Another app really holding the card, for gpu_room_proof.py (never shipped): real torch on CUDA
with the real vramdeck agent, a "model" of MODEL_GIB it keeps (freed only by `unload`) and a
cache it grows on request.

argv: MODEL_GIB. Prints "READY <pid>". Then reads lines on stdin:
  fill GIB   grows torch's cache until the driver says GIB are free on the card (allocates a
             block and drops it: torch keeps it reserved, as a finished job's activations are)
  show       prints the model's and torch's figures
Each command is answered with one line starting "OK".
"""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "packaging", "python", "comfyui-vramdeck"))
import vramdeck_agent  # noqa: E402

GIB = 1024**3
held = {"model": torch.empty(int(float(sys.argv[1]) * GIB), dtype=torch.uint8, device="cuda")}


def unload():
    held.pop("model", None)


agent = vramdeck_agent.start(unload=unload, label="idle app (holds the card)")
print(f"READY {os.getpid()}", flush=True)
for line in sys.stdin:
    words = line.split()
    if words[:1] == ["fill"]:
        # One block of all that should be cached: torch would carve a smaller one out of the
        # cache it has, and the card's free memory would not move.
        torch.cuda.empty_cache()
        free, _total = torch.cuda.mem_get_info()
        grow = free - int(float(words[1]) * GIB)
        if grow > 0:
            block = torch.empty(grow, dtype=torch.uint8, device="cuda")
            del block
    free, total = torch.cuda.mem_get_info()
    print(f"OK model {'loaded' if 'model' in held else 'unloaded'}, "
          f"allocated {torch.cuda.memory_allocated() / GIB:.2f} GiB, "
          f"reserved {torch.cuda.memory_reserved() / GIB:.2f} GiB, "
          f"card free {free / GIB:.2f} of {total / GIB:.2f} GiB", flush=True)
