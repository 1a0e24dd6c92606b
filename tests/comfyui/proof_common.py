"""What the real-ComfyUI proof scripts share (room_proof.py, gpu_room_proof.py): checks that
print PASS/FAIL, loopback HTTP, waiting, the agent's hello, and starting ComfyUI from its source
with the vramdeck node (and the proof node) linked into custom_nodes. Never shipped; not run in
CI, where ComfyUI's source is not available."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NODE = os.path.join(REPO, "packaging", "python", "comfyui-vramdeck")
PROOF_NODE = os.path.join(HERE, "proof_node")
# The SD1.5-shaped UNet make_proof_unet.py writes into ComfyUI's diffusion_models.
PROOF_MODEL = "vramdeck_proof_unet.safetensors"
failures = []


def say(text):
    print(text, flush=True)


def check(what, ok, detail=""):
    say(f"{'PASS' if ok else 'FAIL'}: {what}{(' — ' + detail) if detail else ''}")
    if not ok:
        failures.append(what)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def wait_for(what, done, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.2)
    check(what, False, "timed out")
    return False


def agent_hello(agents, pid):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(os.path.join(agents, f"{pid}.sock"))
        s.sendall(b'{"v":1,"id":1,"op":"hello"}\n')
        data = b""
        while not data.endswith(b"\n"):
            data += s.recv(65536)
    return json.loads(data)["agent"]


def start_comfyui(comfyui, python, work, env, extra=()):
    """ComfyUI from its source folder with the vramdeck and proof nodes linked in; returns
    (process, port, log path) once /system_stats answers."""
    custom = os.path.join(comfyui, "custom_nodes")
    for name, source in (("vramdeck", NODE), ("vramdeck_proof", PROOF_NODE)):
        path = os.path.join(custom, name)
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)
        os.symlink(source, path)
    port = free_port()
    cmd = [python, "main.py", "--listen", "127.0.0.1", "--port", str(port),
           "--disable-auto-launch", *extra]
    try:
        import comfyui_frontend_package  # noqa: F401
    except ImportError:
        os.makedirs(os.path.join(work, "web"), exist_ok=True)
        cmd += ["--front-end-root", os.path.join(work, "web")]  # the page is not the point
    log = os.path.join(work, "comfyui.log")
    comfy = subprocess.Popen(cmd, cwd=comfyui, env=env, stdout=open(log, "w"),
                             stderr=subprocess.STDOUT)

    def up():
        try:
            http(port, "/system_stats")
            return True
        except OSError:
            if comfy.poll() is not None:
                raise SystemExit("ComfyUI exited:\n" + read(log)[-3000:])
            return False

    wait_for("ComfyUI starts", up)
    return comfy, port, log


def unet_graph(tag, name=PROOF_MODEL):
    """A prompt that loads the UNet `name` through ComfyUI's own UNETLoader, then has the proof
    node load it onto the device and hold the prompt a second."""
    return {"1": {"class_type": "UNETLoader",
                  "inputs": {"unet_name": name, "weight_dtype": "default"}},
            "2": {"class_type": "VramdeckProofHold",
                  "inputs": {"model": ["1", 0], "seconds": 1.0, "tag": tag}}}


def check_loaded_model_asks_nothing(port, graph, comfy_log, serve_log):
    """The same prompt again: ComfyUI holds its model, so the node asks for nothing."""
    run_prompt(port, graph, "second")
    check("a prompt whose model is loaded asks nothing",
          read(comfy_log).count("vramdeck: made room") == 1
          and read(serve_log).count("made room for") == 1)


def finish(started, work):
    """Stops what the proof started and says how it went; the exit status says it too."""
    stop(started)
    say(f"logs: {work}")


def exit_with_verdict():
    say("ALL PASS" if not failures else f"{len(failures)} FAILED: {failures}")
    raise SystemExit(1 if failures else 0)


def run_prompt(port, graph, tag, expect="success"):
    """Queues `graph` and waits for it to end; checks it ended as `expect`."""
    prompt_id = http(port, "/prompt", {"prompt": graph})["prompt_id"]

    def finished():
        history = http(port, f"/history/{prompt_id}") or {}
        return prompt_id in history
    wait_for(f"prompt {tag} finishes", finished, timeout=600)
    status = http(port, f"/history/{prompt_id}")[prompt_id]["status"]["status_str"]
    check(f"prompt {tag} ended: {expect}", status == expect, status)


def stop(started):
    for process in reversed(started):
        process.terminate()
    for process in started:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
