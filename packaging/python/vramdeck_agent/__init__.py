"""vramdeck-agent: lets the vramdeck desktop app release this process's cached VRAM.

One line in a WebUI::

    import vramdeck_agent
    vramdeck_agent.start(unload=my_unload_fn, label="Wan2.1 T2V 14B")

The agent listens on a Unix socket in a per-user directory (0700; the socket itself 0600) and
answers versioned JSON-lines requests from vramdeck (see PROTOCOL.md). It runs on daemon threads,
never blocks the host, and works without torch (it then reports that torch is missing).
Nothing listens on a network address.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import socket
import struct
import sys
import threading
import time
from typing import Callable, Iterable, Optional

__all__ = ["start", "stop", "Agent", "TorchAllocator", "agent_dir", "PROTOCOL_VERSION"]
__version__ = "0.1.0"

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
CONNECTION_TIMEOUT_S = 5.0
LEVELS = ("cache", "unload")

log = logging.getLogger("vramdeck_agent")


def agent_dir() -> str:
    """The per-user directory where agents put their sockets (same rule as vramdeck's)."""
    override = os.environ.get("VRAMDECK_AGENT_DIR")
    if override:
        return override
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "vramdeck", "agents")
    return os.path.join("/tmp", f"vramdeck-{os.getuid()}", "agents")


def _private_dir(path: str) -> None:
    """Creates `path` (0700) or checks an existing one is ours and closed to others."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.stat(path)
    if st.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to uid {st.st_uid}, not to this user")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


class TorchAllocator:
    """The memory backend: PyTorch's CUDA caching allocator, or nothing when torch is absent.

    Tests substitute an object with the same four members (`available`, `device`,
    `torch_version`, `memory()`, `empty_cache()`, `ipc_collect()`).
    """

    def __init__(self) -> None:
        self.torch = None
        self.reason = None
        try:
            import torch  # noqa: PLC0415 - optional, imported lazily on purpose

            if torch.cuda.is_available():
                self.torch = torch
            else:
                self.reason = "torch has no CUDA device"
        except Exception as e:  # ImportError, or a broken CUDA install
            self.reason = f"torch not importable: {e}"

    @property
    def available(self) -> bool:
        return self.torch is not None

    @property
    def device(self) -> Optional[str]:
        if not self.torch:
            return None
        index = self.torch.cuda.current_device()
        return f"cuda:{index} ({self.torch.cuda.get_device_name(index)})"

    @property
    def torch_version(self) -> Optional[str]:
        return getattr(self.torch, "__version__", None)

    def memory(self) -> Optional[dict]:
        if not self.torch:
            return None
        return {
            "allocated": int(self.torch.cuda.memory_allocated()),
            "reserved": int(self.torch.cuda.memory_reserved()),
        }

    def empty_cache(self) -> None:
        if self.torch:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()

    def ipc_collect(self) -> None:
        if self.torch:
            self.torch.cuda.ipc_collect()


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return os.path.basename(sys.executable)


class Agent:
    """A running agent. Create it with `start()`."""

    def __init__(self, unload: Iterable[Callable[[], object]], label: Optional[str],
                 allocator, directory: str) -> None:
        self.unload_hooks = list(unload)
        self.label = label
        self.allocator = allocator
        self.directory = directory
        self.pid = os.getpid()
        self.path = os.path.join(directory, f"{self.pid}.sock")
        self._sock: Optional[socket.socket] = None
        self._stopped = threading.Event()
        self._free_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    def _bind(self) -> None:
        _private_dir(self.directory)
        if os.path.exists(self.path):  # left by an earlier process with our pid
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        os.chmod(self.path, 0o600)
        sock.listen(8)
        self._sock = sock

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # socket closed by stop()
            threading.Thread(target=self._handle, args=(conn,), daemon=True,
                             name="vramdeck-agent-conn").start()

    def stop(self) -> None:
        """Stops listening and removes the socket file."""
        self._stopped.set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        try:
            os.unlink(self.path)
        except OSError:
            pass

    # -- one connection --------------------------------------------------------------------
    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(CONNECTION_TIMEOUT_S)
            if not _same_user(conn):
                _send(conn, {"v": PROTOCOL_VERSION, "ok": False, "error": "peer is another user"})
                return
            buffer = b""
            while True:
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        _send(conn, self.respond(line))
                if len(buffer) > MAX_MESSAGE_BYTES:
                    _send(conn, _error(None, f"request larger than {MAX_MESSAGE_BYTES} bytes"))
                    return

    def respond(self, line: bytes) -> dict:
        """Answers one request line (bytes without the newline)."""
        try:
            request = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return _error(None, f"malformed request: {e}")
        if not isinstance(request, dict):
            return _error(None, "malformed request: not a JSON object")
        rid = request.get("id")
        if request.get("v") != PROTOCOL_VERSION:
            return _error(rid, f"unsupported protocol version {request.get('v')!r}; "
                               f"this agent speaks {PROTOCOL_VERSION}")
        op = request.get("op")
        if op in ("hello", "status"):
            return {"v": PROTOCOL_VERSION, "id": rid, "ok": True, "agent": self.status()}
        if op == "free":
            level = request.get("level", "cache")
            if level not in LEVELS:
                return _error(rid, f"unknown level {level!r}; expected one of {list(LEVELS)}")
            return {"v": PROTOCOL_VERSION, "id": rid, "ok": True, "freed": self.free(level)}
        return _error(rid, f"unknown op {op!r}")

    # -- the work --------------------------------------------------------------------------
    def status(self) -> dict:
        memory = self.allocator.memory()
        return {
            "pid": self.pid,
            "process_name": _process_name(self.pid),
            "label": self.label,
            "agent_version": __version__,
            "torch": self.allocator.torch_version,
            "torch_missing_reason": None if self.allocator.available
            else getattr(self.allocator, "reason", "torch is not available"),
            "device": self.allocator.device,
            "allocated": memory["allocated"] if memory else None,
            "reserved": memory["reserved"] if memory else None,
            "levels": list(LEVELS) if self.unload_hooks else ["cache"],
        }

    def free(self, level: str) -> dict:
        """Releases memory; `unload` runs the host's hooks first. One free at a time."""
        with self._free_lock:
            started = time.perf_counter()
            before = self.allocator.memory()
            hooks_run, hook_errors = [], []
            if level == "unload":
                for hook in self.unload_hooks:
                    name = getattr(hook, "__qualname__", repr(hook))
                    try:
                        hook()
                        hooks_run.append(name)
                    except Exception as e:  # a failing hook must not stop the release
                        hook_errors.append(f"{name}: {e}")
            gc.collect()
            self.allocator.empty_cache()
            self.allocator.ipc_collect()
            after = self.allocator.memory()
            released = None
            if before is not None and after is not None:
                released = max(0, before["reserved"] - after["reserved"])
            return {
                "level": level,
                "before": before,
                "after": after,
                "released_bytes": released,
                "duration_ms": round((time.perf_counter() - started) * 1000.0, 3),
                "hooks_run": hooks_run,
                "hook_errors": hook_errors,
            }


