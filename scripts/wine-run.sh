#!/usr/bin/env bash
# Runs a Windows program of this project under Wine: `bash scripts/wine-run.sh ARGS…` runs the
# built vramdeck.exe with ARGS; `WINE_EXE=path/to/other.exe bash scripts/wine-run.sh …` runs
# another (a test binary). A scratch prefix (WINEPREFIX, default target/wine-prefix), Xvfb when
# there is no display, and the test-only ProcessPrng DLL that Wine 8.0 lacks (see
# tests/wine/process_prng.c; never shipped). Installs wine, xvfb and the MinGW compiler with apt
# when missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

missing=()
for p in wine wine64 xvfb xauth gcc-mingw-w64-x86-64-posix; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  echo "== installing ${missing[*]}" >&2
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

export WINEPREFIX="${WINEPREFIX:-$root/target/wine-prefix}"
# Wine reads arguments and environment in the Unix locale's character set: without a UTF-8
# locale, a path or a value in Chinese would reach the program garbled.
case "${LC_ALL:-${LC_CTYPE:-${LANG:-}}}" in
  *UTF-8*|*utf8*) ;;
  *) export LC_ALL=C.UTF-8 ;;
esac
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=;bcryptprimitives=n,b}"
shim="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$shim" ]; then
  echo "== making the Wine prefix $WINEPREFIX (test-only ProcessPrng shim)" >&2
  wineboot -i >/dev/null 2>&1 || true
  wineserver -w || true
  x86_64-w64-mingw32-gcc-posix -shared -O2 -o "$shim" \
    "$root/tests/wine/process_prng.c" "$root/tests/wine/process_prng.def" -ladvapi32
fi

exe="${WINE_EXE:-$root/target/win/x86_64-pc-windows-gnu/release/vramdeck.exe}"
if [ -z "${DISPLAY:-}" ]; then
  exec xvfb-run -a -s "-screen 0 1920x1080x24" wine "$exe" "$@"
fi
exec wine "$exe" "$@"
