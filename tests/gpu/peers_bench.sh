#!/usr/bin/env bash
# vramdeck and its peers in one run on the GPU machine (tests/gpu/peers_bench.py measures).
# Needs, carried in .peers/ (the GPU machine has no network):
#   .peers/whl  nvitop, gpustat and their wheels:
#               pip download nvitop --only-binary=:all: --python-version 3.12 \
#                 --platform manylinux2014_x86_64 --platform any -d .peers/whl
#               pip wheel --no-deps gpustat -w .peers/whl (gpustat ships no wheel)
#   .peers/deb  nvtop from Debian's contrib (apt-get download nvtop with contrib in the
#               sources), and libegl1 + libglvnd0 (the EGL loader the window's offscreen
#               bench opens; NVIDIA's own EGL comes with the driver)
# Usage: tests/gpu/peers_bench.sh VRAMDECK
set -u
bin=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p /opt/peers
for d in "$root"/.peers/deb/*.deb; do dpkg -x "$d" /opt/peers; done
python3 -m pip install --quiet --no-index --find-links "$root/.peers/whl" --target /opt/peers/py nvitop gpustat 2>&1 | tail -2
export PYTHONPATH=/opt/peers/py
export LD_LIBRARY_PATH=/opt/peers/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
for f in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json; do
  [ -f "$f" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$f && break
done
echo "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1); $(nproc) cores; $(date -u +%F)"
echo "peers: nvtop $(/opt/peers/usr/bin/nvtop --version 2>&1 | head -1 | awk '{print $NF}'), nvitop $(python3 -c 'import nvitop; print(nvitop.__version__)'), gpustat $(python3 -c 'import gpustat; print(gpustat.__version__)'), $(nvidia-smi --version | head -1)"
cat > /tmp/subprocess_monitor.py <<'PY'
# The seed article's way: one nvidia-smi subprocess per reading, appended to a CSV file.
import subprocess, sys, time
interval = float(sys.argv[1])
with open("/tmp/subprocess_monitor.csv", "w") as out:
    while True:
        row = subprocess.run(["nvidia-smi", "--query-gpu=timestamp,index,name,memory.used,memory.total,utilization.gpu,temperature.gpu",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
        out.write(row)
        out.flush()
        time.sleep(interval)
PY
python3 "$here/busy_workloads.py" bound32 900 &
work=$!
sleep 8
run() {
  local s=$1 dur=$2 frames
  local ms; ms=$(awk "BEGIN {print int($s * 1000)}")
  frames=$(awk "BEGIN {print int(($dur + 10) / $s) + 10}")
  local nvitop_s; nvitop_s=$(awk "BEGIN {print ($s < 0.25) ? 0.25 : $s}")
  local tenths; tenths=$(awk "BEGIN {t = int($s * 10); print (t < 1) ? 1 : t}")
  echo "== every $s s"
  python3 "$here/peers_bench.py" "$s" "$dur" 6 \
    "vramdeck window (EGL, NVIDIA)=$bin bench --offscreen --frames $frames --frame-ms $ms --hours 24" \
    "vramdeck log=$bin log --interval-ms $ms > /dev/null" \
    "vramdeck serve=$bin serve --interval-ms $ms --listen 127.0.0.1:9402 --token-file /tmp/peers-token --comfyui none" \
    "nvidia-smi -lms=nvidia-smi --query-gpu=timestamp,index,name,memory.used,memory.total,utilization.gpu,temperature.gpu --format=csv -lms $ms > /dev/null" \
    "nvtop=/opt/peers/usr/bin/nvtop -d $tenths" \
    "nvitop=python3 -m nvitop --interval $nvitop_s" \
    "gpustat=python3 -m gpustat --interval $s" \
    "subprocess script=python3 /tmp/subprocess_monitor.py $s"
}
run 0.5 30
run 0.1 15
echo "== the window's frames alone (vramdeck bench --offscreen, 60 frames at 500 ms)"
"$bin" bench --offscreen --frames 60 --frame-ms 500 --hours 24
kill $work 2>/dev/null
