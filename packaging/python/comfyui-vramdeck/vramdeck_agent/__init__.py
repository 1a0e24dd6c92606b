"""vramdeck-agent: lets the vramdeck desktop app release this process's cached VRAM.

One line in a WebUI::

    import vramdeck_agent
    vramdeck_agent.start(unload=my_unload_fn, label="Wan2.1 T2V 14B")

The agent listens on a Unix socket in a private per-user directory (on Windows: a loopback port
whose secret only this user can read) and answers versioned JSON-lines requests from vramdeck
(see PROTOCOL.md). It runs on two daemon threads (a socket server and a free queue), never
blocks the host, and works without torch (it then says why). Nothing listens on a network
address.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import socket
import sys
import threading
import types
import time
from typing import Callable, Iterable, List, Optional, Union

from . import _auth, _dirs, _onnx, _protocol, _transport
from ._dirs import UnsafeDirectory, agent_dir
from ._freeing import FreeQueue
from ._protocol import LEVELS, MAX_MESSAGE_BYTES, PROTOCOL_VERSION
from ._server import Server

__all__ = ["start", "stop", "Agent", "Deferred", "TorchAllocator", "UnsafeDirectory",
           "agent_dir", "PROTOCOL_VERSION", "need", "done", "room", "report_oom"]
from ._version import __version__  # noqa: E402  (one source for the package, the node and PROTOCOL.md)

log = logging.getLogger("vramdeck_agent")

# vramdeck's window and `serve` look at every agent every 2 s; a need() that has heard from
# none for this long stops waiting, so a host's job never stalls for a vramdeck not running.
CONTACT_S = 10.0
ROOM_POLICIES = ("off", "ask", "caches", "models")
_ROOM_OFF = ("making room is off in vramdeck (Free VRAM panel: When an app asks for room before "
             "a job); the job starts without asking")
_NOBODY_LOOKS = {"granted": False,
                 "message": f"no vramdeck is running (none looked at this process for "
                            f"{CONTACT_S:.0f} s); the job starts without room made"}


class Deferred:
    """What an unload hook returns when the host will unload later, e.g. after the job it is
    running (ComfyUI does this). vramdeck shows `reason` and waits until `done()` is true."""

    def __init__(self, reason: str, done: Callable[[], bool]) -> None:
        self.reason = reason
        self.done = done


class TorchAllocator:
    """The memory backend: PyTorch's CUDA caching allocator, or nothing when torch or CUDA is
    absent. Tests substitute an object with the same members (`available`, `device`,
    `torch_version`, `memory()`, `empty_cache()`, `ipc_collect()`)."""

    def __init__(self, import_torch: bool = True) -> None:
        """`import_torch=False`: use torch only once the host has imported it (an onnxruntime
        host such as FaceFusion would otherwise pay for a torch it never uses)."""
        self.torch = None
        self.reason = None
        self.import_torch = import_torch
        self._find_torch()

    def _find_torch(self) -> None:
        if self.torch is not None:
            return
        if not self.import_torch and sys.modules.get("torch") is None:
            self.reason = "torch is not loaded in this process"
            return
        try:
            import torch  # noqa: PLC0415 - optional, imported lazily on purpose

            if torch.cuda.is_available():
                self.torch, self.reason = torch, None
            else:
                self.reason = "torch runs without CUDA here (CPU or MPS): no VRAM to release"
        except Exception as e:  # ImportError, or a broken CUDA install
            self.reason = f"torch not importable: {e}"

    @property
    def available(self) -> bool:
        if self.torch is None and not self.import_torch:
            self._find_torch()  # the host may have imported torch since
        return self.torch is not None

    @property
    def device(self) -> Optional[str]:
        if not self.available:
            return None
        index = self.torch.cuda.current_device()
        return f"cuda:{index} ({self.torch.cuda.get_device_name(index)})"

    @property
    def torch_version(self) -> Optional[str]:
        return getattr(self.torch, "__version__", None)

    def memory(self) -> Optional[dict]:
        if not self.available:
            return None
        return {
            "allocated": int(self.torch.cuda.memory_allocated()),
            "reserved": int(self.torch.cuda.memory_reserved()),
        }

    def empty_cache(self) -> None:
        if self.available:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()

    def ipc_collect(self) -> None:
        if self.torch:
            self.torch.cuda.ipc_collect()

    def free_bytes(self) -> Optional[int]:
        """Free memory on this process's GPU as the driver counts it (other processes' use
        included), or None without CUDA."""
        if not self.available:
            return None
        return int(self.torch.cuda.mem_get_info()[0])

    def total_bytes(self) -> Optional[int]:
        """The size of this process's GPU as the driver counts it, or None without CUDA."""
        if not self.available:
            return None
        return int(self.torch.cuda.mem_get_info()[1])


