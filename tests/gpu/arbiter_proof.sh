#!/usr/bin/env bash
# Proof on a real NVIDIA GPU with real torch (not run in CI): two PyTorch apps with agents
# share one card. App A holds most of it: a 20 GiB "model" it keeps loaded and the cache of a
# finished job. App B is about to run a job that needs more than is free. It asks with
# vramdeck_agent.need() and then runs the job.
#   1. vramdeck serve --make-room off: nobody makes room; B's job fails with a real CUDA OOM
#      (reported to vramdeck with report_oom).
#   2. vramdeck serve --make-room caches: vramdeck empties A's cache; B's job runs; A's next
#      job still runs; nvidia-smi shows the memory moving from A to B.
#   3. the same, B asking by preset with no free-memory reading of its own (see run_preset).
# Usage: tests/gpu/arbiter_proof.sh [path/to/vramdeck]
set -u
B=${1:-target/release/vramdeck}
export VRAMDECK_AGENT_DIR=/tmp/vramdeck-arbiter-agents PYTHONPATH=packaging/python/comfyui-vramdeck
W=/tmp/vramdeck-arbiter; rm -rf "$W" "$VRAMDECK_AGENT_DIR"; mkdir -p "$W"
GIB=$((1024 * 1024 * 1024))
TOTAL_MIB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1 | tr -d ' ')
# A's job cache: all but 20 GiB of model, ~12 GiB of room and the contexts; B needs 40 GiB.
CACHE_GIB=$(( TOTAL_MIB / 1024 - 20 - 12 - 4 ))
NEED_GIB=40
echo "card: ${TOTAL_MIB} MiB; A: 20 GiB model + ${CACHE_GIB} GiB cache; B needs ${NEED_GIB} GiB"
apps() { nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader | sed 's/^/    /'; }

