"""Proof against a REAL ComfyUI (not run in CI, where ComfyUI's source is not available): starts
ComfyUI from its published source on loopback with the vramdeck node linked into custom_nodes,
loads an SD1.5-shaped UNet (random weights, built by make_proof_unet.py with ComfyUI's own
classes) through ComfyUI's own UNETLoader and model management, and checks with the vramdeck
binary what each level does:

  1. the node loads when linked (and, in a second start, when copied), and reports ComfyUI's port;
  2. `vramdeck free --level cache` leaves the model loaded;
  3. `vramdeck free --level unload` unloads it;
  4. an unload asked for while a prompt runs is deferred: it happens after the prompt ends, never
     inside it, and `vramdeck free` waits for it and measures then;
  5. without the node, cache leaves ComfyUI alone and unload goes through POST /free;
  6. at ComfyUI's default address (no --comfyui: localhost, ports 8188 and 8000), with the node,
     every request ComfyUI receives and every flag set on its queue is captured: each action is
     one flag and no POST /free, two unloads at once set one flag, and no flag is left behind.

On a GPU it prints NVML (nvidia-smi) memory used before and after each step.

usage: real_comfyui_proof.py --comfyui DIR --vramdeck BIN [--python PY] [--cpu] [--hold S]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from proof_common import check, failures, free_port, say

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NODE = os.path.join(REPO, "packaging", "python", "comfyui-vramdeck")
PROOF_NODE = os.path.join(HERE, "proof_node")
MODEL = "vramdeck_proof_unet.safetensors"

args = argparse.ArgumentParser()
args.add_argument("--comfyui", required=True)
args.add_argument("--vramdeck", required=True)
args.add_argument("--python", default=sys.executable)
args.add_argument("--cpu", action="store_true")
args.add_argument("--hold", type=float, default=15.0)
args.add_argument("--log-dir", default=None)
opts = args.parse_args()
log_dir = opts.log_dir or tempfile.mkdtemp(prefix="comfy-proof-")
os.makedirs(log_dir, exist_ok=True)



def nvml_used():
    """memory.used of GPU 0 as nvidia-smi prints it, or None without a GPU."""
    if opts.cpu or not shutil.which("nvidia-smi"):
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                          "-i", "0"], capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[0])


class Comfy:
    def __init__(self, node_install, name, port=None):
        self.port = port or free_port()
        self.agents = tempfile.mkdtemp(prefix="agents-")  # 0700, as agent directories must be
        custom = os.path.join(opts.comfyui, "custom_nodes")
        self.node_path = os.path.join(custom, "vramdeck")
        for path in (self.node_path, os.path.join(custom, "vramdeck_proof")):
            if os.path.islink(path) or os.path.isfile(path):
                os.unlink(path)
            elif os.path.isdir(path):
                shutil.rmtree(path)
        if node_install == "link":
            os.symlink(NODE, self.node_path)
        elif node_install == "copy":
            shutil.copytree(NODE, self.node_path, ignore=shutil.ignore_patterns("__pycache__"))
        os.symlink(PROOF_NODE, os.path.join(custom, "vramdeck_proof"))
        self.log_path = os.path.join(log_dir, f"comfyui-{name}.log")
        cmd = [opts.python, "main.py", "--listen", "127.0.0.1", "--port", str(self.port),
               "--verbose", "DEBUG", "--disable-auto-launch"]
        if opts.cpu:
            cmd.append("--cpu")
        web = os.path.join(log_dir, "web")
        os.makedirs(web, exist_ok=True)
        try:
            import comfyui_frontend_package  # noqa: F401
        except ImportError:
            cmd += ["--front-end-root", web]  # the web page is not what is being proven
        self.capture = os.path.join(log_dir, f"capture-{name}.jsonl")
        env = dict(os.environ, VRAMDECK_AGENT_DIR=os.path.join(self.agents, "agents"),
                   PYTHONUNBUFFERED="1", VRAMDECK_PROOF_CAPTURE=self.capture)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=opts.comfyui, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                self.get("/system_stats")
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"ComfyUI exited; see {self.log_path}:\n" + self.tail())
                time.sleep(0.5)
        else:
            raise SystemExit("ComfyUI did not start in 180 s:\n" + self.tail())

    def tail(self, n=30):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-n:])

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return json.loads(r.read() or b"null")

    def post(self, path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def prompt(self, seconds, tag):
        graph = {
            "1": {"class_type": "UNETLoader",
                  "inputs": {"unet_name": MODEL, "weight_dtype": "default"}},
            "2": {"class_type": "VramdeckProofHold",
                  "inputs": {"model": ["1", 0], "seconds": seconds, "tag": tag}},
        }
        return self.post("/prompt", {"prompt": graph, "client_id": "vramdeck-proof"})["prompt_id"]

    def wait_done(self, prompt_id, timeout=600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in (history or {}):
                status = history[prompt_id].get("status", {})
                return status.get("status_str")
            time.sleep(0.2)
        raise SystemExit(f"prompt {prompt_id} did not finish")

    def wait_log(self, text, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                if text in f.read():
                    return
            time.sleep(0.1)
        raise SystemExit(f"never logged {text!r}:\n" + self.tail())

    def agent_hello(self):
        """The node's agent, asked directly over its socket (what vramdeck reads)."""
        directory = os.path.join(self.agents, "agents")
        sockets = [f for f in os.listdir(directory) if f.endswith(".sock")] \
            if os.path.isdir(directory) else []
        if not sockets:
            return None
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(os.path.join(directory, sockets[0]))
            s.sendall(b'{"v":1,"id":1,"op":"hello"}\n')
            data = b""
            while not data.endswith(b"\n"):
                data += s.recv(65536)
        return json.loads(data)["agent"]

    def models_loaded(self):
        return self.agent_hello()["app"]["models_loaded"]

    def captured(self):
        """Requests and flags recorded so far (see proof_node)."""
        if not os.path.exists(self.capture):
            return []
        with open(self.capture) as f:
            return [json.loads(line) for line in f if line.strip()]

    def vramdeck(self, *argv, default_address=False):
        env = dict(os.environ, VRAMDECK_AGENT_DIR=os.path.join(self.agents, "agents"),
                   VRAMDECK_CONFIG_DIR=os.path.join(self.agents, "config"),
                   VRAMDECK_DATA_DIR=os.path.join(self.agents, "data"))
        started = time.monotonic()
        address = [] if default_address else ["--comfyui", f"127.0.0.1:{self.port}"]
        out = subprocess.run([opts.vramdeck, *argv, *address],
                             capture_output=True, text=True, env=env)
        took = time.monotonic() - started
        for line in (out.stdout + out.stderr).strip().splitlines():
            say(f"    | {line}")
        return out, took

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def nvml_step(label, before, after):
    if before is not None:
        say(f"    nvidia-smi memory.used {label}: {before} -> {after} MiB ({after - before:+d} MiB)")


