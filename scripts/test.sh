#!/usr/bin/env bash
# Every test of the workspace, as CI runs it (.ci/run calls this). Installs the pinned tools
# first (scripts/setup-tools.sh --node: NVRTC into .tools/, the npm tools into node_modules/;
# scripts/setup-test-tools.sh: Chromium for the fleet page test), then builds with every CUDA kernel
# compiled through NVRTC (PROOFRACK_REQUIRE_KERNELS=1 turns a kernel that does not compile
# into a build failure, on machines without a GPU too) and runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-tools.sh --node
./scripts/setup-test-tools.sh
export PROOFRACK_REQUIRE_KERNELS=1
# One build on a clean clone: incremental caches would only double the target's size on disk.
export CARGO_INCREMENTAL=0
cargo test --workspace --locked "$@"
