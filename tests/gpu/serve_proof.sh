#!/usr/bin/env bash
# `vramdeck serve` on a real GPU box (run on the GPU machine, never in CI):
#  1. the binary needs no GL/X library (it links libc, libm, libgcc_s only; the window's are
#     loaded when a window opens) and starts where none is installed;
#  2. /metrics equals `nvidia-smi --query-gpu` read at the same moment, while torch holds
#     memory and keeps the GPU busy (memory within 1 MiB, temperature within 1 C,
#     utilisation within 1 % under steady load; power and clocks printed side by side);
#  3. the cost of a scrape: CPU time of the serve process over 30 s without scrapes, then
#     30 s with 10 scrapes a second;
#  4. the query the SSH source sends, run here as ssh would run it, saved to $OUT so the
#     parser's fixture is real output.
# Usage: tests/gpu/serve_proof.sh VRAMDECK
set -u
bin=$1
out=${OUT:-/tmp}
here=$(dirname "$0")
echo "== 1. libraries"
ldd "$bin" | sed 's/ (0x.*//'
echo "GL/X libraries on this machine: $(ldconfig -p | grep -cE 'libGL\.so|libEGL\.so|libX11\.so|libwayland-client')"
tok=$(mktemp -d)
"$bin" serve --listen 127.0.0.1:9401 --interval-ms 1000 --token-file "$tok/token" --comfyui none 2> "$tok/serve.log" &
serve=$!
sleep 3
cat "$tok/serve.log"
python3 - <<'PY' &
import time, torch
x = torch.empty(10 * 1024**3, dtype=torch.uint8, device="cuda")  # 10 GiB held
a = torch.randn(8192, 8192, device="cuda", dtype=torch.float32)
torch.backends.cuda.matmul.allow_tf32 = False
end = time.time() + 75
while time.time() < end:
    for _ in range(4):
        b = a @ a
    torch.cuda.synchronize()
PY
work=$!
sleep 12
echo "== 2. /metrics against nvidia-smi, 8 times 2 s apart (GPU 0)"
printf "%-6s %22s %22s %16s %18s %14s %16s\n" take "FB_USED vs used MiB" "FB_FREE vs free MiB" "util %" "power W" "temp C" "SM clock MHz"
for i in 1 2 3 4 5 6 7 8; do
  m=$(curl -s 127.0.0.1:9401/metrics)
  s=$(nvidia-smi -i 0 --query-gpu=memory.used,memory.free,utilization.gpu,power.draw,temperature.gpu,clocks.sm --format=csv,noheader,nounits)
  get() { echo "$m" | grep "^$1{gpu=\"0\"" | awk '{print $NF}'; }
  IFS=', ' read -r used free util power temp sm <<< "$s"
  printf "%-6s %22s %22s %16s %18s %14s %16s\n" "$i" "$(get DCGM_FI_DEV_FB_USED) / $used" "$(get DCGM_FI_DEV_FB_FREE) / $free" \
    "$(get DCGM_FI_DEV_GPU_UTIL) / $util" "$(get DCGM_FI_DEV_POWER_USAGE) / $power" "$(get DCGM_FI_DEV_GPU_TEMP) / $temp" "$(get DCGM_FI_DEV_SM_CLOCK) / $sm"
  sleep 2
done
echo "labels: $(echo "$m" | grep '^DCGM_FI_DEV_FB_USED{' | head -1 | sed 's/} .*/}/')"
echo "$m" > "$out/metrics.txt"
kill $work 2>/dev/null; wait $work 2>/dev/null
echo "== 3. scrape cost"
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' /proc/$serve/stat; }
c0=$(cpu); sleep 30; c1=$(cpu)
t0=$(date +%s.%N)
for i in $(seq 300); do curl -s -o /dev/null 127.0.0.1:9401/metrics; sleep 0.1; done
t1=$(date +%s.%N)
c2=$(cpu)
bytes=$(curl -s 127.0.0.1:9401/metrics | wc -c)
lat=$(for i in $(seq 50); do curl -s -o /dev/null -w '%{time_total}\n' 127.0.0.1:9401/metrics; done | sort -n | awk '{a[NR]=$1} END {print a[int(NR/2)]*1000}')
awk -v a="$c0" -v b="$c1" -v c="$c2" -v t="$ticks" -v s0="$t0" -v s1="$t1" -v by="$bytes" -v lat="$lat" 'BEGIN {
  idle = (b - a) / t / 30 * 100; busy = (c - b) / t / (s1 - s0) * 100;
  printf "serve at 1 s sampling, no scrapes: %.2f %% of a core\n", idle;
  printf "with 10 scrapes/s: %.2f %% of a core over %.1f s; %.0f us CPU per scrape; %d bytes per scrape; median latency %.2f ms\n",
    busy, s1 - s0, ((c - b) / t - (b - a) / t * (s1 - s0) / 30) / 300 * 1e6, by, lat }'
kill $serve
echo "== 4. the SSH source's query, run as ssh runs it"
fields="index,uuid,pci.bus_id,name,memory.used,memory.total,memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,clocks.sm,clocks.mem,fan.speed"
timeout 3.5 sh -c "nvidia-smi --query-gpu=$fields --format=csv,noheader,nounits -lms 1000" > "$out/smi_query.txt"
echo "exit $? (124 = stopped by timeout, as ssh would be)"; cat "$out/smi_query.txt"
nvidia-smi --version | head -3
