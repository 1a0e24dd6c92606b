"""Proof on a real NVIDIA GPU against a REAL ComfyUI (its public source; not run in CI) that
making room gives a prompt the room it needs and no more, and that a workflow naming more
weights than the card gets a sentence instead of every other app evicted (issue 32):

  1. another app (gpu_holder.py: real torch, the real agent) holds an 8 GiB model and a cache
     that leaves ~2 GiB of the card free; `vramdeck serve --make-room models` runs on NVML;
     ComfyUI runs on the GPU with the vramdeck node;
  2. a prompt naming a model file larger than the whole card (sparse: it takes no disk): the
     node says ComfyUI offloads part of such weights and asks only for its working room, which
     is free: nothing is asked of vramdeck, nobody gives way (the loader then fails on the
     file, which is not a real model: expected);
  3. the other app's cache grows until ~0.8 GiB is free; a prompt loading the 1.6 GiB proof
     UNet: the node asks for 1.6 GiB, vramdeck empties the other app's cache (enough, so its
     model stays loaded), and only then does the prompt's model node run; NVML before/after;
  4. the same prompt again: the UNet is loaded, nothing is asked.

usage: gpu_room_proof.py --comfyui DIR --vramdeck BIN [--python PY]
"""

import argparse
import os
import subprocess
import sys
import tempfile

from proof_common import (HERE, PROOF_MODEL, agent_hello, check,
                          check_loaded_model_asks_nothing, exit_with_verdict, finish, free_port,
                          read, run_prompt, say, start_comfyui, unet_graph)

TOO_BIG = "vramdeck_larger_than_the_card.safetensors"
GIB = 1024**3

args = argparse.ArgumentParser()
args.add_argument("--comfyui", required=True)
args.add_argument("--vramdeck", required=True)
args.add_argument("--python", default=sys.executable)
opts = args.parse_args()
work = tempfile.mkdtemp(prefix="gpu-room-proof-")  # 0700, as agent directories must be
agents = os.path.join(work, "agents")
env = dict(os.environ, VRAMDECK_AGENT_DIR=agents, PYTHONUNBUFFERED="1",
           VRAMDECK_CONFIG_DIR=os.path.join(work, "config"),
           VRAMDECK_DATA_DIR=os.path.join(work, "data"))
started = []


def nvml_apps():
    """nvidia-smi's compute apps: {pid: MiB}."""
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
    return {int(p): int(m) for p, m in (line.split(",") for line in out.strip().splitlines())}


def card():
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used,memory.total",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
    used, total = (int(x) for x in out.splitlines()[0].split(","))
    return used, total


def show(title, who):
    used, total = card()
    apps = nvml_apps()
    say(f"  NVML {title}: card {used:,} of {total:,} MiB used; " +
        "; ".join(f"{name} (pid {pid}) {apps.get(pid, 0):,} MiB" for name, pid in who))
    return apps




try:
    models = os.path.join(opts.comfyui, "models", "diffusion_models")
    model_path = os.path.join(models, PROOF_MODEL)
    if not os.path.exists(model_path):
        say("building the proof UNet with ComfyUI's own classes ...")
        subprocess.run([opts.python, os.path.join(HERE, "make_proof_unet.py"), opts.comfyui,
                        model_path], check=True)
    _, total_mib = card()
    with open(os.path.join(models, TOO_BIG), "wb") as f:
        f.truncate((total_mib + 8 * 1024) * 1024 * 1024)  # the card and 8 GiB more

    # 1. The app holding the card, serve on NVML, ComfyUI on the GPU.
    holder = subprocess.Popen([opts.python, os.path.join(HERE, "gpu_holder.py"), "8"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    started.append(holder)
    holder_pid = int(holder.stdout.readline().split()[1])

    def tell(command):
        holder.stdin.write(command + "\n")
        holder.stdin.flush()
        return holder.stdout.readline().strip()

    serve_log = os.path.join(work, "serve.log")
    serve = subprocess.Popen([opts.vramdeck, "serve", "--listen", f"127.0.0.1:{free_port()}",
                              "--make-room", "models", "--comfyui", "none", "--ollama", "none",
                              "--a1111", "none"],
                             env=env, stdout=open(serve_log, "w"), stderr=subprocess.STDOUT)
    started.append(serve)
    comfy, port, comfy_log = start_comfyui(opts.comfyui, opts.python, work, env)
    started.append(comfy)
    who = [("the other app", holder_pid), ("ComfyUI", comfy.pid)]
    say(f"the other app: {tell('fill 2.0')}")
    before = show("before the too-big prompt", who)

    # 2. A prompt naming more weights than the card.
    run_prompt(port, unet_graph("too big", TOO_BIG), "too big", expect="error")
    log = read(comfy_log)
    line = next((ln for ln in log.splitlines() if "only its working room" in ln), "")
    say(f"ComfyUI's log: {line.strip()}")
    check("the node said the weights outgrow the card and asked only for the working room",
          bool(line) and f"{(total_mib + 8 * 1024) / 1024:.1f} GiB of weights" in line)
    check("nothing was asked of vramdeck", "made room" not in read(serve_log)
          and "vramdeck: made room" not in log)
    after = show("after the too-big prompt", who)
    check("the other app gave nothing away (NVML)",
          abs(after.get(holder_pid, 0) - before.get(holder_pid, 0)) < 64,
          f"{before.get(holder_pid, 0):,} → {after.get(holder_pid, 0):,} MiB")
    check("its model is still loaded", "model loaded" in tell("show"))

    # 3. Almost nothing free: a prompt whose 1.6 GiB UNet does not fit.
    say(f"the other app: {tell('fill 0.8')}")
    before = show("before the UNet prompt", who)
    reserved_before = agent_hello(agents, holder_pid)["reserved"]
    run_prompt(port, unet_graph("first"), "first")
    log = read(comfy_log)
    asked = log.find("vramdeck: made room for ComfyUI prompt")
    ran = log.find("vramdeck proof: model loaded, holding the prompt 1.0 s (first)")
    say(f"ComfyUI's log: {log[asked:log.find(chr(10), asked)] if asked >= 0 else '(no answer)'}")
    check("the node asked for the UNet's 1.6 GiB and vramdeck made room",
          asked >= 0 and "(1.6 GiB needed)" in log[asked:log.find(chr(10), asked)])
    check("the answer came before the prompt's model node ran", 0 <= asked < ran)
    served = read(serve_log)
    check("serve said who gave way", f"pid {holder_pid}, idle app (holds the card)" in served,
          served.strip()[-400:])
    after = show("after the UNet prompt", who)
    reserved_after = agent_hello(agents, holder_pid)["reserved"]
    state = tell("show")
    say(f"the other app: {state}")
    check("its cache was enough: its 8 GiB model stayed loaded", "model loaded" in state,
          f"torch reserved {reserved_before / GIB:.1f} → {reserved_after / GIB:.1f} GiB")
    check("NVML shows the memory moving from the other app to ComfyUI",
          after.get(holder_pid, 0) < before.get(holder_pid, 0)
          and after.get(comfy.pid, 0) > before.get(comfy.pid, 0))

    # 4. The same prompt again: ComfyUI holds the UNet, so nothing is asked.
    check_loaded_model_asks_nothing(port, unet_graph("second"), comfy_log, serve_log)
finally:
    finish(started, work)

exit_with_verdict()
