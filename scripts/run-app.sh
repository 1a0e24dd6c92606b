#!/usr/bin/env bash
# Builds vramdeck and opens its window — in demo mode when there is no NVIDIA GPU. Installs the
# OpenGL / X11 / Wayland libraries a window needs (and a C linker, and a font with Chinese
# glyphs for the Chinese window and for Chinese paths and names) with apt when they are
# missing, as root or through sudo. Arguments go to vramdeck: `bash scripts/run-app.sh --demo`,
# `bash scripts/run-app.sh gpu-log.csv`.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential libgl1 libegl1 libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6
  libxkbcommon0 libxkbcommon-x11-0 xkb-data libwayland-client0 libwayland-egl1 libwayland-cursor0
  fontconfig fonts-wqy-microhei)
if command -v dpkg-query >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    echo "== installing ${missing[*]}"
    # A fresh container has no package lists yet.
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"
  fi
else
  echo "(not a Debian/Ubuntu system: install a C linker and the OpenGL/X11 libraries yourself)"
fi

if [ ! -x target/release/vramdeck ]; then
  echo "== building vramdeck: the first build takes about 20 minutes on 2 cores (1 GB of disk)"
fi
exec cargo run --release --locked -- "$@"
