"""onnxruntime in the agent, with real CPU sessions (onnxruntime and onnx from PyPI).

A CPU session holds no VRAM, so these tests declare the CPU provider 'GPU' and 'rebuildable'
on the process's tracker: the rebuild, the wait for a running session and the report are the
same code a CUDA session goes through (proven on a GPU by proofs/onnx_gpu.py)."""

import os
import sys
import threading
import time

import numpy
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "comfyui-vramdeck"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnxruntime  # noqa: E402

from onnx_models import matmul_chain  # noqa: E402
from test_agent import call  # noqa: E402
from vramdeck_agent import Agent, _onnx  # noqa: E402
from vramdeck_agent.testing import FakeAllocator  # noqa: E402

CPU = "CPUExecutionProvider"


class NoTorch(FakeAllocator):
    """An allocator that says torch is absent, as in FaceFusion's environment."""

    available = False
    reason = "torch not importable: No module named 'torch'"

    def memory(self):
        return None


@pytest.fixture
def tracker():
    t = _onnx.tracker()
    assert t.available, t.reason
    saved = (t.rebuildable, t.gpu_providers)
    t.rebuildable, t.gpu_providers = (CPU,), (CPU,)
    yield t
    t.rebuildable, t.gpu_providers = saved


@pytest.fixture
def agent(tmp_path, tracker):
    a = Agent([], "onnx app", NoTorch(), str(tmp_path / "agents"), onnx=True)
    a._bind()
    threading.Thread(target=a._serve, daemon=True).start()
    yield a
    a.stop()


def session(path, **kwargs):
    return onnxruntime.InferenceSession(path, providers=[CPU], **kwargs)


def test_status_lists_sessions_with_providers_and_what_cache_does(agent, tmp_path):
    s = session(matmul_chain(tmp_path / "swapper.onnx"))
    [reply] = call(agent.path, {"v": 1, "id": 1, "op": "hello"})
    info = reply["agent"]
    ort = info["onnxruntime"]
    assert ort["version"] == onnxruntime.__version__
    assert CPU in ort["available_providers"]
    mine = [x for x in ort["sessions"] if x["model"] == "swapper.onnx"]
    assert mine == [{"model": "swapper.onnx", "providers": [CPU], "gpu_provider": CPU,
                     "arena": {}, "runs_in_flight": 0, "rebuildable": True}]
    assert "rebuilt while idle" in info["does"]["cache"]
    assert info["does"]["unload"] == "no unload hook registered: the same as cache"
    del s


def test_sessions_built_before_the_tracker_are_found_too(tmp_path):
    import gc

    fresh = _onnx.OnnxSessions()
    earlier = session(matmul_chain(tmp_path / "early.onnx"))
    owner = _onnx.tracker()  # the process's tracker, installed whatever ran before
    cls = onnxruntime.InferenceSession
    wrapped = ("__init__",) + _onnx.RUN_METHODS
    saved = {name: cls.__dict__[name] for name in wrapped if name in cls.__dict__}
    try:  # let the fresh tracker own the class for a moment, as in a new process
        del cls._vramdeck_tracker
        assert fresh.install()
        assert earlier in fresh.sessions()
    finally:
        for name in wrapped:
            if name in saved:
                setattr(cls, name, saved[name])
            elif name in cls.__dict__:  # wrapped here, inherited before
                delattr(cls, name)
        cls._vramdeck_tracker = owner
    gc.collect()


def test_cache_rebuilds_an_idle_session_which_keeps_working(agent, tmp_path):
    path = matmul_chain(tmp_path / "enhancer.onnx")
    s = session(path)
    x = numpy.ones((2, 64), numpy.float32)
    expected = s.run(None, {"x": x})[0]
    inner = s._sess
    [reply] = call(agent.path, {"v": 1, "id": 2, "op": "free", "level": "cache"})
    freed = reply["freed"]
    assert "enhancer.onnx" in freed["onnx"]["rebuilt"]
    assert s._sess is not inner  # a new C++ session: the old one and its arena are gone
    numpy.testing.assert_allclose(s.run(None, {"x": x})[0], expected, rtol=1e-6)
    assert freed["released_bytes"] is None  # no torch: vramdeck measures with NVML instead


