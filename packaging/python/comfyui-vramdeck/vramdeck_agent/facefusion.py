"""Starts FaceFusion with the vramdeck agent inside it.

FaceFusion has no plugin system, so this module takes the place of its `facefusion.py` entry
script: from FaceFusion's folder, in FaceFusion's Python environment,

    python -m vramdeck_agent.facefusion run            # instead of: python facefusion.py run

Every argument goes to FaceFusion unchanged. Nothing in FaceFusion is edited. What vramdeck's
levels then do (FaceFusion 3.x keeps its onnxruntime sessions in
`inference_manager.INFERENCE_POOL_SET`, one pool per module, model and device):

- cache: onnxruntime sessions that no frame is running are rebuilt, which hands their arenas
  back; the models stay loaded (see `_onnx`).
- unload: FaceFusion's inference pools are emptied, the same clearing FaceFusion's own
  `--video-memory-strategy strict` does after a job, so every session and its weights leave
  VRAM; the next preview or job loads the models again from disk. While a job runs, the unload
  waits for the job to end (a pool emptied mid-job would only be built again for the next
  frame).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Optional

from . import TorchAllocator, start
from ._later import AfterBusy

log = logging.getLogger("vramdeck_agent")

# How long an unload waits for FaceFusion to stop loading a model (get_inference_pool holds
# the pool lock while it builds sessions) before it is handed back as pending.
LOCK_WAIT_S = 8.0
JOB_POLL_S = 0.2

UNLOAD_SAYS = ("FaceFusion empties its inference pools (what --video-memory-strategy strict "
               "does after a job): every session and its weights leave VRAM, the next preview "
               "or job loads the models from disk; during a job it waits for the job to end")

_pool_lock = threading.RLock()


def _guard_pools(inference_manager) -> None:
    """Makes FaceFusion's pool lookups and our clearing exclusive: get_inference_pool stores a
    new pool and then reads it back, and a clear between the two would hand a processor None."""
    if getattr(inference_manager, "_vramdeck_guarded", False):
        return
    for name in ("get_inference_pool", "clear_inference_pool"):
        original = getattr(inference_manager, name)

        def guarded(*args, _original=original, **kwargs):
            with _pool_lock:
                return _original(*args, **kwargs)

        guarded.__name__ = name
        guarded.__doc__ = original.__doc__
        setattr(inference_manager, name, guarded)
    inference_manager._vramdeck_guarded = True


def _pools():
    from facefusion import inference_manager

    return inference_manager.INFERENCE_POOL_SET


def loaded_sessions() -> int:
    """Sessions in FaceFusion's pools now (a pool shared by the UI and the CLI counts once)."""
    seen = set()
    count = 0
    for context in list(_pools().values()):
        for pool in list(context.values()):
            if id(pool) in seen:
                continue
            seen.add(id(pool))
            count += len(pool)
    return count


def _busy() -> bool:
    from facefusion import process_manager

    return not process_manager.is_pending()


def _empty_pools() -> bool:
    """Empties every pool; False if a model load held the lock for too long."""
    if not _pool_lock.acquire(timeout=LOCK_WAIT_S):
        return False
    try:
        for context in _pools().values():
            context.clear()
        return True
    finally:
        _pool_lock.release()


# One wait for the running job, however often an unload is asked for during it.
unload_inference_pools = AfterBusy(
    lambda: _busy(), lambda: _empty_pools(),
    "FaceFusion will empty its inference pools when the running job ends",
    poll_s=JOB_POLL_S, name="vramdeck-facefusion-unload")
unload_inference_pools.__qualname__ = "unload_inference_pools"  # how the agent names it


def _label() -> str:
    """The preset vramdeck knows FaceFusion by, so a run's peak calibrates it."""
    try:
        from facefusion import state_manager

        model = state_manager.get_item("face_swapper_model") or ""
    except Exception:
        model = ""
    if model.endswith("_fp16"):
        return "FaceFusion (FP16)"
    return f"FaceFusion ({model})" if model else "FaceFusion"


def _identity() -> dict:
    identity = {"name": "FaceFusion"}
    try:
        from facefusion import metadata

        identity["version"] = metadata.get("version")
    except Exception:
        pass
    try:
        identity["models_loaded"] = loaded_sessions()
    except Exception:
        pass
    return identity


def _ask_before_each_job(process_manager, agent) -> None:
    """Every FaceFusion job (image, video, a queued job run) begins with
    `process_manager.start()`; before it, vramdeck is asked for room for the job's preset (the
    label: FaceFusion with the chosen face swapper), which vramdeck counts as its advisor does,
    and the job waits while vramdeck frees other apps by the user's policy. Without a vramdeck
    running, or with making room off, the job starts at once (or within 2 s)."""
    if getattr(process_manager, "_vramdeck_asks", False):
        return
    original = process_manager.start

    def start(*args, **kwargs):
        try:
            agent.need(what="FaceFusion job")
        except Exception as e:  # never stop a job for vramdeck's sake
            log.warning("vramdeck: could not ask for room before the job: %s", e)
        return original(*args, **kwargs)

    start.__doc__ = original.__doc__
    process_manager.start = start
    process_manager._vramdeck_asks = True


def install(directory: Optional[str] = None):
    """Starts the agent for a FaceFusion imported in this process; returns it (None if it could
    not start: FaceFusion then runs as usual)."""
    from facefusion import inference_manager, process_manager

    _guard_pools(inference_manager)
    agent = start(unload=unload_inference_pools, label=_label, app=_identity, onnx=True,
                  unload_says=UNLOAD_SAYS, directory=directory,
                  allocator=TorchAllocator(import_torch=False))
    if agent is not None and os.environ.get("VRAMDECK_NO_NEED") != "1":
        _ask_before_each_job(process_manager, agent)
    return agent


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    here = os.getcwd()
    if not os.path.isfile(os.path.join(here, "facefusion.py")) or \
            not os.path.isdir(os.path.join(here, "facefusion")):
        sys.stderr.write(
            "vramdeck_agent.facefusion: run this from FaceFusion's folder (the one with "
            f"facefusion.py), in FaceFusion's Python environment; {here} is not it.\n")
        raise SystemExit(2)
    if here not in sys.path:
        sys.path.insert(0, here)
    # What FaceFusion's own entry script does before anything else.
    os.environ["OMP_NUM_THREADS"] = "1"
    sys.argv = [os.path.join(here, "facefusion.py")] + argv
    from facefusion import conda, core

    if install() is None:
        log.warning("vramdeck agent did not start; FaceFusion runs without it")
    conda.setup()
    core.cli()


if __name__ == "__main__":
    main()