# The most a job may ask for: far beyond any card (64 PiB), far below what JSON readers choke on.
MAX_NEED_BYTES = 1 << 56


def _bad_need(nbytes, timeout) -> Optional[str]:
    """Why need(nbytes, timeout) cannot be asked, or None when it can."""
    import math

    if nbytes is not None:
        if isinstance(nbytes, bool) or not isinstance(nbytes, (int, float)):
            return f"need() takes a number of bytes, not {type(nbytes).__name__}"
        if isinstance(nbytes, float) and not math.isfinite(nbytes):
            return f"need() takes a number of bytes, not {nbytes}"
        if nbytes <= 0:
            return f"need() takes a positive number of bytes, not {nbytes}"
        if nbytes > MAX_NEED_BYTES:
            return f"need() asked for {nbytes} bytes, more than any GPU has"
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
            not math.isfinite(timeout) or timeout < 0:
        return f"need() takes a timeout in seconds (0 or more), not {timeout!r}"
    return None


def _process_name(pid: int) -> str:
    if os.name == "nt":  # no /proc (under Wine, /proc is Linux's and names wine's processes)
        return os.path.basename(sys.executable)
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return os.path.basename(sys.executable)


def _hook_name(hook: Callable) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)


AppInfo = Union[None, dict, Callable[[], Optional[dict]]]
Label = Union[None, str, Callable[[], Optional[str]]]