def test_a_running_session_is_skipped_and_runs_wait_for_a_rebuild(agent, tracker, tmp_path):
    # A chain long enough that one run takes a while on a CPU.
    slow = session(matmul_chain(tmp_path / "slow.onnx", size=1024, depth=24))
    x = numpy.ones((256, 1024), numpy.float32)
    done = threading.Event()

    def job():
        while not done.is_set():
            slow.run(None, {"x": x})

    worker = threading.Thread(target=job)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            report = tracker.report()
            mine = [s for s in report["sessions"] if s["model"] == "slow.onnx"]
            if mine and mine[0]["runs_in_flight"]:
                break
            time.sleep(0.001)
        result = tracker.rebuild_idle()
        assert "slow.onnx (running)" in result["skipped"], result
    finally:
        done.set()
        worker.join()
    assert "slow.onnx" in tracker.rebuild_idle()["rebuilt"]


def test_runs_started_during_a_rebuild_wait_for_it(tracker, tmp_path):
    s = session(matmul_chain(tmp_path / "gate.onnx"))
    key = id(s)
    with tracker._cond:
        tracker._rebuilding.add(key)
    finished = threading.Event()

    def run():
        s.run(None, {"x": numpy.ones((1, 64), numpy.float32)})
        finished.set()

    threading.Thread(target=run, daemon=True).start()
    assert not finished.wait(0.3)  # held at the gate
    with tracker._cond:
        tracker._rebuilding.discard(key)
        tracker._cond.notify_all()
    assert finished.wait(5)


def test_a_session_with_an_io_binding_is_never_rebuilt(tracker, tmp_path):
    s = session(matmul_chain(tmp_path / "bound.onnx"))
    s.io_binding()
    result = tracker.rebuild_idle()
    assert any(x.startswith("bound.onnx") for x in result["skipped"]), result
    assert "bound.onnx" not in result["rebuilt"]


def bound_run(s, binding, x):
    """One run through an IOBinding, as hosts that keep tensors on the device do."""
    binding.bind_cpu_input("x", x)
    binding.bind_output("y")
    s.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()[0]


@pytest.mark.parametrize("made_by", ["io_binding()", "IOBinding(session)", "before tracking"])
def test_a_bound_session_is_not_rebuilt_and_its_binding_runs_after_a_release(
        tracker, tmp_path, made_by):
    # The attack review's finding: a binding the tracker did not see was rebuilt under, and
    # every later run_with_iobinding failed with "IOBinding must be used with the session
    # that created it".
    s = session(matmul_chain(tmp_path / "bound.onnx"))
    binding = s.io_binding() if made_by == "io_binding()" else onnxruntime.IOBinding(s)
    if made_by == "before tracking":
        tracker._bound.discard(s)  # as a binding made before the tracker was installed
    x = numpy.ones((2, 64), numpy.float32)
    expected = bound_run(s, binding, x)
    result = tracker.rebuild_idle()
    assert "bound.onnx (has an IOBinding: not rebuilt)" in result["skipped"], result
    assert "bound.onnx" not in result["rebuilt"]
    numpy.testing.assert_allclose(bound_run(s, binding, x), expected, rtol=1e-6)
    del binding


def test_a_run_with_iobinding_counts_as_a_run_in_flight(tracker, tmp_path):
    slow = session(matmul_chain(tmp_path / "busy.onnx", size=1024, depth=24))
    binding = slow.io_binding()
    x = numpy.ones((256, 1024), numpy.float32)
    done = threading.Event()

    def job():
        while not done.is_set():
            bound_run(slow, binding, x)

    worker = threading.Thread(target=job)
    worker.start()
    try:
        deadline, seen = time.monotonic() + 10, 0
        while time.monotonic() < deadline and not seen:
            mine = [s for s in tracker.report()["sessions"] if s["model"] == "busy.onnx"]
            seen = mine[0]["runs_in_flight"] if mine else 0
            time.sleep(0.001)
        assert seen == 1
    finally:
        done.set()
        worker.join()


def test_without_onnxruntime_the_agent_says_so_and_cache_is_gc_only(tmp_path, monkeypatch):
    fresh = _onnx.OnnxSessions()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes the import fail
    assert not fresh.install()
    assert fresh.reason.startswith("onnxruntime not importable")
    a = Agent([], None, NoTorch(), str(tmp_path / "a"), onnx=False)
    assert a.status()["onnxruntime"] is None
    assert a.does()["cache"] == "gc only: no PyTorch CUDA and no onnxruntime here"
