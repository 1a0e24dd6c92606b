"""Proof against a real llama.cpp llama-server in router mode (built by the person running this
from llama.cpp's public source; nothing here builds it): vramdeck lists what the router holds
and frees it while a request streams, waiting for the request instead of cutting it; on an
NVIDIA GPU, NVML names the router's model process after the engine and shows the memory go.

    python3 real_llama_server_proof.py --llama-server PATH --vramdeck PATH [--gpu]

Models come from tiny_gguf.py beside this file (random weights; the `gguf` package from PyPI).
Prints one line per check and "ALL PASS" at the end, or the first failure; exits non-zero on
failure.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return json.load(r)


def statuses(port):
    return {m["id"]: m["status"]["value"] for m in get(port, "/models")["data"]}


def gpu_used_mib():
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if not ok:
        sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--llama-server", required=True)
    p.add_argument("--vramdeck", required=True)
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--tokens", type=int, default=2500)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="vramdeck-llama-proof-")
    models = os.path.join(work, "models")
    size = ["--embd", "2048", "--layers", "16"] if a.gpu else ["--embd", "512", "--layers", "8"]
    subprocess.run([sys.executable, os.path.join(HERE, "tiny_gguf.py"), models, "tiny-a", "tiny-b",
                    *size], check=True)
    port = free_port()
    args = [a.llama_server, "--models-dir", models, "--host", "127.0.0.1", "--port", str(port),
            "--ctx-size", "4096"]
    if a.gpu:
        args += ["--n-gpu-layers", "99"]
    before_mib = gpu_used_mib() if a.gpu else None
    router = subprocess.Popen(args, stdout=open(os.path.join(work, "router.log"), "w"),
                              stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                get(port, "/health")
                break
            except OSError:
                time.sleep(0.1)
        props = get(port, "/props")
        check(props.get("role") == "router", f"llama-server {props.get('build_info')} runs as a router")
        engines = ["--comfyui", "none", "--ollama", "none", "--a1111", "none",
                   "--engines", f"llama-server=127.0.0.1:{port}"]
        env = dict(os.environ, VRAMDECK_AGENT_DIR=os.path.join(work, "agents"),
                   VRAMDECK_CONFIG_DIR=os.path.join(work, "config"),
                   VRAMDECK_DATA_DIR=os.path.join(work, "data"), LC_ALL="C.UTF-8")

        # A streaming request loads tiny-a and keeps it at work.
        streamed = {"tokens": 0, "done": False, "error": None}

        def stream():
            body = json.dumps({"model": "tiny-a", "prompt": "hello", "n_predict": a.tokens,
                               "ignore_eos": True, "stream": True}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/completion", data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=600) as r:
                    for line in r:
                        if line.startswith(b"data: "):
                            event = json.loads(line[6:])
                            streamed["tokens"] += 1 if event.get("content") is not None else 0
                            if event.get("stop"):
                                streamed["done"] = True
                                streamed["predicted"] = event.get("timings", {}).get("predicted_n")
            except Exception as e:  # the stream cut is the failure this proof looks for
                streamed["error"] = repr(e)

        t = threading.Thread(target=stream)
        t.start()
        for _ in range(600):
            if statuses(port).get("tiny-a") == "loaded" and streamed["tokens"] > 5:
                break
            time.sleep(0.1)
        check(statuses(port)["tiny-a"] == "loaded", "tiny-a loaded by its first request")
        loaded_mib = gpu_used_mib() if a.gpu else None
        listed = subprocess.run([a.vramdeck, "agents", *engines], capture_output=True, text=True,
                                env=env).stdout
        print(listed, flush=True)
        check(f"llama.cpp server at 127.0.0.1:{port}" in listed and "tiny-a" in listed,
              "vramdeck agents lists the router and the model it holds")
        check("request at work" in listed, "vramdeck agents sees the request at work")
        if a.gpu:
            holder = [l for l in listed.splitlines() if "llama-server" in l and "pid" in l]
            check(any(l.rstrip().endswith("llama.cpp server") for l in holder),
                  f"NVML's llama-server process is named after the engine: {holder}")
        started = time.time()
        freed = subprocess.run([a.vramdeck, "free", "--level", "unload", "--wait", "300", *engines],
                               capture_output=True, text=True, env=env)
        waited = time.time() - started
        print(freed.stdout + freed.stderr, flush=True)
        t.join(600)
        check(streamed["error"] is None and streamed["done"],
              f"the stream ran to its end ({streamed.get('predicted')} tokens, error {streamed['error']})")
        check(streamed.get("predicted") == a.tokens, f"all {a.tokens} tokens came")
        check("frees its memory once its work has ended" in freed.stderr + freed.stdout,
              f"vramdeck waited for the request ({waited:.1f} s)")
        for _ in range(100):
            if statuses(port)["tiny-a"] == "unloaded":
                break
            time.sleep(0.1)
        check(statuses(port)["tiny-a"] == "unloaded", "tiny-a unloaded after the request")
        if a.gpu:
            time.sleep(1.0)
            after_mib = gpu_used_mib()
            print(f"NVML used: before the router {before_mib} MiB, model loaded {loaded_mib} MiB, "
                  f"after vramdeck's unload {after_mib} MiB", flush=True)
            check(after_mib < loaded_mib - 500, "NVML shows the model's memory gone")
        print("ALL PASS", flush=True)
    finally:
        router.terminate()
        router.wait(10)


if __name__ == "__main__":
    main()
