#!/usr/bin/env bash
# The whole test suite: Rust (unit, integration with real Python agent processes, egui_kittest
# UI tests, property tests), the vramdeck-agent Python package's pytest suite, and — where the
# nightly toolchain and cargo-fuzz are installed — a time-boxed libFuzzer run of every parser
# (FUZZ_SECONDS per target, default 20; 0 skips it). No display or GPU needed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -m pytest --version >/dev/null 2>&1; then
  echo "== installing pytest with pip (for the Python agent's tests)"
  python3 -m pip install --quiet --user pytest 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages pytest 2>/dev/null \
    || python3 -m pip install --quiet pytest \
    || { echo "pytest is missing: install it with 'apt-get install -y python3-pytest'"; exit 1; }
fi

# onnxruntime (CPU) and onnx from PyPI: the agent's onnxruntime support and the FaceFusion
# launcher are tested with real sessions of small models the tests build.
if ! python3 -c "import onnxruntime, onnx, numpy" >/dev/null 2>&1; then
  echo "== installing onnxruntime, onnx and numpy with pip (real ONNX sessions in the tests)"
  python3 -m pip install --quiet --user onnxruntime onnx numpy 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages onnxruntime onnx numpy 2>/dev/null \
    || python3 -m pip install --quiet onnxruntime onnx numpy \
    || { echo "could not install onnxruntime, onnx and numpy with pip: install them and run again"; exit 1; }
fi

# Real servers the tests start on loopback: Prometheus scrapes `vramdeck serve`, and an sshd
# serves the SSH source; and a CJK font. Debian packages; installed as root (or through sudo)
# when missing.
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
# A font with Chinese glyphs, found through fontconfig as on a desktop: the Chinese window is
# tested with it (the test harness fails on any character no font can draw).
command -v fc-list >/dev/null 2>&1 || missing+=(fontconfig)
[ -n "$(fc-list :lang=zh-cn 2>/dev/null)" ] || missing+=(fonts-wqy-microhei)
# The window under a real window manager, with a session bus for the tray
# (tests/window_manager.rs).
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb xauth)
command -v openbox >/dev/null 2>&1 || missing+=(openbox)
command -v xdotool >/dev/null 2>&1 || missing+=(xdotool)
command -v xwininfo >/dev/null 2>&1 || missing+=(x11-utils)
command -v dbus-daemon >/dev/null 2>&1 || missing+=(dbus-daemon)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (real servers the tests run on loopback)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { echo "could not install ${missing[*]}: install them with apt-get and run again"; exit 1; }
fi

echo "== cargo test"
cargo test --locked
echo "== pytest packaging/python/tests"
python3 -m pytest -q packaging/python/tests
# The Windows build: cross-built here, its tests run under Wine (WINDOWS_TESTS=0 skips it).
if [ "${WINDOWS_TESTS:-1}" != 0 ]; then
  echo "== Windows: cross-build, then its tests under Wine"
  VRAMDECK_WINDOWS_TESTS=1 bash scripts/build-windows.sh
  bash scripts/wine-test.sh
fi
if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  echo "== fuzz (libFuzzer, ${FUZZ_SECONDS:-20} s per target)"
  bash tests/fuzz/run.sh "${FUZZ_SECONDS:-20}"
fi
