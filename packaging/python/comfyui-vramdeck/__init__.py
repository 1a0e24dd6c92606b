"""ComfyUI custom node package: starts the vramdeck agent inside ComfyUI. It adds no nodes.

Put this folder into ComfyUI/custom_nodes/ as `comfyui-vramdeck` (copy, link, the Comfy
registry, or a git clone of the node archive; README says how). It carries its own copy of the
agent, so nothing needs to be pip-installed. What vramdeck's levels then do in ComfyUI:

- cache: gc.collect() and ComfyUI's own soft_empty_cache(); every model stays loaded, even while
  a prompt runs (only memory no tensor uses goes back to the driver). With Dynamic VRAM
  (comfy-aimdo, ComfyUI's default on NVIDIA with PyTorch 2.8+), idle models' weights sit in
  aimdo's own VRAM buffer, which soft_empty_cache does not touch: aimdo hands that VRAM back by
  itself when another process needs it (it watches NVML), unless ComfyUI runs with
  --disable-nvml-pressure.
- unload: asks ComfyUI's prompt queue to unload its models, exactly as ComfyUI's own
  `POST /free {"unload_models": true}` does, so it happens between prompts, never inside one.
  While a prompt runs, the unload is reported as pending and follows when that prompt ends.
  ComfyUI's node cache is kept: the models leave VRAM for system RAM and the next run moves
  them back without reading the disk.

ComfyUI's queue wakes its worker once per flag it is given: a second unload flag set while the
worker is busy unloading wakes nobody and stays set until the worker's next wake-up (up to
1,000 s), then unloads after the user's next prompt. So the node sets the flag at most once per
unload and counts the unload done when ComfyUI holds no models (or has moved on to the next
prompt), clearing a flag of its own that ComfyUI no longer needs.
"""

import logging
import os
import sys
import threading
import time

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}

log = logging.getLogger("vramdeck_agent")

try:
    from . import vramdeck_agent as agent_module  # the copy in this folder, same version
except ImportError:  # loaded as a plain module: find the folder through links
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    import vramdeck_agent as agent_module

# How long a free may wait for ComfyUI's worker to unload when no prompt runs; vramdeck's own
# limit for a free is 20 s, so a slower unload is handed back as pending instead.
UNLOAD_WAIT_S = 12.0


def _prompt_queue():
    from server import PromptServer  # only importable inside ComfyUI

    return PromptServer.instance.prompt_queue


def _running(queue) -> bool:
    volatile = getattr(queue, "get_current_queue_volatile", None) or queue.get_current_queue
    running, _pending = volatile()
    return bool(running)


def _loaded_models():
    """(count, bytes on the device) of the models ComfyUI holds loaded now."""
    import comfy.model_management as mm

    loaded = list(mm.current_loaded_models)  # a copy: the prompt worker changes the list
    return len(loaded), sum(int(m.model_loaded_memory()) for m in loaded)


def _on_cpu() -> bool:
    """ComfyUI runs on the CPU (--cpu): its models are in RAM, there is no VRAM to give back."""
    try:
        import comfy.model_management as mm

        return bool(mm.cpu_mode())
    except Exception:
        return False


def _dynamic_vram() -> bool:
    """ComfyUI runs with Dynamic VRAM (comfy-aimdo): ComfyUI sets this once aimdo is on."""
    try:
        import comfy.memory_management as memory

        return bool(getattr(memory, "aimdo_enabled", False))
    except Exception:
        return False


def _drop_leftover_flag(queue) -> None:
    """Removes an `unload_models` flag once ComfyUI holds no models: left set, it would
    unload the models of the user's next prompt right after that prompt."""
    mutex, flags = getattr(queue, "mutex", None), getattr(queue, "flags", None)
    if mutex is None or not isinstance(flags, dict):
        return
    with mutex:
        flags.pop("unload_models", None)


