"""ComfyUI custom node package: starts the vramdeck agent inside ComfyUI.

Copy or link this folder into ComfyUI/custom_nodes/. "Free VRAM" in vramdeck then releases
ComfyUI's cache, and at level "unload" also unloads its models through ComfyUI's own
model management. It adds no nodes to the graph.
"""

import logging

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}

try:
    import vramdeck_agent
except ImportError:  # not pip-installed: use the copy beside this folder in a vramdeck checkout
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import vramdeck_agent


def _unload_comfy_models():
    import comfy.model_management as mm  # only importable inside ComfyUI

    mm.unload_all_models()
    mm.soft_empty_cache()


vramdeck_agent.start(unload=_unload_comfy_models, label="ComfyUI")
logging.getLogger("vramdeck_agent").info("vramdeck agent started for ComfyUI")
