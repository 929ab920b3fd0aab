#!/usr/bin/env bash
# The devnet: coordinator, four agents of two operators and a stream of real Groth16 proofs
# on this machine. Arguments go to `proofrack devnet` (e.g. --tasks 0 runs until Ctrl-C).
# Installs only what running needs: NVRTC for the build, and the npm tools (anvil) only for
# --chain.
set -euo pipefail
cd "$(dirname "$0")/.."
setup=()
for arg in "$@"; do
  [ "$arg" = "--chain" ] && setup=(--node)
done
./scripts/setup-tools.sh "${setup[@]}"
cargo run --release --locked -p proofrack -- devnet "$@"
