#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of every parser of outside input, each
# target for SECONDS (default 20), seeded with the kept corpus of real inputs. Needs the nightly
# toolchain and cargo-fuzz (`cargo install cargo-fuzz`); without them it says so and skips.
# Longer hunts: `bash tests/fuzz/run.sh 3600`, or one target:
#   cargo +nightly fuzz run oom_log -- -max_total_time=3600
# A crash is saved under fuzz/artifacts/<target>/ and this script fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-20}"

if ! cargo +nightly --version >/dev/null 2>&1 || ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: skipped (needs the nightly toolchain and cargo-fuzz: cargo install cargo-fuzz)"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/presets"
cp assets/presets.toml tests/fuzz-corpus/settings/* "$work/presets/"

declare -A seeds=(
  [agent_reply]="tests/fuzz-corpus/protocol"
  [nvidia_smi_csv]="tests/fixtures/csv"
  [oom_log]="tests/fixtures/logs"
  [config_files]="$work/presets"
  [comfyui_http]="tests/fuzz-corpus/comfyui"
)

cargo +nightly fuzz build -O
for target in agent_reply nvidia_smi_csv oom_log config_files comfyui_http; do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "$work/$target"
  # The first folder collects new inputs; the kept corpus only seeds.
  cargo +nightly fuzz run -O "$target" "$work/$target" ${seeds[$target]} -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked|Test unit written)" || true
  if ls fuzz/artifacts/"$target"/crash-* >/dev/null 2>&1; then
    echo "fuzz: $target crashed; the input is in fuzz/artifacts/$target/"
    exit 1
  fi
done