model_path = os.path.join(opts.comfyui, "models", "diffusion_models", MODEL)
if not os.path.exists(model_path):
    say("== building the proof model with ComfyUI's own classes")
    os.makedirs(os.path.dirname(model_path), exist_ok=True)
    subprocess.run([opts.python, os.path.join(HERE, "make_proof_unet.py"), opts.comfyui,
                    model_path, "fp16"], check=True)

say(f"== ComfyUI with the vramdeck node LINKED into custom_nodes (logs in {log_dir})")
comfy = Comfy("link", "linked")
try:
    stats = comfy.get("/system_stats")
    say(f"    ComfyUI {stats['system'].get('comfyui_version')} on {stats['devices'][0]['name']}")
    check("the linked node started the agent", "vramdeck agent started for ComfyUI" in comfy.tail(400))
    hello = comfy.agent_hello()
    check("the agent reports ComfyUI and its port",
          hello and hello["app"]["name"] == "ComfyUI" and hello["app"]["port"] == comfy.port,
          json.dumps(hello and hello["app"]))
    comfy.vramdeck("agents")

    say("== a prompt loads the model through UNETLoader and ComfyUI's model management")
    idle = nvml_used()
    status = comfy.wait_done(comfy.prompt(0.0, "first"))
    loaded = comfy.agent_hello()["app"]
    check("the prompt ran", status == "success", status)
    check("the model is loaded", loaded["models_loaded"] >= 1,
          f"{loaded['models_loaded']} model(s), {loaded['models_bytes'] / 2**30:.2f} GiB on the device")
    with_model = nvml_used()
    nvml_step("idle -> model loaded", idle, with_model) if idle is not None else None

    say("== vramdeck free --level cache")
    before = nvml_used()
    out, _ = comfy.vramdeck("free", "--level", "cache")
    after = nvml_used()
    nvml_step("cache", before, after)
    check("cache leaves the model loaded", comfy.models_loaded() >= 1)
    check("cache did not unload (no unload in ComfyUI's log)",
          "Unloading" not in open(comfy.log_path).read().split("vramdeck proof: hold ended (first)")[-1])

    say("== vramdeck free --level unload")
    before = nvml_used()
    out, _ = comfy.vramdeck("free", "--level", "unload")
    after = nvml_used()
    nvml_step("unload", before, after)
    check("unload unloads the model", comfy.models_loaded() == 0)
    # On a CPU there is no VRAM to measure; on a GPU the drop must show.
    check("vramdeck reports the release", out.returncode == 0
          and (opts.cpu or "Released" in out.stdout), out.stdout.strip().splitlines()[-1])

    say(f"== an unload asked for while a prompt runs ({opts.hold:.0f} s hold)")
    running = comfy.prompt(opts.hold, "second")
    comfy.wait_log("holding the prompt", timeout=300)
    before = nvml_used()
    asked = time.monotonic()
    out, took = comfy.vramdeck("free", "--level", "unload")
    after = nvml_used()
    nvml_step("deferred unload, asked mid-prompt", before, after)
    comfy.wait_done(running)
    text = open(comfy.log_path).read()
    second = text.split("holding the prompt")[-1]
    ended_at = second.find("vramdeck proof: hold ended (second)")
    unloaded_at = second.find("Unloading")
    check("vramdeck said the unload waits for the prompt",
          "Waiting: ComfyUI will unload its models after the current prompt" in out.stderr,
          out.stderr.strip().splitlines()[0] if out.stderr.strip() else "")
    check("the unload happened after the prompt ended, never inside it",
          0 <= ended_at < unloaded_at, f"hold ended at offset {ended_at}, unload at {unloaded_at}")
    check("vramdeck waited for it and measured then",
          took >= opts.hold * 0.5 and ("Released" in out.stdout or "NVML" in out.stdout or opts.cpu),
          f"returned after {took:.1f} s")
    check("the model is unloaded afterwards", comfy.models_loaded() == 0)

    if not opts.cpu:
        say("== a prompt that runs out of memory: ComfyUI's own console output, for the analyser")
        mark = len(open(comfy.log_path).read())
        graph = {"1": {"class_type": "VramdeckProofAllocate", "inputs": {"gib": 4096.0}}}
        oom_id = comfy.post("/prompt", {"prompt": graph, "client_id": "vramdeck-proof"})["prompt_id"]
        status = comfy.wait_done(oom_id)
        history = comfy.get(f"/history/{oom_id}")[oom_id]["status"]
        captured = open(comfy.log_path).read()[mark:]
        with open(os.path.join(log_dir, "comfyui-oom-console.log"), "w") as f:
            f.write(captured)
        with open(os.path.join(log_dir, "comfyui-oom-history.json"), "w") as f:
            json.dump(history, f, indent=1)
        check("ComfyUI reported the out-of-memory error", status == "error", status)
