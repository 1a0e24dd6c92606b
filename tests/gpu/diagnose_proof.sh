#!/usr/bin/env bash
# Proof on a real NVIDIA GPU (not run in CI, which has none) for `vramdeck diagnose` and the new
# fields: three real torch workloads (tests/gpu/busy_workloads.py) — CPU-starved, GPU-bound,
# PCIe-heavy — each diagnosed while it runs, with nvidia-smi's own view of the same seconds
# (dmon: power, utilisation, clocks, PCIe; pmon: per-process SM; query-gpu: engines and clock
# events) beside it; then the sampling cost of this build and of an older one, side by side.
# Usage: tests/gpu/diagnose_proof.sh NEW_VRAMDECK [OLD_VRAMDECK]   (needs torch and nvidia-smi)
set -u
B=${1:-target/release/vramdeck}
OLD=${2:-}
HERE=$(dirname "$0")
Q=utilization.gpu,utilization.encoder,utilization.decoder,clocks.sm,clocks.max.sm,clocks_event_reasons.active,power.draw,power.limit,pcie.link.gen.max,pcie.link.width.max

echo "== runtime PM status of the NVIDIA devices (sysfs)"
for d in /sys/bus/pci/devices/*; do
  [ "$(cat "$d/vendor" 2>/dev/null)" = 0x10de ] || continue
  echo "$(basename "$d") class=$(cat "$d/class") runtime_status=$(cat "$d/power/runtime_status" 2>/dev/null)"
done

for w in ${WORKLOADS:-starved bound bound32 pcie h2d bf16}; do
  echo; echo "======== workload: $w"
  python3 "$HERE/busy_workloads.py" "$w" 25 &
  pid=$!
  sleep 4
  nvidia-smi dmon -s puct -c 8 > /tmp/dmon.txt 2>&1 &
  d=$!
  nvidia-smi pmon -s u -c 4 > /tmp/pmon.txt 2>&1 &
  p=$!
  nvidia-smi --query-gpu=$Q --format=csv -lms 1000 > /tmp/query.txt 2>&1 &
  q=$!
  "$B" diagnose --seconds 10
  "$B" diagnose --seconds 3 --json > /tmp/diag.json
  kill $q 2>/dev/null
  # Only the monitors: the workload keeps running for the process log below.
  wait $d $p $q 2>/dev/null
  echo "-- vramdeck diagnose --json (verdict and the means it measured)"
  grep -E '"verdict"|"busy_share"|"means"|_mbs|"encoder"|"decoder"|"sm_clock_mhz"|"host_cpu|"power_w"' /tmp/diag.json
  echo "-- vramdeck log --processes"
  "$B" log --processes --count 1
  echo "-- nvidia-smi dmon -s puct"; cat /tmp/dmon.txt
  echo "-- nvidia-smi pmon -s u"; cat /tmp/pmon.txt
  echo "-- nvidia-smi --query-gpu"; head -8 /tmp/query.txt
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
done

echo; echo "======== sampling cost, this build"; "$B" bench --cadence-samples 40
if [ -n "$OLD" ]; then echo; echo "======== sampling cost, the older build"; "$OLD" bench --cadence-samples 40; fi
