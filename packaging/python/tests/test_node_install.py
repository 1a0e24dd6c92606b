"""The ComfyUI node installed the ways ComfyUI users install nodes, each loaded the way ComfyUI
loads a custom node (tests/fixtures/fake_comfyui.py mirrors nodes.py's loader and the parts of
ComfyUI the node uses): a git clone of the node repository and the zip that
scripts/make-comfyui-node.sh makes, and two copies at once (the old Linux and Windows folder
names), which must start one agent, not two."""

import json
import logging
import os
import socket
import subprocess
import sys
import time
import zipfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FAKE = os.path.join(ROOT, "tests", "fixtures", "fake_comfyui.py")
SOURCE = os.path.join(ROOT, "packaging", "python", "comfyui-vramdeck")


@pytest.fixture(scope="module")
def made():
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "make-comfyui-node.sh")],
                   check=True, capture_output=True)
    return os.path.join(ROOT, "target", "comfyui-node")


def start_comfyui(tmp_path, folders):
    agents = tmp_path / "agents"
    log = tmp_path / "events.jsonl"
    args = [sys.executable, FAKE, str(log), "--node"]
    for f in folders:
        args += ["--node-dir", str(f)]
    env = dict(os.environ, VRAMDECK_AGENT_DIR=str(agents))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True)
    line = proc.stdout.readline()
    assert line.startswith("READY"), proc.stderr.read()
    return proc, agents


def hello(sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(str(sock_path))
    s.sendall(b'{"v": 1, "id": 1, "op": "hello"}\n')
    data = b""
    while not data.endswith(b"\n"):
        data += s.recv(65536)
    s.close()
    return json.loads(data)["agent"]


def sockets(agents, deadline_s=10):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = sorted(p for p in agents.glob("*.sock")) if agents.exists() else []
        if found:
            return found
        time.sleep(0.05)
    return []


@pytest.mark.parametrize("route", ["git clone", "zip"])
def test_the_published_node_installs_and_starts_the_agent(made, tmp_path, route):
    custom_nodes = tmp_path / "custom_nodes"
    custom_nodes.mkdir()
    if route == "git clone":
        # What ComfyUI-Manager's "Install via Git URL" does with the node repository.
        subprocess.run(["git", "clone", "-q", os.path.join(made, "comfyui-vramdeck"),
                        str(custom_nodes / "comfyui-vramdeck")], check=True)
    else:
        [zipped] = [f for f in os.listdir(made) if f.endswith(".zip")]
        with zipfile.ZipFile(os.path.join(made, zipped)) as z:
            z.extractall(custom_nodes)
    node = custom_nodes / "comfyui-vramdeck"
    assert (node / "__init__.py").exists() and (node / "vramdeck_agent").is_dir()
    proc, agents = start_comfyui(tmp_path, [node])
    try:
        [sock] = sockets(agents)
        info = hello(sock)
        assert info["app"]["name"] == "ComfyUI"
        assert info["levels"] == ["cache", "unload"]
    finally:
        proc.kill()
        proc.wait()


def test_two_copies_of_the_node_start_one_agent_and_say_so(tmp_path):
    # README once named the folder `vramdeck` on Linux and `comfyui_vramdeck` on Windows; a
    # user following both had two copies, and each started an agent.
    old_linux, old_windows = tmp_path / "vramdeck", tmp_path / "comfyui_vramdeck"
    for folder in (old_linux, old_windows):
        subprocess.run(["cp", "-r", SOURCE, str(folder)], check=True)
    proc, agents = start_comfyui(tmp_path, [old_linux, old_windows])
    try:
        found = sockets(agents)
        time.sleep(0.5)  # the second copy has loaded by now
        assert len(list(agents.glob("*.sock"))) == 1, found
        events = [json.loads(l) for l in (tmp_path / "events.jsonl").read_text().splitlines()]
        assert sum(e["event"] == "node_loaded" for e in events) == 2
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert "another copy of the vramdeck node" in err


def test_the_node_metadata_is_complete_for_the_registry():
    import tomllib

    with open(os.path.join(SOURCE, "pyproject.toml"), "rb") as f:
        meta = tomllib.load(f)
    project, comfy = meta["project"], meta["tool"]["comfy"]
    assert project["name"] == "comfyui-vramdeck"  # the folder name everywhere
    assert all(p.isdigit() for p in project["version"].split("."))
    assert project["urls"]["Repository"].startswith("https://github.com/")
    assert comfy["PublisherId"] and comfy["DisplayName"]
    logging.info("comfy-cli's own check: comfy node validate (README, closing note)")
