#!/usr/bin/env bash
# Peak memory and CPU for a 200 MB console log of one out-of-memory error retried 250,001
# times (a WebUI that retries a failing job all night), for each vramdeck binary given, side by
# side: `vramdeck analyze LOG` (peak RSS, CPU, bytes printed) and the window opening the same
# log under Xvfb (peak RSS, RSS once the analysis is shown, CPU while idle after it).
#
#   tests/bench/big_log_memory.sh target/release/vramdeck /tmp/old/vramdeck
#
# Needs: /usr/bin/time, and for the window part Xvfb (apt-get install xvfb). Not run in CI:
# it measures, it asserts nothing.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 VRAMDECK [VRAMDECK...]" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/retried_oom.log

# The message is torch 2.11's own wording, captured on an H100 (tests/fixtures/logs/
# torch211_own_live_tensors.log); each retry prints the whole traceback again.
python3 - "$log" <<'PY'
import sys
event = open("tests/fixtures/logs/torch211_own_live_tensors.log").read()
if not event.endswith("\n"):
    event += "\n"
prefix = "!!! Exception during processing !!! CUDA out of memory: the queue retries the job now\n"
with open(sys.argv[1], "w") as out:
    for _ in range(250_001):
        out.write(prefix)
        out.write(event)
PY
printf 'log: %s bytes, 250,001 events\n\n' "$(stat -c %s "$log")"

printf '%-40s %14s %10s %14s\n' "vramdeck analyze LOG" "peak RSS" "CPU s" "bytes printed"
for bin in "$@"; do
  /usr/bin/time -f '%M %U %S' -o "$work/time" "$bin" analyze "$log" >"$work/out" 2>/dev/null || true
  read -r kib user sys <"$work/time"
  printf '%-40s %11.1f MiB %10.2f %14s\n' "$bin" "$(echo "$kib/1024" | bc -l)" \
    "$(echo "$user+$sys" | bc -l)" "$(stat -c %s "$work/out")"
done

command -v Xvfb >/dev/null || { echo "(no Xvfb: window part skipped)"; exit 0; }
printf '\n%-40s %14s %14s %14s\n' "window opening LOG" "peak RSS" "RSS after" "idle CPU %"
display=":$((RANDOM % 300 + 300))"
Xvfb "$display" -screen 0 1280x720x24 >/dev/null 2>&1 &
xvfb=$!
sleep 1
for bin in "$@"; do
  cfg=$(mktemp -d)
  DISPLAY=$display VRAMDECK_CONFIG_DIR=$cfg VRAMDECK_DATA_DIR=$cfg VRAMDECK_AGENT_DIR=$cfg/a \
    "$bin" --demo "$log" >/dev/null 2>&1 &
  pid=$!
  # The older binary had no FILE argument: it is handed the log by the drop path's CLI flag
  # where it exists; otherwise the figure is for an empty window (marked below).
  sleep 25
  if ! kill -0 "$pid" 2>/dev/null; then
    printf '%-40s %14s\n' "$bin" "(exited: no FILE argument?)"
    continue
  fi
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  sleep 10
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  ticks=$(getconf CLK_TCK)
  printf '%-40s %11.1f MiB %11.1f MiB %14.1f\n' "$bin" "$(echo "$hwm/1024" | bc -l)" \
    "$(echo "$rss/1024" | bc -l)" "$(echo "($t1-$t0)*100/$ticks/10" | bc -l)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$cfg"
done
kill "$xvfb"
