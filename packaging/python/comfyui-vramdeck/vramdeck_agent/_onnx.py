"""What onnxruntime holds in this process, and the one way to hand its idle arena back.

onnxruntime keeps a session's GPU memory in two places: the weights (initializers), placed when
the session is built, and a BFC arena per session and device that grows to the largest run and
keeps what it took. Nothing outside a run can shrink that arena (the run option
`memory.enable_memory_arena_shrinkage` acts only at the end of a `run`), and
`torch.cuda.empty_cache()` never touches it. What does return it is building the session again:
`InferenceSession.set_providers` (public API) drops the C++ session, arena included, and builds
a new one from the same model and provider options, so the host's session object stays valid
and its weights are loaded again at once. Only the host can drop sessions for good (its unload
hook, e.g. FaceFusion's inference-pool clearing).

`OnnxSessions.install()` wraps `InferenceSession.__init__` and the run methods, so the agent
knows every session the host builds afterwards and whether a run is under way in it; a session
is rebuilt only while no run is, and runs that start meanwhile wait for the rebuild.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import weakref
from typing import Dict, List, Optional

# Execution providers whose memory is on a GPU and whose sessions are quick to build again.
# TensorRT is left out on purpose: a rebuild can mean building its engines again (minutes).
REBUILDABLE = ("CUDAExecutionProvider", "ROCMExecutionProvider")
GPU_PROVIDERS = REBUILDABLE + ("TensorrtExecutionProvider", "MIGraphXExecutionProvider",
                               "DmlExecutionProvider")
RUN_METHODS = ("run", "run_with_ort_values", "run_with_ortvaluevector", "run_async",
               "run_with_iobinding")
ARENA_OPTIONS = ("device_id", "arena_extend_strategy", "gpu_mem_limit", "cudnn_conv_algo_search")

# A cache release must answer within vramdeck's 20 s limit for a free.
REBUILD_BUDGET_S = 12.0


def _model_name(session) -> str:
    path = getattr(session, "_model_path", None)
    if isinstance(path, str) and path:
        return os.path.basename(path)
    return "(model from bytes)"


class OnnxSessions:
    """The onnxruntime sessions of this process, tracked from `install()` on."""

    def __init__(self, rebuildable=REBUILDABLE, gpu_providers=GPU_PROVIDERS) -> None:
        # Tests name the CPU provider here to exercise rebuilds with real CPU sessions.
        self.rebuildable = tuple(rebuildable)
        self.gpu_providers = tuple(gpu_providers)
        self.ort = None
        self.reason: Optional[str] = None
        self._live: "weakref.WeakSet" = weakref.WeakSet()
        # Runs take the lock itself (a C-level `with`); only waiting goes through the condition.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._in_flight: Dict[int, int] = {}
        self._rebuilding: set = set()
        self._bound: "weakref.WeakSet" = weakref.WeakSet()  # sessions with an IOBinding
        self._ort_module = None

    # -- set-up ----------------------------------------------------------------------------
    def install(self, ort_module=None) -> bool:
        """Starts tracking sessions built from now on. False (and `reason`) without
        onnxruntime. The class is wrapped once; a second tracker cannot install."""
        if self.ort is not None:
            return True
        if ort_module is None:
            try:
                import onnxruntime as ort_module  # noqa: PLC0415 - optional on purpose
            except Exception as e:  # ImportError, or a broken CUDA/cuDNN install
                self.reason = f"onnxruntime not importable: {e}"
                return False
        cls = ort_module.InferenceSession
        self._ort_module = ort_module
        owner = getattr(cls, "_vramdeck_tracker", None)
        if owner is not None and owner is not self:
            self.reason = "onnxruntime is tracked by another vramdeck tracker in this process"
            return False
        if owner is None:
            self._wrap(cls)
            cls._vramdeck_tracker = self
            # Sessions built before we were installed: the wrapped class methods already apply
            # to them; one scan of the heap adds them to what we list.
            for obj in gc.get_objects():
                # type(), not isinstance(): isinstance reads __class__, which some lazy
                # module attributes answer with a warning or an import.
                if issubclass(type(obj), cls):
                    self._live.add(obj)
        self.ort = ort_module
        return True

    def _wrap(self, cls) -> None:
        tracker = self
        original_init = cls.__init__

        def __init__(session, *args, **kwargs):
            original_init(session, *args, **kwargs)
            tracker._live.add(session)

        cls.__init__ = __init__
        for name in RUN_METHODS:
            original = getattr(cls, name, None)
            if original is not None:
                setattr(cls, name, self._counted(original))
        # An IOBinding keeps the C++ session it was made from (`binding._session`): after a
        # rebuild every `run_with_iobinding` with it fails, so a session that ever had one is
        # never rebuilt. Bindings are made through `session.io_binding()` or the class
        # `onnxruntime.IOBinding(session)`: the class is where both end.
        binding_cls = getattr(self._ort_module, "IOBinding", None)
        if binding_cls is not None and not getattr(binding_cls, "_vramdeck_wrapped", False):
            original_binding_init = binding_cls.__init__

            def binding_init(binding, session, *args, **kwargs):
                with tracker._lock:
                    key = id(session)
                    while key in tracker._rebuilding:
                        tracker._cond.wait()
                    try:
                        tracker._bound.add(session)
                    except TypeError:
                        pass
                return original_binding_init(binding, session, *args, **kwargs)

            binding_cls.__init__ = binding_init
            binding_cls._vramdeck_wrapped = True

    def _counted(self, original):
        tracker = self

        lock, cond = tracker._lock, tracker._cond
        in_flight, rebuilding = tracker._in_flight, tracker._rebuilding

        def run(session, *args, **kwargs):
            key = id(session)
            with lock:
                while key in rebuilding:
                    cond.wait()
                in_flight[key] = in_flight.get(key, 0) + 1
            try:
                return original(session, *args, **kwargs)
            finally:
                with lock:
                    left = in_flight[key] - 1
                    if left:
                        in_flight[key] = left
                    else:
                        del in_flight[key]

        run.__name__ = getattr(original, "__name__", "run")
        run.__doc__ = getattr(original, "__doc__", None)
        return run

    # -- what is there ---------------------------------------------------------------------
    def sessions(self) -> List[object]:
        return list(self._live)

    @property
    def available(self) -> bool:
        return self.ort is not None

    def report(self) -> Optional[dict]:
        """The sessions, their providers and arena settings; None without onnxruntime."""
        if self.ort is None:
            return None
        sessions = []
        for s in self.sessions():
            try:
                providers = list(s.get_providers())
                options = s.get_provider_options()
            except Exception:  # a session whose build failed half-way
                continue
            gpu = next((p for p in providers if p in self.gpu_providers), None)
            arena = None
            if gpu is not None:
                arena = {k: str(v) for k, v in options.get(gpu, {}).items() if k in ARENA_OPTIONS}
            with self._cond:
                running = self._in_flight.get(id(s), 0)
            sessions.append({
                "model": _model_name(s),
                "providers": providers,
                "gpu_provider": gpu,
                "arena": arena,
                "runs_in_flight": running,
                "rebuildable": self._rebuildable(s, providers),
            })
        try:
            available = list(self.ort.get_available_providers())
        except Exception:
            available = []
        return {
            "version": getattr(self.ort, "__version__", None),
            "available_providers": available,
            "sessions": sessions,
        }

    def _rebuildable(self, session, providers) -> bool:
        return (bool(providers) and providers[0] in self.rebuildable
                and session not in self._bound)

    def _find_bindings(self) -> None:
        """Marks the sessions of every IOBinding alive in the process as bound, bindings made
        before the tracker was installed included (one heap scan, at release time only)."""
        binding_cls = getattr(self.ort, "IOBinding", None)
        if binding_cls is None:
            return
        bound_c = set()
        for obj in gc.get_objects():
            if type(obj) is binding_cls or issubclass(type(obj), binding_cls):
                c_session = getattr(obj, "_session", None)
                if c_session is not None:
                    bound_c.add(id(c_session))
        if not bound_c:
            return
        for s in self.sessions():
            if id(getattr(s, "_sess", None)) in bound_c:
                try:
                    self._bound.add(s)
                except TypeError:
                    pass

    # -- giving back -----------------------------------------------------------------------
    def rebuild_idle(self, budget_s: float = REBUILD_BUDGET_S) -> dict:
        """Builds every idle GPU session again, which frees its arena; busy sessions and ones
        that cannot be rebuilt are skipped and named."""
        started = time.monotonic()
        rebuilt, skipped, errors = [], [], []
        self._find_bindings()
        for s in self.sessions():
            name = _model_name(s)
            try:
                providers = list(s.get_providers())
                options = s.get_provider_options()
            except Exception:
                continue
            if not any(p in self.gpu_providers for p in providers):
                continue
            if s in self._bound:
                skipped.append(f"{name} (has an IOBinding: not rebuilt)")
                continue
            if not self._rebuildable(s, providers):
                skipped.append(f"{name} ({providers[0]}: not rebuilt)")
                continue
            if time.monotonic() - started > budget_s:
                skipped.append(f"{name} (out of time)")
                continue
            key = id(s)
            with self._cond:
                if self._in_flight.get(key):
                    skipped.append(f"{name} (running)")
                    continue
                # A binding made since the scan: checked under the lock its maker takes.
                if s in self._bound:
                    skipped.append(f"{name} (has an IOBinding: not rebuilt)")
                    continue
                self._rebuilding.add(key)
            try:
                s.set_providers(providers, [options.get(p, {}) for p in providers])
                rebuilt.append(name)
            except Exception as e:  # the session stays as it was, or says why it cannot
                errors.append(f"{name}: {e}")
            finally:
                with self._cond:
                    self._rebuilding.discard(key)
                    self._cond.notify_all()
        return {"rebuilt": rebuilt, "skipped": skipped, "errors": errors}


def describe_cache(report: Optional[dict], torch_part: Optional[str]) -> str:
    """What `cache` does in this process, in words for vramdeck's window: `report` is
    `OnnxSessions.report()` (None: no onnxruntime), `torch_part` what the PyTorch side does
    (None: there is none)."""
    parts = [torch_part] if torch_part else []
    if report is not None:
        gpu = sum(1 for s in report["sessions"] if s["gpu_provider"])
        if gpu:
            parts.append(f"{gpu} onnxruntime GPU session{'s' if gpu != 1 else ''} rebuilt "
                         "while idle: their arenas go back, models stay loaded, the next run "
                         "is slower")
        else:
            parts.append("no onnxruntime GPU session to rebuild")
    if not parts:
        return "gc only: no PyTorch CUDA and no onnxruntime here"
    return "; ".join(parts)


_tracker: Optional[OnnxSessions] = None
_tracker_lock = threading.Lock()


def tracker() -> OnnxSessions:
    """The process's one tracker, installed on first use (whatever agents ask for it)."""
    global _tracker
    with _tracker_lock:
        if _tracker is None:
            _tracker = OnnxSessions()
        if not _tracker.available:
            _tracker.install()
        return _tracker
