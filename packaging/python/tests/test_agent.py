"""vramdeck-agent with plain CPython: a fake allocator behind the same hook as torch's."""

import json
import os
import socket
import stat
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "comfyui-vramdeck"))

import vramdeck_agent  # noqa: E402
from vramdeck_agent import Agent, TorchAllocator  # noqa: E402
from vramdeck_agent.testing import FakeAllocator  # noqa: E402

GIB = 1024**3


@pytest.fixture
def agent(tmp_path):
    allocator = FakeAllocator()
    unloaded = []

    def unload_models():
        unloaded.append(True)
        allocator.release_tensor(allocator.allocated)

    a = Agent([unload_models], "Wan2.1 T2V 14B", allocator, str(tmp_path / "agents"))
    a._bind()
    import threading

    threading.Thread(target=a._serve, daemon=True).start()
    a.unloaded = unloaded
    yield a
    a.stop()


def call(path, *requests, raw=None):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        payload = raw if raw is not None else b"".join(
            json.dumps(r).encode() + b"\n" for r in requests)
        s.sendall(payload)
        replies, buffer = [], b""
        expected = max(1, len(requests))
        while len(replies) < expected:
            chunk = s.recv(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                replies.append(json.loads(line))
        return replies


def test_socket_is_private_to_the_user(agent):
    assert stat.S_IMODE(os.stat(agent.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(agent.path).st_mode) == 0o600
    assert os.path.basename(agent.path) == f"{os.getpid()}.sock"


def test_hello_reports_identity_and_torch_memory(agent):
    agent.allocator.allocate(3 * GIB)
    [reply] = call(agent.path, {"v": 1, "id": 7, "op": "hello"})
    assert reply["ok"] and reply["id"] == 7
    info = reply["agent"]
    assert info["pid"] == os.getpid()
    assert info["label"] == "Wan2.1 T2V 14B"
    assert info["allocated"] == 3 * GIB and info["reserved"] == 3 * GIB
    assert info["levels"] == ["cache", "unload"]


def test_free_cache_returns_reserved_memory_of_a_freed_tensor(agent):
    agent.allocator.allocate(10 * GIB)
    agent.allocator.release_tensor(10 * GIB)  # `del x`: still reserved
    [reply] = call(agent.path, {"v": 1, "id": 1, "op": "free", "level": "cache"})
    freed = reply["freed"]
    assert freed["released_bytes"] == 10 * GIB
    assert freed["before"]["reserved"] == 10 * GIB and freed["after"]["reserved"] == 0
    assert freed["hooks_run"] == [] and agent.unloaded == []


def test_free_unload_runs_the_hosts_hooks_first(agent):
    agent.allocator.allocate(4 * GIB)  # a loaded model
    [reply] = call(agent.path, {"v": 1, "id": 1, "op": "free", "level": "unload"})
    assert agent.unloaded == [True]
    assert reply["freed"]["released_bytes"] == 4 * GIB
    assert reply["freed"]["hooks_run"][0].endswith("unload_models")


def test_a_failing_hook_is_reported_and_the_cache_is_still_released(tmp_path):
    allocator = FakeAllocator()
    allocator.allocate(GIB)
    allocator.release_tensor(GIB)

    def broken():
        raise RuntimeError("model busy")

    a = Agent([broken], None, allocator, str(tmp_path))
    freed = a.free("unload")
    assert freed["hook_errors"] == ["test_a_failing_hook_is_reported_and_the_cache_is_still_released.<locals>.broken: model busy"]
    assert freed["released_bytes"] == GIB


@pytest.mark.parametrize("line, message", [
    (b"not json", "malformed request"),
    (b"[1,2]", "not a JSON object"),
    (b'{"v":2,"id":1,"op":"hello"}', "unsupported protocol version 2"),
    (b'{"v":1,"id":1,"op":"explode"}', "unknown op 'explode'"),
    (b'{"v":1,"id":1,"op":"free","level":"all"}', "unknown level 'all'"),
    (b"\xff\xfe", "malformed request"),
])
def test_bad_requests_get_an_error_reply_not_a_crash(agent, line, message):
    [reply] = call(agent.path, raw=line + b"\n")
    assert reply["ok"] is False
    assert message in reply["error"]
    # The agent still serves the next client.
    assert call(agent.path, {"v": 1, "id": 2, "op": "hello"})[0]["ok"]


def test_oversized_request_is_refused(agent):
    [reply] = call(agent.path, raw=b"x" * (vramdeck_agent.MAX_MESSAGE_BYTES + 10))
    assert "longer than" in reply["error"]


def test_several_requests_on_one_connection(agent):
    replies = call(agent.path, {"v": 1, "id": 1, "op": "hello"}, {"v": 1, "id": 2, "op": "status"})
    assert [r["id"] for r in replies] == [1, 2]


def test_without_torch_the_agent_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    allocator = TorchAllocator()
    assert not allocator.available
    info = Agent([], None, allocator, str(tmp_path)).status()
    assert info["torch"] is None and info["allocated"] is None
    assert "torch not importable" in info["torch_missing_reason"]
    assert info["levels"] == ["cache"]
    assert Agent([], None, allocator, str(tmp_path)).free("cache")["released_bytes"] is None


def test_start_is_idempotent_and_stop_removes_the_socket(monkeypatch, tmp_path):
    monkeypatch.setenv("VRAMDECK_AGENT_DIR", str(tmp_path / "agents"))
    first = vramdeck_agent.start(label="x", allocator=FakeAllocator())
    try:
        assert vramdeck_agent.start(label="y") is first
        assert os.path.exists(first.path)
    finally:
        vramdeck_agent.stop()
    assert not os.path.exists(first.path)


def test_start_in_an_unusable_directory_returns_none_without_raising(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert vramdeck_agent.start(allocator=FakeAllocator(), directory=str(blocker / "agents")) is None


def test_stale_socket_from_a_previous_process_is_replaced(tmp_path):
    d = tmp_path / "agents"
    d.mkdir(mode=0o700)
    (d / f"{os.getpid()}.sock").write_text("stale")
    a = Agent([], None, FakeAllocator(), str(d))
    a._bind()
    try:
        assert stat.S_ISSOCK(os.stat(a.path).st_mode)
    finally:
        a.stop()


def test_an_allocator_told_not_to_import_torch_waits_for_the_host_to_do_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    allocator = TorchAllocator(import_torch=False)
    assert not allocator.available
    assert allocator.reason == "torch is not loaded in this process"
    assert "torch" not in sys.modules  # the agent did not import it for the host

    class CudaTorch:  # what the host's `import torch` leaves in sys.modules
        __version__ = "2.11.0"

        class cuda:
            @staticmethod
            def is_available():
                return True

            @staticmethod
            def memory_allocated():
                return 1

            @staticmethod
            def memory_reserved():
                return 2

    monkeypatch.setitem(sys.modules, "torch", CudaTorch)
    assert allocator.available
    assert allocator.memory() == {"allocated": 1, "reserved": 2}


def waiting_need(agent):
    """The agent's status once it shows a need waiting (5 s at most)."""
    import time

    deadline = time.time() + 5
    while True:
        status = call(agent.path, {"v": 1, "id": 1, "op": "status"})[0]["agent"]
        if status["need"] is not None:
            return status
        assert time.time() < deadline
        time.sleep(0.02)


def test_need_waits_for_vramdecks_answer_and_logs_it(agent, caplog):
    import threading
    import time

    agent.allocator.others = 20 * GIB  # another app holds most of the 24 GiB card
    result = {}
    caplog.set_level("INFO", logger="vramdeck_agent")
    worker = threading.Thread(target=lambda: result.update(agent.need(8 * GIB, timeout=10,
                                                                      what="Wan 14B")))
    worker.start()
    status = waiting_need(agent)
    assert status["need"]["bytes"] == 8 * GIB
    assert status["need"]["free"] == 4 * GIB
    assert status["need"]["what"] == "Wan 14B"
    # An answer to another need is ignored; the right one ends the wait.
    call(agent.path, {"v": 1, "id": 2, "op": "need_answer", "need": 99, "granted": True,
                      "message": "not this one"})
    time.sleep(0.1)
    assert worker.is_alive()
    agent.allocator.others = 8 * GIB
    call(agent.path, {"v": 1, "id": 3, "op": "need_answer", "need": status["need"]["id"],
                      "granted": True, "message": "freed 12.0 GiB: python3 (pid 7) cache"})
    worker.join(5)
    assert result["granted"] is True
    assert result["free"] == 16 * GIB
    assert "freed 12.0 GiB" in caplog.text
    assert call(agent.path, {"v": 1, "id": 4, "op": "status"})[0]["agent"]["need"] is None


def test_the_job_vramdeck_made_room_for_is_reported_until_it_says_done(agent):
    import threading

    import vramdeck_agent

    agent.allocator.others = 20 * GIB
    status_of = lambda: call(agent.path, {"v": 1, "id": 5, "op": "status"})[0]["agent"]  # noqa: E731
    # Refused room: no job of vramdeck's to hand back.
    worker = threading.Thread(target=lambda: agent.need(8 * GIB, timeout=10))
    worker.start()
    need = waiting_need(agent)["need"]["id"]
    call(agent.path, {"v": 1, "id": 3, "op": "need_answer", "need": need, "granted": False,
                      "message": "no"})
    worker.join(5)
    assert status_of()["room_job"] is None
    # Granted room: the job is reported until done(); `room()` asks and ends in one.
    worker = threading.Thread(target=lambda: agent.need(8 * GIB, timeout=10))
    worker.start()
    need = waiting_need(agent)["need"]["id"]
    call(agent.path, {"v": 1, "id": 3, "op": "need_answer", "need": need, "granted": True,
                      "message": "made room"})
    worker.join(5)
    assert status_of()["room_job"] == need
    agent.done()
    assert status_of()["room_job"] is None
    assert vramdeck_agent.__version__ == "0.6.0"


def test_need_returns_at_once_with_room_and_says_so_when_nobody_answers(agent):
    assert agent.need(1 * GIB)["granted"] is True  # 24 GiB free: nothing to ask
    agent.allocator.others = 23 * GIB
    answer = agent.need(8 * GIB, timeout=0.2)
    assert answer["granted"] is False
    assert "did not answer within" in answer["message"]


def test_an_agent_stopped_before_its_thread_begins_ends_quietly(tmp_path):
    # A host may stop the agent (atexit, say) before the server thread has run at all: the
    # thread then finds its socket closed and must end without an exception in the host.
    a = Agent([], "quick", FakeAllocator(), str(tmp_path / "agents"))
    a._bind()
    a.stop()
    a._serve()  # what the thread runs; it raised ValueError on the closed socket


def test_need_without_a_vramdeck_looking_returns_at_once(agent):
    import time

    agent.allocator.others = 23 * GIB
    agent._started_at -= 100  # started long ago, and no vramdeck has looked since
    started = time.monotonic()
    answer = agent.need(8 * GIB, timeout=30)
    assert time.monotonic() - started < 1
    assert answer["granted"] is False
    assert "no vramdeck is running" in answer["message"]


def test_need_stops_waiting_when_vramdeck_falls_silent(agent, monkeypatch):
    import time

    monkeypatch.setattr(vramdeck_agent, "CONTACT_S", 0.5)
    agent.allocator.others = 23 * GIB
    agent._started_at -= 100
    call(agent.path, {"v": 1, "id": 1, "op": "status"})  # vramdeck looked, then went away
    started = time.monotonic()
    answer = agent.need(8 * GIB, timeout=30)
    assert 0.4 < time.monotonic() - started < 3
    assert "no vramdeck is running" in answer["message"]


def test_need_with_making_room_off_in_vramdeck_does_not_ask(agent, caplog):
    import time

    agent.allocator.others = 23 * GIB
    call(agent.path, {"v": 1, "id": 1, "op": "hello", "room": "off"})
    caplog.set_level("INFO", logger="vramdeck_agent")
    started = time.monotonic()
    answer = agent.need(8 * GIB, timeout=30)
    assert time.monotonic() - started < 1
    assert answer["granted"] is False and "making room is off" in answer["message"]
    assert [r.levelname for r in caplog.records] == ["INFO"]  # not a warning: the user chose
    # A policy it does not know, or one on another op, changes nothing; "caches" asks again.
    call(agent.path, {"v": 1, "id": 2, "op": "hello", "room": "sometimes"},
         {"v": 1, "id": 3, "op": "status", "room": "caches"})
    assert agent._room == "off"
    call(agent.path, {"v": 1, "id": 4, "op": "hello", "room": "caches"})
    assert agent.need(8 * GIB, timeout=0.2)["message"].startswith("vramdeck did not answer")


def test_need_by_preset_leaves_the_amount_to_vramdeck(agent):
    import threading
    import time

    result = {}
    worker = threading.Thread(target=lambda: result.update(
        agent.need(preset="FaceFusion (FP16)", timeout=10)))
    worker.start()
    status = waiting_need(agent)
    # Even with 24 GiB free it asks: only vramdeck knows what the preset's job needs.
    assert status["need"]["bytes"] == 0
    assert status["need"]["preset"] == "FaceFusion (FP16)"
    call(agent.path, {"v": 1, "id": 2, "op": "need_answer", "need": status["need"]["id"],
                      "granted": True, "message": "FaceFusion (FP16) has room already"})
    worker.join(5)
    assert result["granted"] is True


def test_a_malformed_need_answer_is_refused(agent):
    for bad in ({"need": "1", "granted": True, "message": ""},
                {"need": 1, "granted": 1, "message": ""},
                {"need": 1, "granted": True, "message": "x" * 5000}):
        reply = call(agent.path, dict({"v": 1, "id": 5, "op": "need_answer"}, **bad))[0]
        assert reply["ok"] is False and "malformed need_answer" in reply["error"]


def test_an_oom_is_reported_with_pytorchs_numbers(agent):
    agent.allocator.allocate(10 * GIB)
    agent.report_oom(RuntimeError(
        "CUDA out of memory. Tried to allocate 40.00 GiB. GPU 0 has a total capacity of 139.80 "
        "GiB of which 14.60 GiB is free. Process 482 has 124.60 GiB memory in use. Including "
        "non-PyTorch memory, this process has 610.00 MiB memory in use. Of the allocated ..."
        "\nmore"))
    oom = call(agent.path, {"v": 1, "id": 6, "op": "status"})[0]["agent"]["oom"]
    assert oom["message"] == ("CUDA out of memory. Tried to allocate 40.00 GiB. GPU 0 has a "
                              "total capacity of 139.80 GiB of which 14.60 GiB is free. Process "
                              "482 has 124.60 GiB memory in use.")
    assert oom["allocated"] == 10 * GIB


@pytest.mark.parametrize("nbytes", [-1, 0, 2**64, 10**30, float("nan"), float("inf"),
                                    -float("inf"), "8 GiB", True, [1]])
def test_a_bad_amount_is_answered_in_words_and_never_spoils_the_status(agent, nbytes, caplog):
    # The third review: need(-1), need(2**64) and need(10**30) made the agent's whole status
    # undecodable for vramdeck, and NaN and inf raised into the host application.
    agent.allocator.others = 23 * GIB
    answer = agent.need(nbytes, timeout=5)
    assert answer["granted"] is False
    assert answer["message"].startswith("need() ")
    assert "need()" in caplog.text
    status = call(agent.path, {"v": 1, "id": 1, "op": "status"})[0]
    assert status["agent"]["need"] is None
    json.dumps(status, allow_nan=False)  # what vramdeck reads stays plain JSON


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1])
def test_a_bad_timeout_is_answered_in_words(agent, timeout):
    agent.allocator.others = 23 * GIB
    answer = agent.need(8 * GIB, timeout=timeout)
    assert answer["granted"] is False
    assert "timeout" in answer["message"]


def test_a_need_carries_the_cards_size_for_vramdeck_to_check(agent):
    import threading

    agent.allocator.others = 23 * GIB
    worker = threading.Thread(target=lambda: agent.need(8 * GIB, timeout=2), daemon=True)
    worker.start()
    status = waiting_need(agent)
    assert status["need"]["total"] == 24 * GIB
    worker.join(5)


def test_the_agent_the_node_and_protocol_md_say_one_version():
    import re

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    version = vramdeck_agent.__version__
    with open(os.path.join(here, "comfyui-vramdeck", "pyproject.toml"), encoding="utf-8") as f:
        node = re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)
    with open(os.path.join(here, "pyproject.toml"), encoding="utf-8") as f:
        package = f.read()
    with open(os.path.join(here, "PROTOCOL.md"), encoding="utf-8") as f:
        protocol = set(re.findall(r'"agent_version":"([^"]+)"', f.read()))
    assert node == version
    assert 'dynamic = ["version"]' in package and "vramdeck_agent._version.__version__" in package
    assert protocol == {version}
