#!/usr/bin/env bash
# Builds the release binaries a GPU box runs (kernels compiled by NVRTC and embedded) into
# .gpu/ (git-ignored), for scripts/gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-tools.sh
PROOFRACK_REQUIRE_KERNELS=1 cargo build --release --locked -p proofrack -p proofrack-bench
mkdir -p .gpu
cp target/release/proofrack target/release/proofrack-bench .gpu/
strip .gpu/proofrack .gpu/proofrack-bench 2>/dev/null || true
ls -la .gpu
