#!/usr/bin/env bash
# CPU (percent of one core) and resident memory of the open window, for each vramdeck binary
# given, side by side, at 1480x900 and 1920x1080, demo mode, default settings (500 ms sampling),
# under Xvfb (Mesa's software OpenGL: llvmpipe). Each run settles 20 s, then is measured 60 s.
#
#   tests/bench/window_cpu.sh target/release/vramdeck /tmp/old/vramdeck
#
# Needs Xvfb and xdotool (apt-get install xvfb xdotool). Not run in CI: it measures only.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 VRAMDECK [VRAMDECK...]" >&2; exit 2; }
settle=${SETTLE:-20}
measure=${MEASURE:-60}
ticks=$(getconf CLK_TCK)
printf '%-12s %-40s %10s %10s\n' "size" "binary" "CPU %" "RSS MiB"
for size in 1480x900 1920x1080; do
  for bin in "$@"; do
    display=":$((RANDOM % 300 + 300))"
    Xvfb "$display" -screen 0 "${size}x24" >/dev/null 2>&1 &
    xvfb=$!
    sleep 1
    cfg=$(mktemp -d)
    DISPLAY=$display VRAMDECK_CONFIG_DIR=$cfg VRAMDECK_DATA_DIR=$cfg VRAMDECK_AGENT_DIR=$cfg/a \
      "$bin" --demo >/dev/null 2>&1 &
    pid=$!
    sleep 3
    # No window manager under Xvfb: size the window to the screen by hand.
    win=$(DISPLAY=$display xdotool search --pid "$pid" --name vramdeck | head -1 || true)
    [ -n "$win" ] && DISPLAY=$display xdotool windowsize "$win" "${size%x*}" "${size#*x}" \
      windowmove "$win" 0 0
    sleep "$settle"
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    sleep "$measure"
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    printf '%-12s %-40s %10.2f %10.1f\n' "$size" "$bin" \
      "$(echo "($t1-$t0)*100/$ticks/$measure" | bc -l)" "$(echo "$rss/1024" | bc -l)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    kill "$xvfb"; wait "$xvfb" 2>/dev/null || true
    rm -rf "$cfg"
  done
done
