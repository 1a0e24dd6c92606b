"""Proof against a REAL ComfyUI (not run in CI, where ComfyUI's source is not available) that the
vramdeck node asks for room before a prompt, in ComfyUI's own prompt worker, and that the
prompt waits for the answer:

  1. an idle app (the stand-in WebUI of tests/fixtures/fake_webui.py, a real Python agent
     holding a 6 GiB model and 10 GiB of cache) and `vramdeck serve --make-room models` run;
  2. ComfyUI runs with the vramdeck node linked into custom_nodes; a prompt loads the
     SD1.5-shaped proof UNet (make_proof_unet.py, 1.6 GiB in fp16) through ComfyUI's own
     UNETLoader, which this ComfyUI does not hold yet: the node asks for the weights'
     worth, serve frees the idle app, and only then does the prompt's first node run;
  3. the same prompt again: the UNet is loaded, the node asks nothing.

usage: room_proof.py --comfyui DIR --vramdeck BIN [--python PY] [--cpu]
"""

import argparse
import os
import subprocess
import sys
import tempfile

from proof_common import (HERE, PROOF_MODEL, REPO, agent_hello, check,
                          check_loaded_model_asks_nothing, exit_with_verdict, finish, free_port,
                          read, run_prompt, say, start_comfyui, unet_graph)


args = argparse.ArgumentParser()
args.add_argument("--comfyui", required=True)
args.add_argument("--vramdeck", required=True)
args.add_argument("--python", default=sys.executable)
args.add_argument("--cpu", action="store_true")
opts = args.parse_args()
work = tempfile.mkdtemp(prefix="room-proof-")  # 0700, as agent directories must be
agents = os.path.join(work, "agents")
env = dict(os.environ, VRAMDECK_AGENT_DIR=agents, PYTHONUNBUFFERED="1",
           VRAMDECK_CONFIG_DIR=os.path.join(work, "config"),
           VRAMDECK_DATA_DIR=os.path.join(work, "data"))
started = []


try:
    model_path = os.path.join(opts.comfyui, "models", "diffusion_models", PROOF_MODEL)
    if not os.path.exists(model_path):
        say("building the proof UNet with ComfyUI's own classes ...")
        subprocess.run([opts.python, os.path.join(HERE, "make_proof_unet.py"), opts.comfyui,
                        model_path], check=True)
    weights = os.path.getsize(model_path)

    # 1. The idle app and vramdeck serve, making room by caches, then idle models.
    idle = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "fixtures",
                                                          "fake_webui.py"), "idle app"],
                            env=env, stdout=subprocess.PIPE, text=True)
    started.append(idle)
    idle_pid = int(idle.stdout.readline().split()[1])
    serve_log = os.path.join(work, "serve.log")
    serve = subprocess.Popen([opts.vramdeck, "serve", "--listen",
                              f"127.0.0.1:{free_port()}", "--make-room", "models",
                              "--comfyui", "none", "--ollama", "none", "--a1111", "none"],
                             env=env, stdout=open(serve_log, "w"), stderr=subprocess.STDOUT)
    started.append(serve)

    # 2. ComfyUI with the node, on loopback.
    comfy, port, comfy_log = start_comfyui(opts.comfyui, opts.python, work, env,
                                           ["--cpu"] if opts.cpu else [])
    started.append(comfy)
    before = agent_hello(agents, idle_pid)["reserved"]


    # 3. The first prompt: the UNet is not loaded, so the node asks and the prompt waits.
    run_prompt(port, unet_graph("first"), "first")
    log = read(comfy_log)
    asked = log.find("vramdeck: made room for ComfyUI prompt")
    ran = log.find("vramdeck proof: model loaded, holding the prompt 1.0 s (first)")
    say(f"ComfyUI's log: {log[asked:log.find(chr(10), asked)] if asked >= 0 else '(no answer)'}")
    check("the node asked for the prompt's weights and vramdeck made room",
          asked >= 0, f"{weights / 1024**3:.1f} GiB of weights")
    check("the answer came before the prompt's model node ran", 0 <= asked < ran)
    served = read(serve_log)
    check("serve said who gave way", "made room for ComfyUI prompt (1 model file" in served
          and f"pid {idle_pid}, idle app" in served, served.strip()[-400:])
    after = agent_hello(agents, idle_pid)["reserved"]
    check("the idle app gave memory back (its cache was enough)", after < before,
          f"its torch reserved {before / 1024**3:.1f} → {after / 1024**3:.1f} GiB")

    # 4. The same prompt again: ComfyUI holds the UNet, so nothing is asked.
    check_loaded_model_asks_nothing(port, unet_graph("second"), comfy_log, serve_log)
finally:
    finish(started, work)

exit_with_verdict()