class Agent:
    """A running agent. Create it with `start()`.

    `cache`: releases cached memory (default: torch.cuda.empty_cache and ipc_collect).
    `app`: what the host is, e.g. {"name": "ComfyUI", "port": 8188}, or a function returning
    it, so vramdeck recognises the host's own HTTP endpoint as the same process.
    """

    def __init__(self, unload: Iterable[Callable[[], object]], label: "Label",
                 allocator, directory: Optional[str] = None, *,
                 cache: Optional[Callable[[], object]] = None, app: AppInfo = None,
                 onnx: Optional[bool] = None, unload_says: Optional[str] = None,
                 cache_says: Optional[str] = None) -> None:
        self.unload_hooks = list(unload)
        self.label = label
        self.allocator = allocator
        self.cache_hook = cache
        self.app = app
        # onnxruntime: True tracks it from now on; None tracks it once the host imports it;
        # False leaves it alone.
        self.onnx_mode = onnx
        self.onnx: Optional[_onnx.OnnxSessions] = _onnx.tracker() if onnx else None
        self.unload_says = unload_says
        self.cache_says = cache_says
        if directory is None:
            self._base, self._levels = _dirs.levels()
        else:
            full = os.path.abspath(directory)
            self._base, self._levels = os.path.dirname(full), [os.path.basename(full)]
        self.directory = os.path.join(self._base, *self._levels)
        self.pid = os.getpid()
        self.loopback = _transport.use_loopback()
        name = f"{self.pid}.json" if self.loopback else f"{self.pid}.sock"
        self.path = os.path.join(self.directory, name)
        self.port: Optional[int] = None
        self._sock: Optional[socket.socket] = None
        self._server: Optional[Server] = None
        self._pending: List[Deferred] = []
        self._pending_lock = threading.Lock()
        self.frees = FreeQueue(self.free)
        # What the host asked vramdeck to make room for (see `need`), and the last OOM.
        self._need: Optional[dict] = None
        self._need_seq = 0
        self._need_answer: Optional[dict] = None
        self._need_event: Optional[threading.Event] = None
        self._need_lock = threading.Lock()
        # The need vramdeck made room for whose job runs now: told to vramdeck (`room_job`) so
        # that engines it put to sleep for the job are woken when the job is done.
        self._room_job: Optional[int] = None
        self._oom: Optional[dict] = None
        self._last_contact = float("-inf")  # monotonic time vramdeck last asked anything
        self._started_at = time.monotonic()
        self._room: Optional[str] = None  # vramdeck's policy for `need`, as its hello says

    # -- lifecycle -------------------------------------------------------------------------
    def _bind(self) -> None:
        _dirs.ensure_private(self._base, self._levels)
        secret = None
        if self.loopback:
            sock, self.port = _transport.listen_loopback()
            secret = _auth.new_secret()
            try:
                _transport.write_endpoint(self.path, self.pid, self.port, secret)
            except OSError:
                sock.close()
                raise
        else:
            sock = _transport.listen_unix(self.path)
        self._sock = sock
        self._server = Server(
            sock, self._handle, secret=secret,
            refuse_other_user=_protocol.encode(_protocol.error(None, "peer is another user")),
            too_long=_protocol.encode(_protocol.error(
                None, f"request line longer than {MAX_MESSAGE_BYTES} bytes")),
            max_line=MAX_MESSAGE_BYTES)

    def _serve(self) -> None:
        assert self._server is not None
        self._server.run()

    def stop(self) -> None:
        """Stops listening and removes the socket file."""
        self.frees.stop()
        if self._server is not None:
            self._server.stop()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        try:
            os.unlink(self.path)
        except OSError:
            pass

    # -- requests --------------------------------------------------------------------------
    def _handle(self, line: bytes, reply: Callable[[bytes], None]) -> None:
        """Answers one request line through `reply`, now or (for a free) from the free queue."""
        request, refusal = _protocol.decode(line)
        if refusal is not None:
            reply(_protocol.encode(refusal))
            return
        rid = request.get("id")
        self._looked_at(request)
        if request["op"] == "need_answer":
            self._take_answer(request)
        if request["op"] == "free":
            def deliver(result: dict, shared_by: int) -> None:
                reply(_protocol.encode(self._free_reply(rid, result, shared_by)))

            self.frees.submit(request.get("level", "cache"), deliver)
            return
        try:
            reply(_protocol.encode({"v": PROTOCOL_VERSION, "id": rid, "ok": True,
                                    "agent": self.status()}))
        except Exception as e:  # a broken allocator or app callback: answer, don't crash
            reply(_protocol.encode(_protocol.error(rid, f"status failed: {e}")))

    @staticmethod
    def _free_reply(rid, result: dict, shared_by: int) -> dict:
        if "error" in result and "level" not in result:
            return _protocol.error(rid, result["error"])
        freed = dict(result)
        freed["shared_by"] = shared_by
        return {"v": PROTOCOL_VERSION, "id": rid, "ok": True, "freed": freed}

    def respond(self, line: bytes) -> dict:
        """Answers one request line synchronously (a free runs right here); for tests and
        embedding. The socket server goes through the free queue instead."""
        request, refusal = _protocol.decode(line)
        if refusal is not None:
            return refusal
        rid = request.get("id")
        self._looked_at(request)
        if request["op"] == "free":
            return self._free_reply(rid, self.free(request.get("level", "cache")), 1)
        if request["op"] == "need_answer":
            self._take_answer(request)
        return {"v": PROTOCOL_VERSION, "id": rid, "ok": True, "agent": self.status()}

    # -- making room before a job ----------------------------------------------------------
    def _looked_at(self, request: dict) -> None:
        """vramdeck asked something: it runs; a hello may say what it does for `need`."""
        self._last_contact = time.monotonic()
        room = request.get("room")
        if request["op"] == "hello" and room in ROOM_POLICIES:
            self._room = room

    def _take_answer(self, request: dict) -> None:
        with self._need_lock:
            if self._need is None or self._need["id"] != request["need"]:
                return  # an answer to a need that timed out, or another process's: ignored
            self._need_answer = {"granted": request["granted"], "message": request["message"]}
            if self._need_event is not None:
                self._need_event.set()

    def need(self, nbytes: Optional[int] = None, timeout: float = 60.0,
             what: Optional[str] = None, preset: Optional[str] = None) -> dict:
        """Asks vramdeck for `nbytes` of free VRAM before a job, and waits (up to `timeout`
        seconds) while it frees other apps by the user's policy. Without `nbytes`, the job is
        the preset `preset` (default: this agent's label) and vramdeck counts what it needs:
        the preset's peak with the user's margin, as its advisor does. Returns {"granted":
        bool, "message": str, "free": bytes free now or None}; the message goes to this
        process's log. Returns at once when the memory is free already, and within
        `CONTACT_S` when no vramdeck looks at this process."""
        free = self.allocator.free_bytes() if hasattr(self.allocator, "free_bytes") else None
        refusal = _bad_need(nbytes, timeout)
        if refusal is not None:
            # A bug in the host's arithmetic must not raise into its job or spoil this agent's
            # status for vramdeck: it is answered here, in words, and logged.
            log.warning("vramdeck: %s", refusal)
            return {"granted": False, "message": refusal, "free": free}
        if nbytes is not None:
            nbytes = int(nbytes)
        if nbytes is not None and free is not None and free >= nbytes:
            return {"granted": True, "message": "", "free": free}
        if nbytes is None:
            preset = preset or self._label()
            if not preset:
                return {"granted": False, "free": free,
                        "message": "need() without bytes needs a preset (or a label naming one)"}
        asked_at = time.monotonic()
        # No vramdeck has looked here lately (and this agent is not so new that none has had
        # the time to find it): nobody would answer, so the job goes ahead now.
        if asked_at - self._last_contact > CONTACT_S and asked_at - self._started_at > CONTACT_S:
            return dict(_NOBODY_LOOKS, free=free)
        if self._room == "off":
            log.info("vramdeck: %s", _ROOM_OFF)
            return {"granted": False, "message": _ROOM_OFF, "free": free}
        event = threading.Event()
        with self._need_lock:
            self._need_seq += 1
            total = self.allocator.total_bytes() if hasattr(self.allocator,
                                                            "total_bytes") else None
            self._need = {"id": self._need_seq, "bytes": int(nbytes or 0),
                          "free": None if free is None else int(free),
                          "total": None if total is None else int(total),
                          "what": what or self._label(),
                          "preset": preset if nbytes is None else None}
            self._need_answer, self._need_event = None, event
        deadline = asked_at + timeout
        answer = None
        while answer is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if event.wait(min(left, 0.25)):
                with self._need_lock:
                    answer = self._need_answer
                break
            # vramdeck looks at every agent every 2 s: silence this long means none runs.
            if time.monotonic() - max(self._last_contact, asked_at) > CONTACT_S:
                answer = _NOBODY_LOOKS
        with self._need_lock:
            # Room made by vramdeck: the job runs from here until done() (or the next need).
            made = answer is not None and answer is not _NOBODY_LOOKS and answer.get("granted")
            self._room_job = self._need["id"] if made and self._need else None
            self._need, self._need_event, self._need_answer = None, None, None
        if answer is None:
            answer = {"granted": False,
                      "message": f"vramdeck did not answer within {timeout:.0f} s (is it running, "
                                 f"with 'make room' switched on?)"}
        answer = dict(answer)
        answer["free"] = self.allocator.free_bytes() if hasattr(self.allocator,
                                                                 "free_bytes") else None
        if answer["message"]:
            (log.info if answer["granted"] else log.warning)("vramdeck: %s", answer["message"])
        return answer

    def done(self) -> None:
        """Says the job that asked for room has ended: what vramdeck lent for it (engines put
        to sleep) is handed back. Harmless when no room was made."""
        with self._need_lock:
            self._room_job = None

    def report_oom(self, error: BaseException) -> None:
        """Records an out-of-memory failure (PyTorch's message and numbers) for vramdeck's
        window, which can then offer to free the others and retry. Never retries itself."""
        memory = self.allocator.memory()
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        # PyTorch's first line runs on with advice; its first four sentences hold the numbers
        # ("Tried to allocate 40.00 GiB. GPU 0 has ... of which 14.60 GiB is free. Process 482
        # has 124.60 GiB memory in use.").
        sentences = text.split(". ")
        if len(sentences) > 4:
            text = ". ".join(sentences[:4]) + "."
        self._oom = {"message": text[:1000], "at": time.time(),
                     "allocated": memory["allocated"] if memory else None,
                     "reserved": memory["reserved"] if memory else None,
                     "free": self.allocator.free_bytes()
                     if hasattr(self.allocator, "free_bytes") else None}

    # -- the work --------------------------------------------------------------------------
    def pending(self) -> Optional[str]:
        """Why a release is still under way (a deferred unload), or None."""
        with self._pending_lock:
            still = []
            for d in self._pending:
                try:
                    finished = bool(d.done())
                except Exception:
                    finished = True  # cannot tell any more: stop promising
                if not finished:
                    still.append(d)
            self._pending = still
            return "; ".join(d.reason for d in still) or None

    def _label(self) -> Optional[str]:
        label = self.label() if callable(self.label) else self.label
        return label if isinstance(label, str) else None

    def _app_info(self) -> Optional[dict]:
        app = self.app() if callable(self.app) else self.app
        return app if isinstance(app, dict) else None

    def _onnx_sessions(self) -> Optional[_onnx.OnnxSessions]:
        if self.onnx is None and self.onnx_mode is None and "onnxruntime" in sys.modules:
            self.onnx = _onnx.tracker()
        return self.onnx if self.onnx is not None and self.onnx.available else None

    def _onnx_report(self) -> Optional[dict]:
        sessions = self._onnx_sessions()
        return sessions.report() if sessions is not None else None

    def does(self, onnx_report: Optional[dict] = None) -> dict:
        """What each level will do here, in words, before anyone asks for it (`onnx_report`:
        the sessions' report when the caller has one already)."""
        torch_part = self.cache_says
        if torch_part is None and self.allocator.available:
            torch_part = "PyTorch returns the cache no tensor uses (empty_cache); models stay"
        if onnx_report is None:
            onnx_report = self._onnx_report()
        cache = _onnx.describe_cache(onnx_report, torch_part)
        if not self.unload_hooks:
            unload = "no unload hook registered: the same as cache"
        elif self.unload_says:
            unload = f"{self.unload_says}; then cache"
        else:
            names = ", ".join(_hook_name(h) for h in self.unload_hooks)
            unload = f"the application's unload hook ({names}) runs, then cache"
        return {"cache": cache, "unload": unload}

    def status(self) -> dict:
        memory = self.allocator.memory()
        onnx_report = self._onnx_report()
        return {
            "pid": self.pid,
            "process_name": _process_name(self.pid),
            "label": self._label(),
            "agent_version": __version__,
            "torch": self.allocator.torch_version,
            "torch_missing_reason": None if self.allocator.available
            else getattr(self.allocator, "reason", "torch is not available"),
            "device": self.allocator.device,
            "allocated": memory["allocated"] if memory else None,
            "reserved": memory["reserved"] if memory else None,
            "levels": list(LEVELS) if self.unload_hooks else ["cache"],
            "pending": self.pending(),
            "app": self._app_info(),
            "onnxruntime": onnx_report,
            "does": self.does(onnx_report),
            "need": dict(self._need) if self._need else None,
            "room_job": self._room_job,
            "oom": dict(self._oom) if self._oom else None,
        }

    def free(self, level: str) -> dict:
        """Releases memory now; `unload` runs the host's hooks first."""
        started = time.perf_counter()
        before = self.allocator.memory()
        hooks_run: List[str] = []
        hook_errors: List[str] = []
        deferred: List[Deferred] = []
        if level == "unload":
            for hook in self.unload_hooks:
                try:
                    outcome = hook()
                    hooks_run.append(_hook_name(hook))
                    if isinstance(outcome, Deferred):
                        deferred.append(outcome)
                except Exception as e:  # a failing hook must not stop the release
                    hook_errors.append(f"{_hook_name(hook)}: {e}")
        gc.collect()
        if self.cache_hook is not None:
            try:
                self.cache_hook()
            except Exception as e:
                hook_errors.append(f"{_hook_name(self.cache_hook)}: {e}")
        else:
            self.allocator.empty_cache()
            self.allocator.ipc_collect()
        sessions = self._onnx_sessions()
        onnx = sessions.rebuild_idle() if sessions is not None else None
        if onnx is not None:
            hook_errors.extend(f"onnxruntime {e}" for e in onnx["errors"])
        after = self.allocator.memory()
        released = None
        if before is not None and after is not None:
            released = max(0, before["reserved"] - after["reserved"])
        if deferred:
            with self._pending_lock:
                self._pending.extend(deferred)
        return {
            "level": level,
            "before": before,
            "after": after,
            "released_bytes": released,
            "duration_ms": round((time.perf_counter() - started) * 1000.0, 3),
            "hooks_run": hooks_run,
            "hook_errors": hook_errors,
            "pending": "; ".join(d.reason for d in deferred) or None,
            "onnx": onnx,
        }


