"""The FaceFusion launcher, run as its users run it (`python -m vramdeck_agent.facefusion ...`
from FaceFusion's folder), against a stand-in for FaceFusion 3.8.1 (fake_facefusion/README.md)
with real onnxruntime CPU sessions. The real FaceFusion: proofs/facefusion_real.py."""

import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.join(os.path.dirname(HERE), "comfyui-vramdeck")
FAKE = os.path.join(HERE, "fake_facefusion")
sys.path.insert(0, HERE)

from onnx_models import matmul_chain  # noqa: E402
from test_agent import call  # noqa: E402


class Launched:
    def __init__(self, tmp_path, cwd=FAKE, args=None, need=False):
        self.dir = str(tmp_path / "agents")
        model = matmul_chain(tmp_path / "inswapper_128_fp16.onnx", size=512, depth=8)
        env = dict(os.environ, PYTHONPATH=PACKAGE, VRAMDECK_AGENT_DIR=self.dir)
        if not need:  # no vramdeck here to answer: jobs would wait for one (up to 10 s)
            env["VRAMDECK_NO_NEED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vramdeck_agent.facefusion"] + (args or [model, "cpu"]),
            cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    def command(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok " + text

    @property
    def socket(self):
        return os.path.join(self.dir, f"{self.proc.pid}.sock")

    def hello(self):
        [reply] = call(self.socket, {"v": 1, "id": 1, "op": "hello"})
        return reply["agent"]

    def wait_until(self, predicate, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            info = self.hello()
            if predicate(info):
                return info
            time.sleep(0.05)
        raise AssertionError(f"never true; last status: {info}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def facefusion(tmp_path):
    f = Launched(tmp_path)
    assert f.proc.stdout.readline().strip() == "ready", f.proc.stderr.read()
    yield f
    f.close()


def test_the_agent_reports_facefusion_its_sessions_and_what_each_level_does(facefusion):
    facefusion.command("load")
    info = facefusion.hello()
    assert info["label"] == "FaceFusion (FP16)"  # the catalogue's preset: calibration follows
    assert info["app"]["name"] == "FaceFusion" and info["app"]["version"] == "3.8.1"
    assert info["app"]["models_loaded"] == 1
    assert info["levels"] == ["cache", "unload"]
    assert [s["model"] for s in info["onnxruntime"]["sessions"]] == ["inswapper_128_fp16.onnx"]
    assert "inference pools" in info["does"]["unload"]
    assert info["torch_missing_reason"]  # FaceFusion has no torch: said, not hidden


def test_unload_empties_the_pools_and_the_next_job_builds_them_again(facefusion):
    facefusion.command("load")
    [reply] = call(facefusion.socket, {"v": 1, "id": 2, "op": "free", "level": "unload"})
    freed = reply["freed"]
    assert freed["hooks_run"] == ["unload_inference_pools"] and freed["pending"] is None
    info = facefusion.hello()
    assert info["app"]["models_loaded"] == 0
    assert info["onnxruntime"]["sessions"] == []  # dropped, not just forgotten
    facefusion.command("job")
    facefusion.command("end")
    assert facefusion.hello()["app"]["models_loaded"] == 1


def test_an_unload_during_a_job_waits_for_the_job_to_end(facefusion):
    facefusion.command("job")
    [reply] = call(facefusion.socket, {"v": 1, "id": 3, "op": "free", "level": "unload"})
    assert "when the running job ends" in reply["freed"]["pending"]
    time.sleep(0.5)
    info = facefusion.hello()
    assert info["pending"] and info["app"]["models_loaded"] == 1  # the job keeps its models
    facefusion.command("end")
    info = facefusion.wait_until(lambda i: i["pending"] is None)
    assert info["app"]["models_loaded"] == 0
    assert info["onnxruntime"]["sessions"] == []


def test_a_job_asks_vramdeck_for_room_for_its_preset_and_waits_for_the_answer(tmp_path):
    import threading

    facefusion = Launched(tmp_path, need=True)
    try:
        assert facefusion.proc.stdout.readline().strip() == "ready", facefusion.proc.stderr.read()

        done = threading.Event()
        threading.Thread(target=lambda: (facefusion.command("job"), done.set()),
                         daemon=True).start()
        info = facefusion.wait_until(lambda i: i["need"] is not None)
        # The job is the preset FaceFusion is known by; vramdeck counts what it needs.
        assert info["need"]["preset"] == "FaceFusion (FP16)"
        assert info["need"]["bytes"] == 0 and info["need"]["free"] is None  # no torch here
        assert not done.wait(0.5), "the job started before vramdeck answered"
        assert facefusion.hello()["app"]["models_loaded"] == 0
        call(facefusion.socket, {"v": 1, "id": 9, "op": "need_answer", "need": info["need"]["id"],
                                 "granted": True, "message": "made room for FaceFusion (FP16)"})
        assert done.wait(10), "the job never started"
        facefusion.command("end")
    finally:
        facefusion.close()


def test_outside_facefusions_folder_the_launcher_says_where_to_run_it(tmp_path):
    f = Launched(tmp_path, cwd=str(tmp_path), args=["run"])
    try:
        _, err = f.proc.communicate(timeout=30)
        assert f.proc.returncode == 2
        assert "run this from FaceFusion's folder" in err
    finally:
        f.close()
