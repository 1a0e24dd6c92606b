"""Proof against the real FaceFusion (not run in CI: FaceFusion cannot be fetched there).

    python facefusion_real.py FACEFUSION_DIR VRAMDECK_BINARY [cpu|cuda] [weights_mib]

FACEFUSION_DIR is a FaceFusion checkout (3.x) whose requirements are installed in this Python
(gradio is not needed). The script is one "FaceFusion process": it imports FaceFusion's own
state_manager, process_manager, inference_manager and face_swapper, starts the agent through
vramdeck_agent.facefusion.install() as the launcher does, and has FaceFusion's real
face_swapper.get_inference_pool() build its onnxruntime session. The model is a random
MatMul chain of `weights_mib` written where FaceFusion looks for inswapper_128_fp16.onnx
(nothing is downloaded; the checkout's .assets is written to). Then the real vramdeck binary
lists the agent and frees at both levels, and this prints the process's GPU memory from
nvidia-smi (cuda) or the session count (cpu) around each step.
"""

import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
facefusion_dir, vramdeck = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
provider = sys.argv[3] if len(sys.argv) > 3 else "cpu"
weights_mib = int(sys.argv[4]) if len(sys.argv) > 4 else 64
os.chdir(facefusion_dir)
sys.path[:0] = [facefusion_dir, os.path.join(os.path.dirname(HERE), "comfyui-vramdeck"),
                os.path.join(os.path.dirname(HERE), "tests")]

import numpy  # noqa: E402
import onnxruntime  # noqa: E402

if provider == "cuda" and hasattr(onnxruntime, "preload_dlls"):
    # CUDA and cuDNN from the nvidia-* pip packages (FaceFusion's environment has them too);
    # onnxruntime looks for them only when asked to.
    onnxruntime.preload_dlls()

from facefusion import inference_manager, metadata, process_manager, state_manager  # noqa: E402
from facefusion.processors.modules.face_swapper import core as face_swapper  # noqa: E402
from onnx_models import matmul_chain  # noqa: E402

import vramdeck_agent.facefusion as launcher  # noqa: E402

AGENTS = os.path.join("/tmp", f"vramdeck-proof-{os.getpid()}")
# Rows of the input: on a GPU, enough that the activations (and so the arena) are large.
ROWS = 16384 if provider == "cuda" else 2048
os.environ["VRAMDECK_AGENT_DIR"] = AGENTS


def gpu_mib():
    if provider != "cuda":
        return None
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, used = [x.strip() for x in line.split(",")]
        if int(pid) == os.getpid():
            return int(used)
    return 0


def vramdeck_cli(*args):
    out = subprocess.run([vramdeck, *args], capture_output=True, text=True,
                         env=dict(os.environ, VRAMDECK_AGENT_DIR=AGENTS), timeout=60)
    return (out.stdout + out.stderr).strip()


def step(name):
    print(f"-- {name}: sessions in FaceFusion's pools {launcher.loaded_sessions()}, "
          f"process GPU memory {gpu_mib()} MiB", flush=True)


def run_every_session():
    pool = face_swapper.get_inference_pool()
    for session in pool.values():
        size = session.get_inputs()[0].shape[1]
        session.run(None, {"x": numpy.ones((ROWS, size), numpy.float32)})


print(f"FaceFusion {metadata.get('version')} from {facefusion_dir}; onnxruntime "
      f"{onnxruntime.__version__} {onnxruntime.get_available_providers()}", flush=True)
state_manager.init_item("execution_device_ids", [0])
state_manager.init_item("execution_providers", [provider])
state_manager.init_item("face_swapper_model", "inswapper_128_fp16")
state_manager.init_item("download_providers", ["github"])  # only names URLs; nothing is fetched
model_path = face_swapper.get_model_options()["sources"]["face_swapper"]["path"]
os.makedirs(os.path.dirname(model_path), exist_ok=True)
size = 2048
depth = max(1, weights_mib * 1024 * 1024 // (size * size * 4))
matmul_chain(model_path, size=size, depth=depth)
print(f"model: {model_path} ({os.path.getsize(model_path) >> 20} MiB of weights)")

agent = launcher.install()
assert agent is not None, "the agent did not start"
step("agent started, nothing loaded")
run_every_session()  # FaceFusion's own get_inference_pool builds the session; a run grows the arena
step("face_swapper pool built by FaceFusion and run once")
print(vramdeck_cli("agents", "--comfyui", "none"))

print(vramdeck_cli("free", "--level", "cache", "--comfyui", "none"))
step("after vramdeck free --level cache")
run_every_session()
step("after one more run (the arena grows again)")

print(vramdeck_cli("free", "--level", "unload", "--comfyui", "none"))
step("after vramdeck free --level unload")

# During a job the unload waits for the job's end.
process_manager.start()
stop = threading.Event()


def job():
    while not stop.is_set():
        run_every_session()


worker = threading.Thread(target=job)
worker.start()
time.sleep(1.0)
step("a job runs (pools built again)")
freeing = subprocess.Popen([vramdeck, "free", "--level", "unload", "--comfyui", "none"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=dict(os.environ, VRAMDECK_AGENT_DIR=AGENTS))
time.sleep(3.0)
step("3 s after an unload asked for during the job")
stop.set()
worker.join()
process_manager.end()
print(freeing.communicate(timeout=60)[0].strip())
step("after the job ended")
assert launcher.loaded_sessions() == 0
print("PROOF OK")
agent.stop()
