#!/usr/bin/env bash
# The whole cost of sampling, every thread included (the PCIe thread, /proc reads): CPU time of
# `vramdeck log` over 30 s at 10 Hz and at the default 500 ms, while a torch process holds the
# GPU and runs kernels, for each build given, side by side. Not run in CI (no GPU there).
# Usage: tests/gpu/sampling_cost.sh NEW_VRAMDECK OLD_VRAMDECK
set -u
python3 "$(dirname "$0")/busy_workloads.py" starved 140 &
work=$!
sleep 5
for b in "$@"; do
  for ms in 100 500; do
    n=$((30000 / ms))
    /usr/bin/time -f "%U %S" -o /tmp/t "$b" log --interval-ms $ms --count $n > /dev/null
    read -r u s < /tmp/t
    echo "$b at $ms ms: $(awk "BEGIN {printf \"%.2f\", ($u + $s) * 100 / 30}") % of a core (user $u s, system $s s over 30 s)"
  done
done
kill $work 2>/dev/null