def _same_user(conn: socket.socket) -> bool:
    """Peer-credential check: only our own user may talk to us."""
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (AttributeError, OSError):
        return True  # no SO_PEERCRED (macOS): the 0700 directory is the guard
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _error(rid, message: str) -> dict:
    return {"v": PROTOCOL_VERSION, "id": rid, "ok": False, "error": message}


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n")
    except OSError:
        pass


_current: Optional[Agent] = None
_current_lock = threading.Lock()


def start(unload=None, label: Optional[str] = None, *, allocator=None,
          directory: Optional[str] = None) -> Optional[Agent]:
    """Starts the agent (once per process) and returns it, or None if it could not start.

    `unload`: a callable or a list of callables that unload models (run at level "unload").
    `label`: the workload, e.g. "Wan2.1 T2V 14B", shown in vramdeck.
    Never raises for environment problems: it logs a warning and the host carries on.
    """
    global _current
    with _current_lock:
        if _current is not None and _current.pid == os.getpid():
            return _current
        hooks = [] if unload is None else ([unload] if callable(unload) else list(unload))
        agent = Agent(hooks, label, allocator or TorchAllocator(), directory or agent_dir())
        try:
            agent._bind()
        except OSError as e:
            log.warning("vramdeck agent not started: %s", e)
            return None
        threading.Thread(target=agent._serve, daemon=True, name="vramdeck-agent").start()
        atexit.register(agent.stop)
        _current = agent
        return agent


def stop() -> None:
    """Stops the agent started by `start()`, if any."""
    global _current
    with _current_lock:
        if _current is not None:
            _current.stop()
            _current = None