def _process():
    """One agent per process, whichever copy of this package starts it: ComfyUI imports each
    custom-node folder's own copy, so two folders of the node would otherwise start two
    agents. The holder lives in sys.modules under a name no copy shadows."""
    holder = types.ModuleType("_vramdeck_agent_process")
    holder.agent = None
    holder.lock = threading.Lock()
    return sys.modules.setdefault("_vramdeck_agent_process", holder)


def start(unload=None, label: Label = None, *, cache=None, app: AppInfo = None, allocator=None,
          directory: Optional[str] = None, onnx: Optional[bool] = None,
          unload_says: Optional[str] = None, cache_says: Optional[str] = None
          ) -> Optional[Agent]:
    """Starts the agent (once per process) and returns it, or None if it could not start.

    `unload`: a callable or a list of callables that unload models (run at level "unload");
    one may return `Deferred` when the host unloads later. `label`: the workload, e.g.
    "Wan2.1 T2V 14B", shown in vramdeck; a preset's name or id makes vramdeck calibrate that
    preset from this process's peak; a function returning it follows the host's settings. `cache`: replaces the default cache release.
    `app`: the host's identity (see `Agent`). `onnx`: track onnxruntime sessions (True: from
    now on; None, the default: once the host imports onnxruntime; False: never).
    `unload_says` / `cache_says`: what the levels do in this host, in words for vramdeck's
    window. Never raises for environment problems: it logs a warning and the host carries on.
    """
    process = _process()
    with process.lock:
        if process.agent is not None and process.agent.pid == os.getpid():
            return process.agent
        hooks = [] if unload is None else ([unload] if callable(unload) else list(unload))
        agent = Agent(hooks, label, allocator or TorchAllocator(), directory,
                      cache=cache, app=app, onnx=onnx, unload_says=unload_says,
                      cache_says=cache_says)
        try:
            agent._bind()
        except OSError as e:  # UnsafeDirectory is one
            log.warning("vramdeck agent not started: %s", e)
            agent.frees.stop()
            return None
        threading.Thread(target=agent._serve, daemon=True, name="vramdeck-agent").start()
        atexit.register(agent.stop)
        process.agent = agent
        return agent


