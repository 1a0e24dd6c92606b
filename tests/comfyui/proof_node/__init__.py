"""Test scaffolding for tests/comfyui/real_comfyui_proof.py, never shipped: one output node that
makes ComfyUI's own model management load a model onto the device (as a sampler would) and then
holds the prompt for a while, so a release can be asked for while a prompt runs."""

import logging
import time

import comfy.model_management


class VramdeckProofHold:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL",),
            "seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 600.0}),
            "tag": ("STRING", {"default": ""}),
        }}

    RETURN_TYPES = ()
    FUNCTION = "hold"
    OUTPUT_NODE = True
    CATEGORY = "testing"

    def hold(self, model, seconds, tag):
        comfy.model_management.load_models_gpu([model])
        logging.info("vramdeck proof: model loaded, holding the prompt %.1f s (%s)", seconds, tag)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            comfy.model_management.throw_exception_if_processing_interrupted()
            time.sleep(0.05)
        logging.info("vramdeck proof: hold ended (%s)", tag)
        return ()


NODE_CLASS_MAPPINGS = {"VramdeckProofHold": VramdeckProofHold}


class VramdeckProofAllocate:
    """Asks the device for more memory than it has, inside a prompt, so ComfyUI's own
    out-of-memory handling and console messages can be captured as they really are."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"gib": ("FLOAT", {"default": 4096.0, "min": 0.0, "max": 1e6})}}

    RETURN_TYPES = ()
    FUNCTION = "allocate"
    OUTPUT_NODE = True
    CATEGORY = "testing"

    def allocate(self, gib):
        import torch

        device = comfy.model_management.get_torch_device()
        blob = torch.empty(int(gib * 2**30), dtype=torch.uint8, device=device)
        return (blob.numel(),) and ()


NODE_CLASS_MAPPINGS["VramdeckProofAllocate"] = VramdeckProofAllocate


def _capture_requests_and_flags():
    """Records every HTTP request ComfyUI receives and every flag set on its prompt queue (by
    the /free route or by the vramdeck node), one JSON line each, in $VRAMDECK_PROOF_CAPTURE:
    the proof counts them per action."""
    import json
    import os
    import threading

    path = os.environ.get("VRAMDECK_PROOF_CAPTURE")
    if not path:
        return
    from aiohttp import web
    from server import PromptServer

    lock = threading.Lock()

    def record(entry):
        with lock, open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    @web.middleware
    async def capture(request, handler):
        record({"request": f"{request.method} {request.path}"})
        return await handler(request)

    PromptServer.instance.app.middlewares.append(capture)
    queue = PromptServer.instance.prompt_queue
    set_flag = queue.set_flag

    def recording_set_flag(name, data):
        record({"set_flag": name})
        return set_flag(name, data)

    queue.set_flag = recording_set_flag


_capture_requests_and_flags()