run() {
  local policy=$1
  rm -rf "$W"/* "$VRAMDECK_AGENT_DIR"
  echo; echo "======== vramdeck serve --make-room $policy"
  "$B" serve --make-room "$policy" --listen 127.0.0.1:19411 --token-file "$W/token" \
    --comfyui none --ollama none --a1111 none 2> "$W/serve.err" > /dev/null &
  local SERVE=$!
  CACHE_GIB=$CACHE_GIB W=$W python3 - <<'PY' &
import os, time, torch, vramdeck_agent
G = 1024**3
models = [torch.ones(20 * G, dtype=torch.uint8, device="cuda")]  # the model it keeps
vramdeck_agent.start(unload=models.clear, label="app A (20 GiB model)")
job = torch.ones(int(os.environ["CACHE_GIB"]) * G, dtype=torch.uint8, device="cuda")
torch.cuda.synchronize(); del job  # the job is done; torch keeps its memory cached
W = os.environ["W"]
open(f"{W}/a.ready", "w").write(str(os.getpid()))
while not os.path.exists(f"{W}/b.done"):
    time.sleep(0.1)
try:  # A's next job, after B's
    nxt = torch.ones(8 * G, dtype=torch.uint8, device="cuda"); torch.cuda.synchronize(); del nxt
    open(f"{W}/a.next", "w").write("A's next job (8 GiB) ran")
except torch.cuda.OutOfMemoryError as e:
    open(f"{W}/a.next", "w").write("A's next job failed: " + str(e).splitlines()[0])
time.sleep(3)
PY
  local A=$!
  for _ in $(seq 600); do [ -f "$W/a.ready" ] && break; sleep 0.2; done
  echo "  before B's job (pid, used):"; apps
  NEED_GIB=$NEED_GIB W=$W python3 - <<'PY' &
import os, time, torch, vramdeck_agent
G = 1024**3
W = os.environ["W"]
need = int(os.environ["NEED_GIB"]) * G
torch.zeros(1, device="cuda")  # the CUDA context first, as a WebUI has it
vramdeck_agent.start(label="app B (video job)")
t = time.time()
answer = vramdeck_agent.need(need, timeout=30, what="app B's video job")
print(f"  B: need() answered in {time.time() - t:.1f} s: granted={answer['granted']}: {answer['message']}", flush=True)
open(f"{W}/b.asked", "w").write("1")
time.sleep(1)
try:
    x = torch.ones(need, dtype=torch.uint8, device="cuda"); torch.cuda.synchronize()
    print(f"  B: the job ran ({need // G} GiB allocated)", flush=True)
    time.sleep(2)
    del x
except torch.cuda.OutOfMemoryError as e:
    vramdeck_agent.report_oom(e)
    print("  B: the job failed: " + str(e).splitlines()[0], flush=True)
    time.sleep(2.5)  # long enough for vramdeck to read the report
open(f"{W}/b.done", "w").write("1")
PY
  local BP=$!
  for _ in $(seq 600); do [ -f "$W/b.asked" ] && break; sleep 0.1; done
  sleep 0.5; echo "  after need() was answered (pid, used):"; apps
  if [ "$policy" = off ]; then
    sleep 1.5; echo "  == vramdeck agents while B's OOM stands"; "$B" agents --comfyui none --ollama none --a1111 none | sed 's/^/    /' | head -12
  fi
  wait $BP
  for _ in $(seq 100); do [ -f "$W/a.next" ] && break; sleep 0.1; done
  echo "  $(cat "$W/a.next" 2>/dev/null)"
  echo "  after B's job (pid, used):"; apps
  wait $A 2>/dev/null
  kill $SERVE; wait $SERVE 2>/dev/null
  echo "  serve said:"; sed 's/^/    /' "$W/serve.err"
}
# 3. B asks by preset, without reading free memory itself (as FaceFusion, which has no torch):
#    vramdeck counts the preset's need (its peak + the default margin + the allowance) and reads
#    free memory from NVML.
run_preset() {
  rm -rf "$W"/* "$VRAMDECK_AGENT_DIR"
  echo; echo "======== vramdeck serve --make-room caches; B asks by preset"
  "$B" serve --make-room caches --listen 127.0.0.1:19411 --token-file "$W/token" \
    --comfyui none --ollama none --a1111 none 2> "$W/serve.err" > /dev/null &
  local SERVE=$!
  CACHE_GIB=$CACHE_GIB W=$W python3 - <<'PY' &
import os, time, torch, vramdeck_agent
G = 1024**3
models = [torch.ones(20 * G, dtype=torch.uint8, device="cuda")]
vramdeck_agent.start(unload=models.clear, label="app A (20 GiB model)")
job = torch.ones(int(os.environ["CACHE_GIB"]) * G, dtype=torch.uint8, device="cuda")
torch.cuda.synchronize(); del job
W = os.environ["W"]
open(f"{W}/a.ready", "w").write("1")
while not os.path.exists(f"{W}/b.done"):
    time.sleep(0.1)
PY
  local A=$!
  for _ in $(seq 600); do [ -f "$W/a.ready" ] && break; sleep 0.2; done
  echo "  before B's job (pid, used):"; apps
  W=$W python3 - <<'PY'
import os, time, torch, vramdeck_agent
W = os.environ["W"]
preset = "Wan2.1 T2V 14B 480p (not quantised)"
torch.zeros(1, device="cuda")
# An allocator that cannot read free memory: vramdeck reads it from NVML.
vramdeck_agent.start(label=preset, allocator=vramdeck_agent.TorchAllocator(import_torch=False))
t = time.time()
answer = vramdeck_agent.need(timeout=30)
print(f"  B: need(preset) answered in {time.time() - t:.1f} s: granted={answer['granted']}: {answer['message']}", flush=True)
try:
    x = torch.ones(41200 * 1024**2, dtype=torch.uint8, device="cuda"); torch.cuda.synchronize()
    print("  B: the preset's peak (41,200 MiB) allocated", flush=True)
    del x
except torch.cuda.OutOfMemoryError as e:
    print("  B: the job failed: " + str(e).splitlines()[0], flush=True)
open(f"{W}/b.done", "w").write("1")
PY
  echo "  after B's job (pid, used):"; apps
  wait $A 2>/dev/null
  kill $SERVE; wait $SERVE 2>/dev/null
  echo "  serve said:"; sed 's/^/    /' "$W/serve.err"
}
run off
run caches
run_preset
