#!/usr/bin/env bash
# One device run for the ComfyUI and out-of-memory proofs (the GPU machine has no network): the
# working tree carries ComfyUI's source (.comfy/comfy_src.tgz, fetched in the session, never
# committed), the Python wheels it lacks (.whl/) and the release binary (.comfy/vramdeck.gz).
# Everything it produces lands in $OUT.
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site
mkdir -p /tmp/c && tar xzf .comfy/comfy_src.tgz -C /tmp/c
gunzip -c .comfy/vramdeck.gz > /tmp/vramdeck && chmod +x /tmp/vramdeck
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'

echo "== real PyTorch out-of-memory messages"
timeout 170 python3 tests/gpu/oom_capture.py /tmp/oom
tar czf "$OUT/oom.tgz" -C /tmp oom

echo "== real ComfyUI"
timeout 380 python3 tests/comfyui/real_comfyui_proof.py --comfyui /tmp/c/ComfyUI \
  --vramdeck /tmp/vramdeck --python python3 --hold 15 --log-dir /tmp/proof
status=$?
tar czf "$OUT/comfy_proof_logs.tgz" -C /tmp proof
exit $status