class _Unload:
    """One unload at a time: asking again while one is under way joins it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pending = None  # the Deferred of the unload under way

    def finished(self, queue) -> bool:
        """The unload has happened: ComfyUI holds no models (its flag is dropped if it is
        still set), or a prompt runs after the worker took the flag."""
        flag_set = "unload_models" in queue.get_flags(reset=False)
        if _loaded_models()[0] == 0:
            if flag_set and not _running(queue):
                _drop_leftover_flag(queue)
            return True
        return not flag_set and _running(queue)

    def __call__(self):
        queue = _prompt_queue()
        with self.lock:
            if self.pending is not None and not self.pending.done():
                return self.pending
            busy = _running(queue)
            if not busy and _loaded_models()[0] == 0:
                # Nothing loaded: no flag to set, and one another client left (its notify
                # lost) has nothing left to do but unload the next prompt's models.
                _drop_leftover_flag(queue)
                return None
            if "unload_models" not in queue.get_flags(reset=False):
                queue.set_flag("unload_models", True)  # what ComfyUI's own /free does
            happened = threading.Event()  # once done, done: the next prompt loads again

            def done() -> bool:
                if not happened.is_set() and self.finished(queue):
                    happened.set()
                return happened.is_set()

            self.pending = agent_module.Deferred(
                "ComfyUI will unload its models after the current prompt" if busy
                else "ComfyUI is unloading its models", done)
            pending = self.pending
        if busy:
            return pending
        deadline = time.monotonic() + UNLOAD_WAIT_S
        while time.monotonic() < deadline:
            if pending.done():
                return None
            time.sleep(0.02)
        return pending


_unload_comfy_models = _Unload()
_unload_comfy_models.__qualname__ = "_unload_comfy_models"  # how the agent names the hook


def _soft_empty_cache():
    import comfy.model_management as mm

    mm.soft_empty_cache()


def _comfy_identity():
    """ComfyUI's HTTP address, so vramdeck lists ComfyUI once, not as agent and as HTTP, what
    it holds loaded, and how it manages memory."""
    port, address = None, None
    try:
        from server import PromptServer

        port = getattr(PromptServer.instance, "port", None)
        address = getattr(PromptServer.instance, "address", None)
    except Exception:
        pass
    if port is None:
        try:
            from comfy.cli_args import args

            port, address = args.port, args.listen
        except Exception:
            pass
    identity = {"name": "ComfyUI", "port": port, "address": address,
                "dynamic_vram": _dynamic_vram(), "device": "cpu" if _on_cpu() else "gpu"}
    try:
        identity["models_loaded"], identity["models_bytes"] = _loaded_models()
    except Exception:
        pass  # an older ComfyUI without these internals: the rest still holds
    return identity


def _what_levels_do():
    """(cache, unload) in words for vramdeck's window, for this ComfyUI."""
    if _on_cpu():
        return ("ComfyUI runs on the CPU (--cpu): no VRAM to give back",
                "ComfyUI runs on the CPU: unloading frees system RAM, no VRAM")
    if _dynamic_vram():
        return ("Dynamic VRAM: soft_empty_cache returns PyTorch's cache only; idle models' "
                "weights stay in aimdo's VRAM buffer, which aimdo hands back by itself when "
                "another process needs VRAM",
                "ComfyUI unloads its models between prompts, aimdo's VRAM buffer included; its "
                "node cache stays, so they come back from RAM")
    return ("ComfyUI's soft_empty_cache returns memory no tensor uses; every model stays "
            "loaded, safe during a prompt",
            "ComfyUI unloads its models between prompts, as its own /free does; its node "
            "cache stays, so they come back from RAM")


_cache_says, _unload_says = _what_levels_do()
_agent = agent_module.start(
    unload=_unload_comfy_models, cache=_soft_empty_cache, label="ComfyUI", app=_comfy_identity,
    cache_says=_cache_says, unload_says=_unload_says)
if _agent is not None and _agent.unload_hooks != [_unload_comfy_models]:
    log.warning("vramdeck agent already runs in this ComfyUI (another copy of the vramdeck node "
                "is installed); this copy, %s, does nothing: remove one of them",
                os.path.dirname(os.path.abspath(__file__)))
elif _agent is not None:
    log.info("vramdeck agent started for ComfyUI")
