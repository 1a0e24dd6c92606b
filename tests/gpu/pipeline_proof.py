"""A Wan2.x-style diffusers pipeline with the vramdeck agent, on a real GPU: NVML before and after
`cache` and `unload` (both PipelineUnload modes), and an unload asked for mid-generation.

    python pipeline_proof.py VRAMDECK_BINARY

Needs torch with CUDA and diffusers. Nothing is downloaded: the pipeline is built from diffusers'
own WanTransformer3DModel (two experts, as Wan2.2 A14B switches from a high-noise to a
low-noise expert at a boundary step), AutoencoderKLWan and FlowMatchEulerDiscreteScheduler, with
random weights and small configurations (about 1.6 GB of bf16 weights per expert).
"""

import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "packaging", "python", "comfyui-vramdeck"))

import torch  # noqa: E402
from diffusers import (AutoencoderKLWan, DiffusionPipeline,  # noqa: E402
                       FlowMatchEulerDiscreteScheduler, WanTransformer3DModel)

import vramdeck_agent  # noqa: E402
from vramdeck_agent.pipelines import PipelineUnload  # noqa: E402

VRAMDECK = os.path.abspath(sys.argv[1])
AGENTS = f"/tmp/vramdeck-pipeline-proof-{os.getpid()}"
os.environ["VRAMDECK_AGENT_DIR"] = AGENTS
LABEL = "Wan2.2 I2V A14B (two 14B experts)"  # a preset's name: vramdeck calibrates it


class TwoExpertVideoPipeline(DiffusionPipeline):
    """The shape of Wan2.2's pipeline: a high-noise expert for the early steps, a low-noise
    expert after the boundary, then the VAE."""

    def __init__(self, transformer, transformer_2, vae, scheduler):
        super().__init__()
        self.register_modules(transformer=transformer, transformer_2=transformer_2, vae=vae,
                              scheduler=scheduler)

    @torch.no_grad()
    def __call__(self, steps=8, frames=6, height=30, width=52, boundary=0.875):
        device = self.transformer.device
        latents = torch.randn(1, 16, frames, height, width, device=device, dtype=torch.bfloat16)
        prompt = torch.randn(1, 512, 4096, device=device, dtype=torch.bfloat16)
        self.scheduler.set_timesteps(steps, device=device)
        for t in self.scheduler.timesteps:
            expert = self.transformer if t >= boundary * 1000 else self.transformer_2
            noise = expert(latents, t.expand(1), prompt, return_dict=False)[0]
            latents = self.scheduler.step(noise, t, latents, return_dict=False)[0]
        return self.vae.decode(latents.to(self.vae.dtype), return_dict=False)[0]


def expert(seed):
    torch.manual_seed(seed)
    return WanTransformer3DModel(num_attention_heads=16, attention_head_dim=128, ffn_dim=8192,
                                 num_layers=12, text_dim=4096).to(torch.bfloat16)


def build():
    torch.manual_seed(0)
    return TwoExpertVideoPipeline(expert(1), expert(2), AutoencoderKLWan().to(torch.bfloat16),
                                  FlowMatchEulerDiscreteScheduler(shift=5.0))


PIPES = {}
GENERATING = threading.Event()


def get_pipe():
    """The WebUI's loader: builds the pipeline once, brings it back to the GPU on use."""
    if "wan" not in PIPES:
        PIPES["wan"] = build()
    return PIPES["wan"].to("cuda")


def generate(steps=8):
    GENERATING.set()
    try:
        started = time.perf_counter()
        video = get_pipe()(steps=steps)
        torch.cuda.synchronize()
        return video.shape, time.perf_counter() - started
    finally:
        GENERATING.clear()


def nvml_mib():
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, used = [x.strip() for x in line.split(",")]
        if int(pid) == os.getpid():
            return int(used)
    return 0


ROWS = []


def row(step):
    mib = lambda b: b / 2**20  # noqa: E731
    ROWS.append((step, nvml_mib(), mib(torch.cuda.memory_allocated()),
                 mib(torch.cuda.memory_reserved())))
    print(f"-- {step}: NVML {ROWS[-1][1]} MiB, torch allocated {ROWS[-1][2]:.0f} MiB, "
          f"reserved {ROWS[-1][3]:.0f} MiB", flush=True)


def vramdeck(*args):
    out = subprocess.run([VRAMDECK, *args, "--comfyui", "none"], capture_output=True, text=True,
                         timeout=60)
    text = (out.stdout + out.stderr).strip()
    print(text, flush=True)
    return text


print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}", flush=True)
torch.cuda.init()
hook = PipelineUnload(PIPES, mode="cpu", busy=GENERATING.is_set)
agent = vramdeck_agent.start(unload=hook, label=LABEL, unload_says=hook.says())
assert agent is not None
row("agent started, CUDA initialised")
shape, took = generate()
print(f"generated {tuple(shape)} in {took:.1f} s (first run, weights built on the CPU)")
row("after the first generation")
vramdeck("agents")
vramdeck("free", "--level", "cache")
row("after vramdeck free --level cache")
vramdeck("free", "--level", "unload")
row("after vramdeck free --level unload (mode cpu)")
shape, took = generate()
print(f"generated again in {took:.1f} s (pipelines back from system RAM)")
row("after a generation (back on the GPU)")
hook.mode = "drop"
vramdeck("free", "--level", "unload")
row("after vramdeck free --level unload (mode drop)")

# An unload asked for during a generation waits for its end.
hook.mode = "cpu"
get_pipe()
worker = threading.Thread(target=generate, kwargs={"steps": 40})
worker.start()
while not GENERATING.is_set():
    time.sleep(0.01)
freeing = subprocess.Popen([VRAMDECK, "free", "--level", "unload", "--comfyui", "none"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
time.sleep(1.0)
row("1 s after an unload asked for during a generation")
worker.join()
print(freeing.communicate(timeout=90)[0].strip(), flush=True)
time.sleep(0.5)
row("after the generation ended")

print("\n| step | NVML (process) MiB | torch allocated MiB | torch reserved MiB |")
print("|---|---:|---:|---:|")
for step, nvml, allocated, reserved in ROWS:
    print(f"| {step} | {nvml:,} | {allocated:,.0f} | {reserved:,.0f} |")
agent.stop()
