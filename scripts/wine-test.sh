#!/usr/bin/env bash
# The Windows build's tests, run under Wine (CI runs this after scripts/build-windows.sh with
# VRAMDECK_WINDOWS_TESTS=1): the library's unit tests and the window's kittest UI tests as
# Windows test binaries; the command line's demo commands; the installer, installed silently,
# then the installed exe started and uninstalled. Exits non-zero on the first failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# Paths in Chinese below: Wine and winepath must read them as UTF-8.
export LC_ALL=C.UTF-8
target=x86_64-pc-windows-gnu
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc-posix
export CARGO_TARGET_DIR="$root/target/win"
run="$root/scripts/wine-run.sh"
exe="$CARGO_TARGET_DIR/$target/release/vramdeck.exe"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

echo "== Windows test binaries under Wine"
# cargo names each test binary it built; the same command as the build, so nothing rebuilds.
mapfile -t binaries < <(/usr/bin/cargo test --locked --release -Zbuild-std=std,panic_abort \
  --target "$target" --no-run --lib --test ui_layout --test ui_monitor --test ui_chinese \
  --test ui_alerts --test ui_logs --test ui_files 2>&1 \
  | sed -n 's/.*Executable .*(\(.*\.exe\))$/\1/p')
[ ${#binaries[@]} -gt 0 ] || { echo "no Windows test binaries: build them first"; exit 1; }
for bin in "${binaries[@]}"; do
  echo "-- $(basename "$bin")"
  # One test thread: Wine's first start of many threads at once is slow, not wrong.
  WINE_EXE="$bin" "$run" --test-threads=2 -q
done

echo "== a GUI program: no console window of its own"
# The PE optional header's Subsystem field: 2 is a GUI program (Windows opens no console for
# it), 3 a console one. e_lfanew at 0x3C; the field sits 68 bytes into the optional header.
subsystem=$(python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(); o=struct.unpack_from("<I",d,0x3C)[0]; print(struct.unpack_from("<H",d,o+4+20+68)[0])' "$exe")
[ "$subsystem" = 2 ] || { echo "vramdeck.exe's subsystem is $subsystem, not 2 (GUI)"; exit 1; }
echo "ok"

echo "== the command line under Wine (demo mode: Wine has no nvml.dll)"
# Settings, data and a log in folders with spaces and Chinese, as under C:\Users\张三\.
export VRAMDECK_CONFIG_DIR="$scratch/配置 目录" VRAMDECK_DATA_DIR="$scratch/数据 目录"
out="$("$run" advise --demo)"
grep -q "what fits\|fits" <<<"$out" || { echo "advise said: $out"; exit 1; }
out="$("$run" log --demo --count 2)"
[ "$(wc -l <<<"$out")" -ge 3 ] || { echo "log said: $out"; exit 1; }
mkdir -p "$scratch/数据 目录"
"$run" log --demo --count 2 --output "$(winepath -w "$scratch/数据 目录/显存 日志.csv")" >/dev/null
[ "$(wc -l < "$scratch/数据 目录/显存 日志.csv")" -ge 3 ] || { echo "no log at a Chinese path"; exit 1; }
out="$("$run" analyze tests/fixtures/logs/comfyui_ddcolor_oom.log)"
grep -q "CUDA out of memory" <<<"$out" || { echo "analyze said: $out"; exit 1; }
out="$("$run" diagnose --demo --seconds 2 --json)"
grep -q '"schema"' <<<"$out" || { echo "diagnose said: $out"; exit 1; }
out="$(LANG=zh_CN.UTF-8 "$run" --lang zh-CN advise --free-mib 8000 --total-mib 12000)"
grep -q "假设的显卡" <<<"$out" || { echo "advise in Chinese said: $out"; exit 1; }
# Wine takes its display language from a Unix locale that exists: make zh_CN.UTF-8 (root).
if ! locale -a 2>/dev/null | grep -qi '^zh_CN\.utf-\?8$'; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  dpkg-query -W -f='${Status}' locales 2>/dev/null | grep -q "ok installed" \
    || DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 \
      install -y -qq --no-install-recommends locales >/dev/null
  "${as_root[@]}" sed -i 's/^# *zh_CN.UTF-8 UTF-8/zh_CN.UTF-8 UTF-8/' /etc/locale.gen
  "${as_root[@]}" locale-gen >/dev/null
fi
# Windows' display language decides, not a Unix variable in Windows' environment (Git Bash
# sets LANG=en_US.UTF-8): Wine takes its display language from the Unix LANG it starts with,
# and the program sees LC_ALL=en_US.UTF-8 set inside Windows.
printf 'set LC_ALL=en_US.UTF-8\r\n"%s" advise --free-mib 8000 --total-mib 12000\r\n' \
  "$(WINEPREFIX="${WINEPREFIX:-$root/target/wine-prefix}" winepath -w "$exe")" > "$scratch/lang.cmd"
out="$(WINE_EXE=cmd env -u LC_ALL LANG=zh_CN.UTF-8 "$run" /c \
  "$(WINEPREFIX="${WINEPREFIX:-$root/target/wine-prefix}" winepath -w "$scratch/lang.cmd")")"
grep -q "假设的显卡" <<<"$out" || { echo "advise under a Chinese Windows said: $out"; exit 1; }
echo "ok"

echo "== the engines from the Windows build (their stand-ins on the loopback Wine shares)"
# Each stand-in prints "READY <port>"; Wine's vramdeck.exe reaches them on 127.0.0.1.
start_engine() { # name args... -> sets $port
  local out="$scratch/$1.out"
  python3 "$root/tests/fixtures/engines/$1.py" "$scratch/$1.log" "${@:2}" >"$out" &
  engines_started+=("$!")
  for _ in $(seq 100); do grep -q READY "$out" 2>/dev/null && break; sleep 0.1; done
  port="$(sed -n 's/^READY //p' "$out")"
}
engines_started=()
trap 'kill "${engines_started[@]}" 2>/dev/null; rm -rf "$scratch"' EXIT
start_engine llama_server --model qwen3-4b --busy 4; p_llama=$port
start_engine vllm --model Qwen/Qwen3-8B --dev; p_vllm=$port
start_engine invokeai --model sdxl-base; p_invoke=$port
engines="llama-server=127.0.0.1:$p_llama,vllm=127.0.0.1:$p_vllm,invokeai=127.0.0.1:$p_invoke"
apps=(--comfyui none --ollama none --a1111 none --engines "$engines")
out="$("$run" agents "${apps[@]}")"
for want in "llama.cpp server at 127.0.0.1:$p_llama" "qwen3-4b" "vLLM at 127.0.0.1:$p_vllm" \
            "InvokeAI at 127.0.0.1:$p_invoke" "request at work"; do
  grep -qF "$want" <<<"$out" || { echo "agents under Wine said: $out"; exit 1; }
done
# Unload everything: the llama.cpp router waits for its running request, vLLM sleeps.
"$run" free --level unload --wait 30 "${apps[@]}" >"$scratch/free.out" 2>&1 \
  || { cat "$scratch/free.out"; exit 1; }
python3 - "$scratch" <<'PY' || { cat "$scratch/free.out"; exit 1; }
import json, sys
logs = {n: [json.loads(l) for l in open(f"{sys.argv[1]}/{n}.log")] for n in
        ("llama_server", "vllm", "invokeai")}
acts = {n: [e for e in l if "action" in e] for n, l in logs.items()}
assert [a["action"] for a in acts["llama_server"]] == ["unload"], acts
assert [a["action"] for a in acts["vllm"]] == ["sleep"], acts
assert [a["action"] for a in acts["invokeai"]] == ["empty_model_cache"], acts
assert not any(a["busy"] for a in sum(acts.values(), [])), f"cut running work: {acts}"
PY
echo "ok"

echo "== the installer, silently, then the installed exe"
setup="$(ls target/windows/vramdeck-*-setup.exe)"
export WINEPREFIX="${WINEPREFIX:-$root/target/wine-prefix}"
unix_path() { winepath -u "$1" 2>/dev/null; }
# /AUTOSTART ticks "Start with Windows" in a silent install.
user="$(wine cmd /c 'echo %USERNAME%' 2>/dev/null | tr -d '\r')"
# What an earlier run of these tests left in the prefix (the user's files it plants) goes first:
# the installer would rightly install beside them, into a folder of its own.
rm -rf "$(unix_path "C:\\users\\$user\\AppData\\Local\\Programs\\vramdeck")"
wine reg delete 'HKCU\Software\vramdeck' /f >/dev/null 2>&1 || true  # an earlier install's place
WINE_EXE="$setup" "$run" /S /AUTOSTART
installed="$(unix_path "C:\\users\\$user\\AppData\\Local\\Programs\\vramdeck\\vramdeck.exe")"
[ -n "$installed" ] && [ -f "$installed" ] || { echo "the installer put no vramdeck.exe at $installed"; exit 1; }
shortcut="$(unix_path "C:\\users\\$user\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\vramdeck.lnk")"
[ -f "$shortcut" ] || { echo "no Start-menu entry at $shortcut"; exit 1; }
wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run' /v vramdeck 2>/dev/null \
  | grep -q 'vramdeck.exe" --hidden' || { echo "no start with Windows into the tray"; exit 1; }
WINE_EXE="$installed" "$run" --version
uninstaller="$(dirname "$installed")/uninstall.exe"
# A file of the user's beside the installed ones, and a folder of theirs: both must survive.
echo "mine" > "$(dirname "$installed")/my notes.txt"
mkdir -p "$(dirname "$installed")/python/my models"
echo "weights" > "$(dirname "$installed")/python/my models/keep.bin"
# While vramdeck runs, the uninstaller removes nothing (silently: exit code 2).
WINE_EXE="$installed" "$run" --demo >/dev/null 2>&1 &
running=$!
sleep 8  # the window is up and holds its mutex
set +e; WINE_EXE="$uninstaller" "$run" /S; refused=$?; set -e
sleep 2
[ -f "$installed" ] || { echo "the uninstaller removed files while vramdeck ran"; exit 1; }
[ "$refused" = 2 ] || echo "(the uninstaller's exit status was $refused; its copy returns at once)"
kill "$running" 2>/dev/null; wineserver -k 2>/dev/null || true; wait "$running" 2>/dev/null || true
WINE_EXE="$uninstaller" "$run" /S
# NSIS's uninstaller copies itself and returns at once; give it a moment to remove the files.
for _ in $(seq 50); do [ -f "$installed" ] || break; sleep 0.2; done
[ ! -f "$installed" ] || { echo "the uninstaller left $installed"; exit 1; }
[ -f "$(dirname "$installed")/my notes.txt" ] || { echo "the uninstaller deleted the user's file"; exit 1; }
[ -f "$(dirname "$installed")/python/my models/keep.bin" ] \
  || { echo "the uninstaller deleted the user's folder"; exit 1; }
[ ! -f "$(dirname "$installed")/python/vramdeck_agent/__init__.py" ] \
  || [ ! -d "$(dirname "$installed")/python/comfyui-vramdeck" ] \
  || { echo "the uninstaller left its own files"; exit 1; }
[ ! -f "$shortcut" ] || { echo "the uninstaller left the Start-menu entry"; exit 1; }
! wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run' /v vramdeck >/dev/null 2>&1 \
  || { echo "the uninstaller left the start with Windows"; exit 1; }
echo "ok"

echo "== installing into a folder that holds someone else's files"
chosen="$scratch/我的文件"  # /D= takes no quotes, so no space
mkdir -p "$chosen"
echo "do not delete" > "$chosen/report.docx"
WINE_EXE="$setup" "$run" /S "/D=$(winepath -w "$chosen")"
[ -f "$chosen/vramdeck/vramdeck.exe" ] || { echo "not installed into a folder of its own: $(ls "$chosen")"; exit 1; }
WINE_EXE="$chosen/vramdeck/uninstall.exe" "$run" /S
for _ in $(seq 50); do [ -f "$chosen/vramdeck/vramdeck.exe" ] || break; sleep 0.2; done
[ ! -e "$chosen/vramdeck" ] || { echo "the uninstaller left $(ls -R "$chosen/vramdeck")"; exit 1; }
[ -f "$chosen/report.docx" ] || { echo "the user's file is gone"; exit 1; }
echo "ok"

echo "== the agent under Windows' own Python"
bash "$root/scripts/wine-agent-test.sh"