finally:
    comfy.stop()

say("== ComfyUI with the vramdeck node COPIED into custom_nodes")
comfy = Comfy("copy", "copied")
try:
    check("the copied node started the agent", comfy.agent_hello() is not None
          and "vramdeck agent started for ComfyUI" in comfy.tail(400))
finally:
    comfy.stop()

say("== ComfyUI without the node (HTTP only)")
comfy = Comfy("none", "http-only")
try:
    comfy.wait_done(comfy.prompt(0.0, "http"))
    out, _ = comfy.vramdeck("free", "--level", "cache")
    check("cache leaves ComfyUI alone and says why", "cannot empty the cache" in out.stdout)
    check("no /free was sent for cache", "unload_models" not in comfy.tail(50).lower()
          and "Unloading" not in comfy.tail(50))
    before = nvml_used()
    out, _ = comfy.vramdeck("free", "--level", "unload")
    time.sleep(1)
    after = nvml_used()
    nvml_step("unload over HTTP", before, after)
    check("unload over HTTP unloaded the model", "Unloading" in comfy.tail(60), comfy.tail(5))
finally:
    comfy.stop()

def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


if port_free(8188):
    say("== at the default address (localhost: 8188 and 8000), with the node: one request per action")
    comfy = Comfy("copy", "default-address", port=8188)
    try:
        comfy.wait_done(comfy.prompt(0.0, "default"))

        def since(mark):
            return comfy.captured()[mark:]

        def frees(entries):
            return [e for e in entries if e.get("request") == "POST /free"]

        def flags(entries):
            return [e for e in entries if "set_flag" in e]

        mark = len(comfy.captured())
        out, _ = comfy.vramdeck("free", "--level", "cache", default_address=True)
        seen = since(mark)
        say(f"    captured: {[e.get('request') or e for e in seen]}")
        check("cache: no POST /free, no flag", not frees(seen) and not flags(seen))
        check("cache: ComfyUI is one entry, freed through its node, not 'left alone'",
              (out.stdout + out.stderr).count("ComfyUI") == 1 and "left alone" not in out.stdout,
              out.stdout.strip())
        mark = len(comfy.captured())
        out, took = comfy.vramdeck("free", "--level", "unload", default_address=True)
        seen = since(mark)
        say(f"    captured: {[e.get('request') or e for e in seen]}")
        check("unload: no POST /free, one flag", not frees(seen) and len(flags(seen)) == 1,
              json.dumps(seen))
        check("unload: done at once, no waiting", took < 20 and comfy.models_loaded() == 0,
              f"{took:.1f} s")
        comfy.wait_done(comfy.prompt(0.0, "again"))
        mark = len(comfy.captured())
        both = [subprocess.Popen([opts.vramdeck, "free", "--level", "unload"],
                                 env=dict(os.environ, VRAMDECK_AGENT_DIR=os.path.join(
                                     comfy.agents, "agents"),
                                     VRAMDECK_CONFIG_DIR=os.path.join(comfy.agents, "config")),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for _ in range(2)]
        started = time.monotonic()
        outputs = [p.communicate(timeout=120)[0] for p in both]
        took = time.monotonic() - started
        seen = since(mark)
        say(f"    two unloads at once: {[e.get('request') or e for e in seen]} in {took:.1f} s")
        check("two unloads at once: one flag, no POST /free", len(flags(seen)) == 1
              and not frees(seen), json.dumps(seen))
        check("no flag left on ComfyUI's queue, nothing waits", took < 30,
              " | ".join(o.strip().splitlines()[-1] for o in outputs if o.strip()))
        # The leftover-flag check: the next prompt keeps its model.
        comfy.wait_done(comfy.prompt(0.0, "after"))
        time.sleep(2)
        check("the next prompt's model stays loaded (no leftover flag fired)",
              comfy.models_loaded() >= 1)
    finally:
        comfy.stop()
else:
    say("== skipped the default-address step: port 8188 is taken")

say(f"== {'ALL PASSED' if not failures else 'FAILED: ' + '; '.join(failures)} (logs in {log_dir})")
sys.exit(1 if failures else 0)
