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

Before each prompt runs, the node may ask vramdeck to make room (see `_room_for`): only when
the model files the prompt names do not fit what ComfyUI can free itself, and only while the
user has making room switched on in vramdeck. VRAMDECK_NO_NEED=1 turns this off.

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


# The folders (folder_paths names) whose files a prompt's loaders name: checkpoints, diffusion
# models, text encoders, VAEs, LoRAs, ControlNets, upscalers...
MODEL_FOLDERS = ("checkpoints", "diffusion_models", "unet", "text_encoders", "clip", "vae",
                 "loras", "controlnet", "clip_vision", "upscale_models", "style_models",
                 "gligen", "hypernetworks", "photomaker", "model_patches", "audio_encoders")
# How long a prompt waits for vramdeck to make room (it starts anyway afterwards).
NEED_WAIT_S = 60.0


def _prompt_weights(prompt) -> tuple:
    """(bytes, files) of the model files a prompt's nodes name, as ComfyUI would load them
    (folder_paths resolves each name the way its loader nodes do)."""
    import folder_paths

    names, total = set(), 0
    for node in prompt.values() if isinstance(prompt, dict) else ():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        for value in (inputs or {}).values():
            if not isinstance(value, str) or value in names:
                continue
            for folder in MODEL_FOLDERS:
                try:
                    path = folder_paths.get_full_path(folder, value)
                except Exception:  # a folder this ComfyUI does not have
                    path = None
                if path and os.path.isfile(path):
                    names.add(value)
                    total += os.path.getsize(path)
                    break
    return total, len(names)


def _working_room() -> int:
    """What ComfyUI keeps free below any load for a prompt's activations
    (model_management.minimum_inference_memory: 0.8 GiB plus its reserve)."""
    try:
        import comfy.model_management as mm

        return int(mm.minimum_inference_memory())
    except Exception:
        return 1024**3


def _streams_weights() -> bool:
    """ComfyUI keeps only part of the weights on the card by design: Dynamic VRAM, or
    --lowvram / --novram (model_management.vram_state)."""
    if _dynamic_vram():
        return True
    try:
        import comfy.model_management as mm

        return getattr(mm.vram_state, "name", "") in ("LOW_VRAM", "NO_VRAM")
    except Exception:
        return False


def _on_card(weights: int, total) -> int:
    """Bytes a prompt with `weights` needs free on the card: all of them when they fit beside
    ComfyUI's working room; only the working room when they do not fit the card at all (ComfyUI
    then loads part of them and offloads the rest, however much is freed) or when it streams
    weights by design (Dynamic VRAM, --lowvram, --novram)."""
    room = _working_room()
    if _streams_weights() or (total and weights > int(total) - room):
        return min(weights, room)
    return weights


def _room_for(agent, prompt) -> None:
    """Before a prompt runs: when the weights it names are more than this ComfyUI can find
    room for itself (what it holds loaded, which it unloads for the prompt when it must, and
    torch's cache), vramdeck is asked to free other apps for the rest. A workflow whose weights
    outgrow the card asks only for what the card can hold (ComfyUI offloads the rest, as it
    always would), never for everything. The weights are a floor (activations come on top), so
    vramdeck's own margin is not added here."""
    weights, files = _prompt_weights(prompt)
    if weights == 0:
        return
    total = agent.allocator.total_bytes() if hasattr(agent.allocator, "total_bytes") else None
    on_card = _on_card(weights, total)
    gib = 1024**3
    what = f"ComfyUI prompt ({files} model file{'s' if files != 1 else ''}, " \
           f"{weights / gib:.1f} GiB of weights"
    if on_card < weights:
        log.info("vramdeck: this prompt names %.1f GiB of weights; ComfyUI keeps part of them "
                 "in RAM %s, so only its working room (%.1f GiB) is asked for, not room for "
                 "every weight", weights / gib,
                 "by design here (Dynamic VRAM or --lowvram)" if _streams_weights()
                 else f"since they are more than the {int(total or 0) / gib:.1f} GiB card holds",
                 on_card / gib)
        what += f"; {on_card / gib:.1f} GiB of working room, the rest offloaded by ComfyUI"
    loaded = _loaded_models()[1]
    memory = agent.allocator.memory() or {"allocated": 0, "reserved": 0}
    cached = max(0, memory["reserved"] - memory["allocated"])
    wanted = on_card - loaded - cached
    if wanted <= 0:
        return
    agent.need(wanted, timeout=NEED_WAIT_S, what=what + ")")


def _ask_before_each_prompt(agent, queue) -> None:
    """ComfyUI's prompt worker takes each prompt with `queue.get()` and runs it at once: the
    prompt is looked at there, in the worker thread, so it waits for room (never the server's
    event loop, and never a prompt already running)."""
    original = queue.get

    def get(*args, **kwargs):
        taken = original(*args, **kwargs)
        if taken is not None:
            try:
                _room_for(agent, taken[0][2])
            except Exception as e:  # never stop a prompt for vramdeck's sake
                log.warning("vramdeck: could not ask for room before the prompt: %s", e)
        return taken

    queue.get = get
    # ComfyUI marks a prompt done with `task_done` when it has run (or failed): the job that
    # asked for room has ended, so what vramdeck lent it can be handed back.
    original_done = getattr(queue, "task_done", None)
    if original_done is not None:
        def task_done(*args, **kwargs):
            try:
                return original_done(*args, **kwargs)
            finally:
                agent.done()

        queue.task_done = task_done


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
    if os.environ.get("VRAMDECK_NO_NEED") != "1":
        try:
            _ask_before_each_prompt(_agent, _prompt_queue())
        except Exception as e:  # an older ComfyUI without these internals
            log.warning("vramdeck: prompts will not ask for room first: %s", e)
