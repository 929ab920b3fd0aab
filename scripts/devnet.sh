#!/usr/bin/env bash
# The devnet: coordinator, four agents of two operators and a stream of real Groth16 proofs
# on this machine. Arguments go to `proofrack devnet` (e.g. --tasks 0 runs until Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-tools.sh
cargo run --release --locked -p proofrack -- devnet "$@"