def need(nbytes: Optional[int] = None, timeout: float = 60.0, what: Optional[str] = None,
         preset: Optional[str] = None) -> dict:
    """Asks vramdeck for `nbytes` of free VRAM (or room for the preset `preset`'s job) before
    a job (see `Agent.need`); without a running agent, says so and returns at once."""
    agent = _process().agent
    if agent is None:
        return {"granted": False, "message": "no vramdeck agent runs in this process",
                "free": None}
    return agent.need(nbytes, timeout=timeout, what=what, preset=preset)


def done() -> None:
    """Says the job that asked for room has ended (see `Agent.done`)."""
    agent = _process().agent
    if agent is not None:
        agent.done()


@contextlib.contextmanager
def room(nbytes: Optional[int] = None, timeout: float = 60.0, what: Optional[str] = None,
         preset: Optional[str] = None):
    """`with vramdeck_agent.room(8 << 30, what="render") as answer:` asks for room before the
    block (see `need`) and says the job is done after it, however it ends."""
    answer = need(nbytes, timeout=timeout, what=what, preset=preset)
    try:
        yield answer
    finally:
        done()


def report_oom(error: BaseException) -> None:
    """Records an out-of-memory failure for vramdeck's window (see `Agent.report_oom`)."""
    agent = _process().agent
    if agent is not None:
        agent.report_oom(error)


def stop() -> None:
    """Stops the agent started by `start()`, if any."""
    process = _process()
    with process.lock:
        if process.agent is not None:
            process.agent.stop()
            process.agent = None
