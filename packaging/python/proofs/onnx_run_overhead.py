"""What tracking costs a run: the same tiny CPU session run N times before and after the agent
wraps InferenceSession (the smallest model makes the wrapper's share as large as it gets).

    python onnx_run_overhead.py [N]
"""

import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(os.path.dirname(HERE), "comfyui-vramdeck"),
                os.path.join(os.path.dirname(HERE), "tests")]

import numpy  # noqa: E402
import onnxruntime  # noqa: E402

from onnx_models import matmul_chain  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
path = matmul_chain(os.path.join(tempfile.mkdtemp(), "tiny.onnx"), size=8)
x = {"x": numpy.ones((1, 8), numpy.float32)}


def per_run_us(session):
    for _ in range(1000):
        session.run(None, x)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(N):
            session.run(None, x)
        best = min(best, (time.perf_counter() - started) / N * 1e6)
    return best


plain = per_run_us(onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]))
from vramdeck_agent import _onnx  # noqa: E402

assert _onnx.tracker().available
tracked = per_run_us(onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]))
print(f"onnxruntime {onnxruntime.__version__}: {plain:.2f} us per run untracked, "
      f"{tracked:.2f} us tracked (+{tracked - plain:.2f} us, {tracked / plain:.3f}x)")
