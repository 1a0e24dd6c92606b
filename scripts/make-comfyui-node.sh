#!/usr/bin/env bash
# Makes the ComfyUI node as ComfyUI users install it from outside this repository: a node
# repository whose root is the node (ComfyUI-Manager's "Install via Git URL" clones a
# repository's root into custom_nodes/, and this repository's root is the Rust app), and a zip
# of the same folder. Both land in target/comfyui-node/:
#   comfyui-vramdeck/        a git repository, one commit: push it to the node's own
#                            repository (pyproject's Repository URL), or `git clone` it as is
#   comfyui-vramdeck-V.zip   unzip into ComfyUI/custom_nodes/
# No network and nothing fetched: it copies packaging/python/comfyui-vramdeck.
set -euo pipefail
cd "$(dirname "$0")/.."
src=packaging/python/comfyui-vramdeck
out=target/comfyui-node
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$src/pyproject.toml" | head -n1)
rm -rf "$out"
mkdir -p "$out/comfyui-vramdeck"
# The node's files, without caches; the licence and a short README travel with it.
(cd "$src" && find . -name __pycache__ -prune -o -type f ! -name '*.pyc' -print) |
  while read -r f; do
    mkdir -p "$out/comfyui-vramdeck/$(dirname "$f")"
    cp "$src/$f" "$out/comfyui-vramdeck/$f"
  done
cat > "$out/comfyui-vramdeck/README.md" <<README
# comfyui-vramdeck $version

The ComfyUI node of [vramdeck](https://github.com/vramdeck/vramdeck), the desktop window that
shows what the GPU is doing and frees VRAM in one click. It adds no nodes: it starts vramdeck's
agent inside ComfyUI, so vramdeck can empty ComfyUI's cache (models stay loaded) or unload its
models between prompts. Nothing to pip-install: the agent is in this folder.

Install: put this folder into ComfyUI/custom_nodes/ as comfyui-vramdeck (git clone, the zip,
or ComfyUI-Manager), then restart ComfyUI; its log says "vramdeck agent started for ComfyUI".
README
cp LICENSE "$out/comfyui-vramdeck/LICENSE"
(
  cd "$out/comfyui-vramdeck"
  git init -q -b main
  git add -A
  git -c user.name="vramdeck" -c user.email="vramdeck-devs@users.noreply.github.com" \
    commit -qm "comfyui-vramdeck $version (from the vramdeck repository)"
)
python3 - "$out" "$version" <<'PY'
import os, sys, zipfile
out, version = sys.argv[1], sys.argv[2]
root = os.path.join(out, "comfyui-vramdeck")
with zipfile.ZipFile(os.path.join(out, f"comfyui-vramdeck-{version}.zip"), "w",
                     zipfile.ZIP_DEFLATED) as z:
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for f in files:
            path = os.path.join(base, f)
            z.write(path, os.path.relpath(path, out))
PY
echo "$out/comfyui-vramdeck (git repository) and $out/comfyui-vramdeck-$version.zip"
