#!/usr/bin/env bash
# Installs the pinned tools proofrack builds and tests with, into the repository (.tools/),
# so nothing is installed system-wide. Idempotent: a second run checks and returns.
#   - NVRTC 12.9 (PyPI nvidia-cuda-nvrtc-cu12): compiles our CUDA kernels at build time on
#     machines with no CUDA toolkit. CUDA 12.x because the GPU boxes' driver 580 (CUDA 13.0)
#     must accept the embedded PTX. See ../DEPENDENCIES in the README.
#   - JavaScript tools pinned in package.json/package-lock.json (npm ci into node_modules/):
#     circom2, circomlib and snarkjs (interop tests), solc (the StakeRegistry contract),
#     @foundry-rs/anvil (the local EVM node), playwright-core (drives the system Chromium).
#   - Chromium from the Debian packages (apt-get, only when /usr/bin/chromium is missing):
#     the fleet page test runs it headless.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
NVRTC_VERSION=12.9.86

nvrtc_lib="$tools/py/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
if [ ! -f "$nvrtc_lib" ] || ! grep -qx "$NVRTC_VERSION" "$tools/nvrtc.version" 2>/dev/null; then
  echo "setup-tools: installing nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION into $tools/py"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
    --upgrade --target "$tools/py" "nvidia-cuda-nvrtc-cu12==$NVRTC_VERSION"
  echo "$NVRTC_VERSION" > "$tools/nvrtc.version"
fi
[ -f "$nvrtc_lib" ] || { echo "setup-tools: $nvrtc_lib missing after install" >&2; exit 1; }
echo "setup-tools: NVRTC $NVRTC_VERSION at $nvrtc_lib"

# npm ci reinstalls only when the lockfile changed since the last install.
lock_hash=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
if [ ! -d "$root/node_modules" ] || ! grep -qx "$lock_hash" "$tools/npm.lock-hash" 2>/dev/null; then
  command -v npm >/dev/null || { echo "setup-tools: npm not found; install Node.js 20 (e.g. apt-get install nodejs npm)" >&2; exit 1; }
  echo "setup-tools: npm ci (package-lock.json) into $root/node_modules"
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  mkdir -p "$tools" && echo "$lock_hash" > "$tools/npm.lock-hash"
fi
echo "setup-tools: npm tools at $root/node_modules/.bin ($(cd "$root" && npx --no-install anvil --version | head -1))"

# Chromium from the system packages, for the fleet page test (driven by playwright-core).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup-tools: installing chromium (apt-get) for the fleet page test"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; } \
      || echo "setup-tools: could not install chromium; the fleet page test will fail until /usr/bin/chromium exists (apt-get install chromium)" >&2
  else
    echo "setup-tools: /usr/bin/chromium missing and cannot apt-get here (not root or no apt); install the chromium package for the fleet page test" >&2
  fi
fi
if [ -x /usr/bin/chromium ]; then
  echo "setup-tools: $(/usr/bin/chromium --version 2>/dev/null | head -1) at /usr/bin/chromium"
fi
