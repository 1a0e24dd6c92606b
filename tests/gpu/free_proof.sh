#!/usr/bin/env bash
# Proof on a real NVIDIA GPU with real torch (not run in CI): a process allocates 10 GiB and
# frees the tensor (PyTorch keeps it cached); `vramdeck free` releases it through the agent and
# NVML's used memory drops by at least 9.5 GiB.
# With VRAMDECK_AGENT_TRANSPORT=tcp the agent and vramdeck use the loopback transport (Windows'
# transport: a port and a secret in <pid>.json, the HMAC handshake) instead of a Unix socket.
# Usage: [VRAMDECK_AGENT_TRANSPORT=tcp] tests/gpu/free_proof.sh [path/to/vramdeck]
set -u
B=${1:-target/release/vramdeck}
export VRAMDECK_AGENT_DIR=/tmp/vramdeck-proof-agents PYTHONPATH=packaging/python/comfyui-vramdeck
rm -rf "$VRAMDECK_AGENT_DIR"
used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1 | tr -d ' '; }

python3 - <<'PY' &
import os, time, torch, vramdeck_agent
models = []
def unload():
    models.clear()
vramdeck_agent.start(unload=unload, label="proof: 10 GiB then del")
x = torch.empty(10 * 1024**3, dtype=torch.uint8, device="cuda"); x.fill_(1)
models.append(torch.empty(1024**3, dtype=torch.uint8, device="cuda"))  # a 1 GiB "model"
torch.cuda.synchronize()
del x  # freed by Python, still reserved by PyTorch's caching allocator
print("allocated", torch.cuda.memory_allocated(), "reserved", torch.cuda.memory_reserved(), flush=True)
open("/tmp/holder.ready", "w").write(str(os.getpid()))
time.sleep(120)
PY
HOLDER=$!
for _ in $(seq 120); do [ -f /tmp/holder.ready ] && break; sleep 0.5; done
echo "== transport: ${VRAMDECK_AGENT_TRANSPORT:-unix socket}; the agent directory:"
ls -l "$VRAMDECK_AGENT_DIR"
echo "== vramdeck agents"; "$B" agents --comfyui none
BEFORE=$(used); echo "nvidia-smi memory.used before: $BEFORE MiB"
echo "== vramdeck free --level cache"; "$B" free --comfyui none
AFTER=$(used); echo "nvidia-smi memory.used after: $AFTER MiB (dropped $((BEFORE - AFTER)) MiB; 9.5 GiB = 9728 MiB)"
[ $((BEFORE - AFTER)) -ge 9728 ] && echo "PASS: dropped >= 9.5 GiB" || echo "FAIL: dropped < 9.5 GiB"
echo "== vramdeck free --level unload --pid $(cat /tmp/holder.ready)"; "$B" free --level unload --pid "$(cat /tmp/holder.ready)" --comfyui none
echo "nvidia-smi memory.used after unload: $(used) MiB"
echo "== vramdeck agents"; "$B" agents --comfyui none
kill $HOLDER; wait $HOLDER 2>/dev/null; rm -f /tmp/holder.ready
echo "== after the process was killed"; "$B" agents --comfyui none

echo "== rounding: NVML v2 bytes vs nvidia-smi"
python3 - <<'PY' &
import time, torch
x = torch.empty(10 * 1024**3 + 12345, dtype=torch.uint8, device="cuda"); torch.cuda.synchronize()
open("/tmp/holder2.ready", "w").write("1"); time.sleep(30)
PY
H2=$!
for _ in $(seq 120); do [ -f /tmp/holder2.ready ] && break; sleep 0.5; done
python3 -c "
import pynvml as n; n.nvmlInit(); h=n.nvmlDeviceGetHandleByIndex(0)
m=n.nvmlDeviceGetMemoryInfo(h, version=n.nvmlMemory_v2)
print('v2 bytes used', m.used, 'reserved', m.reserved, 'total', m.total, 'free', m.free, 'used/MiB', m.used/1048576)
" 2>&1 | tail -1
echo "nvidia-smi: $(used) MiB; vramdeck: $("$B" log --count 1 --no-header | awk -F', ' '{print $4}')"
kill $H2; rm -f /tmp/holder2.ready
