"""PipelineUnload's logic with stand-in pipelines (objects with diffusers' `.to(device)`); the
real diffusers pipeline on a GPU: tests/gpu/pipeline_proof.py."""

import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "comfyui-vramdeck"))

from vramdeck_agent import Agent, Deferred  # noqa: E402
from vramdeck_agent.pipelines import PipelineUnload  # noqa: E402
from vramdeck_agent.testing import FakeAllocator  # noqa: E402


class Pipe:
    def __init__(self):
        self.device = "cuda"

    def to(self, device):
        self.device = device
        return self


def test_cpu_mode_moves_every_pipeline_and_keeps_it():
    pipes = {"high_noise": Pipe(), "low_noise": Pipe()}
    assert PipelineUnload(pipes, mode="cpu")() is None
    assert {name: p.device for name, p in pipes.items()} == {"high_noise": "cpu",
                                                            "low_noise": "cpu"}


def test_drop_mode_empties_the_dict():
    pipes = {"t2v": Pipe()}
    PipelineUnload(pipes, mode="drop")()
    assert pipes == {}


def test_during_a_generation_the_unload_waits_for_its_end():
    pipes = {"i2v": Pipe()}
    generating = threading.Event()
    generating.set()
    hook = PipelineUnload(pipes, mode="cpu", busy=generating.is_set)
    outcome = hook()
    assert isinstance(outcome, Deferred) and not outcome.done()
    time.sleep(0.5)
    assert pipes["i2v"].device == "cuda"  # never moved under a running generation
    generating.clear()
    deadline = time.monotonic() + 5
    while not outcome.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert outcome.done() and pipes["i2v"].device == "cpu"


def test_the_agent_names_the_hook_and_says_what_it_does(tmp_path):
    hook = PipelineUnload({}, mode="drop")
    a = Agent([hook], "Wan2.2 I2V A14B (two 14B experts)", FakeAllocator(), str(tmp_path / "a"),
              onnx=False, unload_says=hook.says())
    assert a.does()["unload"].startswith("the pipelines are dropped")
    assert a.free("unload")["hooks_run"] == ["PipelineUnload(drop)"]


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        PipelineUnload({}, mode="vanish")


def test_unloads_asked_again_and_again_during_a_generation_share_one_waiting_thread():
    # The attack review's finding: 58 unload requests during one job started 58 threads.
    pipes = {"i2v": Pipe()}
    generating = threading.Event()
    generating.set()
    hook = PipelineUnload(pipes, mode="cpu", busy=generating.is_set)
    outcomes = [hook() for _ in range(58)]
    assert all(isinstance(o, Deferred) for o in outcomes)
    waiting = [t for t in threading.enumerate() if t.name == "vramdeck-pipeline-unload"]
    assert len(waiting) == 1
    generating.clear()
    deadline = time.monotonic() + 5
    while not all(o.done() for o in outcomes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(o.done() for o in outcomes) and pipes["i2v"].device == "cpu"
    # The next job's unload starts a new wait of its own.
    pipes["i2v"].to("cuda")
    generating.set()
    assert isinstance(hook(), Deferred)
    generating.clear()
