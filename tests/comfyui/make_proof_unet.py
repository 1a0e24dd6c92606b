"""Writes an SD1.5-shaped UNet with random weights, built with ComfyUI's own model class, for
tests/comfyui/real_comfyui_proof.py (nothing can be downloaded on the test machines). Run it
with ComfyUI's Python: make_proof_unet.py COMFYUI_DIR OUT.safetensors [fp16|fp32].

The architecture figures are SD1.5's (a 4-channel latent, 320 base channels multiplied by
1, 2, 4, 4, two residual blocks per level, one transformer block at the first three levels and
in the middle, CLIP-L's 768-wide context, 8 heads): ComfyUI's loader recognises the file as
SD1.5 from its keys, as it would a real one. About 860 million parameters: 1.6 GiB in fp16.
"""

import sys

import torch

comfy_dir, out = sys.argv[1], sys.argv[2]
dtype = torch.float32 if len(sys.argv) > 3 and sys.argv[3] == "fp32" else torch.float16
sys.path.insert(0, comfy_dir)

import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True  # weights are built in RAM; ComfyUI must not look for a GPU here
import comfy.ops  # noqa: E402
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

torch.manual_seed(0)
unet = UNetModel(
    image_size=32, in_channels=4, out_channels=4, model_channels=320,
    num_res_blocks=[2, 2, 2, 2], channel_mult=[1, 2, 4, 4],
    transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0], transformer_depth_middle=1,
    transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    use_spatial_transformer=True, legacy=False, context_dim=768, num_heads=8,
    use_linear_in_transformer=False, adm_in_channels=None,
    dtype=dtype, device="cpu", operations=comfy.ops.disable_weight_init,
)
with torch.no_grad():
    for p in unet.parameters():
        p.normal_(0.0, 0.02)
state = {k: v.contiguous() for k, v in unet.state_dict().items()}
params = sum(v.numel() for v in state.values())
save_file(state, out)
print(f"wrote {out}: {params / 1e6:.0f} M parameters, "
      f"{sum(v.numel() * v.element_size() for v in state.values()) / 2**30:.2f} GiB ({dtype})")
