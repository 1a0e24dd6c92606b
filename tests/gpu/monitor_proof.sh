#!/usr/bin/env bash
# Proof on a real NVIDIA GPU (not run in CI, which has none): vramdeck's memory.used must equal
# nvidia-smi's within 1 MiB, idle and with a process holding ~10 GiB, and list that process.
# Usage: tests/gpu/monitor_proof.sh [path/to/vramdeck]   (needs nvidia-smi and python3 with torch)
set -u
B=${1:-target/release/vramdeck}
Q=timestamp,index,name,memory.used,memory.total,utilization.gpu,temperature.gpu

compare() {  # $1 = label
  local smi ours
  smi=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1 | tr -d ' ')
  ours=$("$B" log --count 1 --no-header | head -1 | awk -F', ' '{print $4}' | tr -d ' MiB')
  echo "$1: nvidia-smi memory.used=${smi} MiB, vramdeck memory.used=${ours} MiB, diff=$((ours - smi)) MiB"
}

echo "== nvidia-smi"; nvidia-smi --query-gpu=$Q --format=csv
echo "== vramdeck log"; "$B" log --count 2 --interval-ms 500
for i in 1 2 3; do compare "idle #$i"; done

python3 - <<'PY' &
import os, time, torch
x = torch.empty(10 * 1024**3, dtype=torch.uint8, device="cuda")
x.fill_(1); torch.cuda.synchronize()
open("/tmp/holder.ready", "w").write(str(os.getpid()))
time.sleep(120)
PY
HOLDER=$!
for _ in $(seq 120); do [ -f /tmp/holder.ready ] && break; sleep 0.5; done
echo "== a python process (pid $(cat /tmp/holder.ready)) holds 10 GiB"
nvidia-smi --query-gpu=$Q --format=csv
"$B" log --count 1
for i in 1 2 3; do compare "holding 10 GiB #$i"; done
echo "== nvidia-smi --query-compute-apps"; nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv
echo "== vramdeck log --processes"; "$B" log --processes --count 1
echo "== vramdeck bench --with-nvidia-smi"; "$B" bench --with-nvidia-smi
kill $HOLDER; rm -f /tmp/holder.ready
