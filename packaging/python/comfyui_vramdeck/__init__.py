"""ComfyUI custom node package: starts the vramdeck agent inside ComfyUI. It adds no nodes.

Copy or link this folder into ComfyUI/custom_nodes/ (it carries its own copy of the agent, so
nothing needs to be pip-installed). What vramdeck's levels then do in ComfyUI:

- cache: gc.collect() and ComfyUI's own soft_empty_cache(); every model stays loaded, even while
  a prompt runs (only memory no tensor uses goes back to the driver).
- unload: asks ComfyUI's prompt queue to unload its models, exactly as ComfyUI's own
  `POST /free {"unload_models": true}` does, so it happens between prompts, never inside one.
  While a prompt runs, the unload is reported as pending and follows when that prompt ends.
  ComfyUI's node cache is kept: the models leave VRAM for system RAM and the next run moves
  them back without reading the disk.
"""

import logging
import os
import sys
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


def _unload_finished(queue) -> bool:
    """The flag was taken by the prompt worker, and the unload it triggers has happened (or the
    next prompt already runs, which means the worker got past it)."""
    if "unload_models" in queue.get_flags(reset=False):
        return False
    return _running(queue) or _loaded_models()[0] == 0


def _unload_comfy_models():
    queue = _prompt_queue()
    busy = _running(queue)
    queue.set_flag("unload_models", True)  # what ComfyUI's own /free does
    pending = agent_module.Deferred(
        "ComfyUI will unload its models after the current prompt" if busy
        else "ComfyUI is unloading its models",
        lambda: _unload_finished(queue))
    if busy:
        return pending
    deadline = time.monotonic() + UNLOAD_WAIT_S
    while time.monotonic() < deadline:
        if _unload_finished(queue):
            return None
        time.sleep(0.02)
    return pending


def _soft_empty_cache():
    import comfy.model_management as mm

    mm.soft_empty_cache()


def _comfy_identity():
    """ComfyUI's HTTP address, so vramdeck lists ComfyUI once, not as agent and as HTTP, and
    what it holds loaded."""
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
    identity = {"name": "ComfyUI", "port": port, "address": address}
    try:
        identity["models_loaded"], identity["models_bytes"] = _loaded_models()
    except Exception:
        pass  # an older ComfyUI without these internals: the rest still holds
    return identity


agent_module.start(
    unload=_unload_comfy_models, cache=_soft_empty_cache, label="ComfyUI", app=_comfy_identity,
    cache_says="ComfyUI's soft_empty_cache returns memory no tensor uses; every model stays "
               "loaded, safe during a prompt",
    unload_says="ComfyUI unloads its models between prompts, as its own /free does; its node "
                "cache stays, so they come back from RAM")
log.info("vramdeck agent started for ComfyUI")
