#!/usr/bin/env bash
# Cross-builds vramdeck.exe for 64-bit Windows on Debian/Ubuntu and packs it: a portable zip
# and an NSIS installer in target/windows/. Installs what it needs with apt when missing (as
# root or through sudo): Debian's rustc-web (a Rust with the standard library's source, which
# builds std for Windows; rustup's toolchains here have no Windows std), the MinGW-w64 linker
# and NSIS. Set VRAMDECK_WINDOWS_TESTS=1 to also build the Windows test binaries (see
# scripts/wine-test.sh). `--clippy` instead runs clippy for the Windows target (-D warnings)
# and stops. See ../shared/WINDOWS.md for where this recipe comes from.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(rustc-web cargo-web rust-web-src rust-web-clippy gcc-mingw-w64-x86-64-posix nsis zip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  echo "== installing ${missing[*]}"
  # Another apt at work (an unattended upgrade, a second build) holds the lock: wait for it.
  wait_lock=(-o DPkg::Lock::Timeout=600)
  "${as_root[@]}" apt-get "${wait_lock[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get "${wait_lock[@]}" install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

target=x86_64-pc-windows-gnu
# Debian's compiler and cargo by full path (rustup's come first on PATH); its own target dir,
# so the two compilers never rebuild each other's artefacts.
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc-posix
export CARGO_TARGET_DIR="$PWD/target/win"
build=(/usr/bin/cargo build --locked --release -Zbuild-std=std,panic_abort --target "$target")

if [ "${1:-}" = "--clippy" ]; then
  # Debian's clippy-driver must come first on PATH: rustup's knows no Windows std.
  PATH="/usr/bin:$PATH" /usr/bin/cargo clippy --locked -Zbuild-std=std,panic_abort \
    --target "$target" --all-targets -- -D warnings
  exit 0
fi

echo "== building vramdeck.exe (the first build takes 20-30 minutes on 2 cores)"
"${build[@]}" --bin vramdeck
exe="$CARGO_TARGET_DIR/$target/release/vramdeck.exe"
# Also where a plain `cargo build --target` would put it.
mkdir -p "target/$target/release"
cp "$exe" "target/$target/release/vramdeck.exe"
if [ "${VRAMDECK_WINDOWS_TESTS:-0}" = 1 ]; then
  echo "== building the Windows test binaries (same profile: the dependencies are shared)"
  /usr/bin/cargo test --locked --release -Zbuild-std=std,panic_abort --target "$target" \
    --no-run --lib --test ui_layout --test ui_monitor --test ui_chinese --test ui_alerts \
    --test ui_logs --test ui_files 2>&1 | tail -n 20
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
out=target/windows
rm -rf "$out"
mkdir -p "$out/vramdeck"
cp "$exe" "$out/vramdeck/vramdeck.exe"
cp README.md LICENSE "$out/vramdeck/"
cp -r packaging/python "$out/vramdeck/python"
find "$out/vramdeck" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
(cd "$out" && zip -q -r "vramdeck-$version-windows-x64.zip" vramdeck)
# What the uninstaller removes: exactly these files, then these folders if left empty (deepest
# first), never a recursive delete of the install folder.
list="$PWD/$out/uninstall-files.nsh"
(
  cd "$out/vramdeck"
  find . -type f | LC_ALL=C sort | sed 's|^\./||; s|/|\\|g; s|.*|  Delete "$INSTDIR\\&"|'
  find . -mindepth 1 -type d | LC_ALL=C sort -r | sed 's|^\./||; s|/|\\|g; s|.*|  RMDir "$INSTDIR\\&"|'
) > "$list"
makensis -V2 -DVERSION="$version" -DSOURCE="$PWD/$out/vramdeck" -DFILES_LIST="$list" \
  -DOUTFILE="$PWD/$out/vramdeck-$version-setup.exe" -DICON="$PWD/packaging/windows/vramdeck.ico" \
  packaging/windows/installer.nsi
echo "== done"
ls -l "$out"
