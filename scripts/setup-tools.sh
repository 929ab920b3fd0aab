#!/usr/bin/env bash
# Installs the pinned tools proofrack builds and runs with, into the repository (.tools/,
# node_modules/), so nothing is installed system-wide. Idempotent: a second run checks and
# returns. Usage: scripts/setup-tools.sh [--node]
#   - always: NVRTC 12.9 (PyPI nvidia-cuda-nvrtc-cu12), which compiles our CUDA kernels at
#     build time on machines with no CUDA toolkit. CUDA 12.x because the GPU boxes' driver
#     580 (CUDA 13.0) must accept the embedded PTX. See "Dependencies and why" in the README.
#   - with --node: the JavaScript tools pinned in package.json/package-lock.json (npm ci into
#     node_modules/): @foundry-rs/anvil (the local EVM node of `devnet --chain`), solc (the
#     StakeRegistry contract), circom2, circomlib and snarkjs (interop tests),
#     playwright-core (drives Chromium in the fleet page test). Needs Node.js 20 and npm.
# The test command adds scripts/setup-test-tools.sh (Chromium, for the fleet page test); the
# devnet installs only what it runs with.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
NVRTC_VERSION=12.9.86
node=false
for arg in "$@"; do
  case "$arg" in
    --node) node=true ;;
    *) echo "setup-tools: unknown argument $arg (usage: setup-tools.sh [--node])" >&2; exit 2 ;;
  esac
done

nvrtc_lib="$tools/py/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
if [ ! -f "$nvrtc_lib" ] || ! grep -qx "$NVRTC_VERSION" "$tools/nvrtc.version" 2>/dev/null; then
  echo "setup-tools: installing nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION into $tools/py"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
    --upgrade --target "$tools/py" "nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION"
  echo "$NVRTC_VERSION" > "$tools/nvrtc.version"
fi
[ -f "$nvrtc_lib" ] || { echo "setup-tools: $nvrtc_lib missing after install" >&2; exit 1; }
echo "setup-tools: NVRTC $NVRTC_VERSION at $nvrtc_lib"

$node || exit 0
# npm ci reinstalls only when the lockfile changed since the last install.
lock_hash=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
if [ ! -d "$root/node_modules" ] || ! grep -qx "$lock_hash" "$tools/npm.lock-hash" 2>/dev/null; then
  command -v npm >/dev/null || { echo "setup-tools: npm not found; install Node.js 20 (e.g. apt-get install nodejs npm)" >&2; exit 1; }
  echo "setup-tools: npm ci (package-lock.json) into $root/node_modules"
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  mkdir -p "$tools" && echo "$lock_hash" > "$tools/npm.lock-hash"
fi
echo "setup-tools: npm tools at $root/node_modules/.bin ($(cd "$root" && npx --no-install anvil --version | head -1))"
