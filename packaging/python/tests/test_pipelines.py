"""PipelineUnload's logic with stand-in pipelines (objects with diffusers' `.to(device)`); the
real diffusers pipeline on a GPU: tests/gpu/pipeline_proof.py."""

import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "comfyui_vramdeck"))

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
