#!/usr/bin/env bash
# The GPU run: correctness first, then benchmarks, each step bounded so one hang cannot eat
# the lease. Runs on a GPU box from prebuilt binaries (the box has no Rust toolchain):
#   scripts/build-gpu-bundle.sh here, then carry .gpu/ and run this there.
# Sizes and limits can be raised for a card with more memory, e.g. on an H200:
#   MSM_MAX_LOG=26 NTT_MAX_LOG=26 CHECK_G16_LOGS=10 ONLY_CHECKS=1 scripts/gpu-check.sh
# Writes JSON lines and logs under a work folder, packed after every step into
# $OUT/gpu-out.tgz (default OUT=./gpu-out), so what finished comes back even if a later step
# hangs. Exit status: nonzero if any correctness step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
BIN=${BIN:-.gpu}
BENCH="$BIN/proofrack-bench"
PROOFRACK="$BIN/proofrack"
fail=0
step() { # name timeout_s command...
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s%N)
  timeout --kill-after=5 "$limit" "$@" > "$WORK/$name.jsonl" 2> "$WORK/$name.log"
  local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%-14s rc=%-3s %7d ms  %s lines\n' "$name" "$rc" "$ms" "$(wc -l < "$WORK/$name.jsonl")" | tee -a "$WORK/summary.txt"
  # Failed cases and summaries, for the reader of this output.
  grep -h '"ok":false' "$WORK/$name.jsonl" | head -20
  tail -n 3 "$WORK/$name.log"
  tar czf "$OUT/gpu-out.tgz" -C "$WORK" .
  return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > "$WORK/device.csv" 2>&1
cat "$WORK/device.csv"

# Correctness (exit nonzero on any mismatch; each reports every case, not just the first).
step check-msm  "${CHECK_MSM_LIMIT:-100}" env PROOFRACK_CUDA_SYNC_EACH_LAUNCH=1 "$BENCH" check-msm --max-log "${MSM_MAX_LOG:-24}" || fail=1
step check      "${CHECK_LIMIT:-130}" env PROOFRACK_CUDA_SYNC_EACH_LAUNCH=1 "$BENCH" check --max-log "${NTT_MAX_LOG:-24}" --groth16-log "${CHECK_G16_LOGS:-10,16,20}" || fail=1
if [ -n "${ONLY_CHECKS:-}" ]; then
  echo "correctness: $([ $fail = 0 ] && echo PASS || echo FAIL)" | tee -a "$WORK/summary.txt"
  tar czf "$OUT/gpu-out.tgz" -C "$WORK" .
  exit $fail
fi
# The agent on this box: CUDA backend selected, calibrated on the real kernels, proving devnet
# tasks end to end (coordinator, agents, verification) on the GPU.
step devnet-cuda 80 env RUST_LOG=info "$PROOFRACK" devnet --backend cuda --tasks 8 --data-dir /tmp/devnet-gpu --circuits mimc-12,mimc-16 || fail=1

# Benchmarks (figures for docs/benchmarks.md; the CPU reference is measured in the same run).
step bench-groth16 80 "$BENCH" groth16 --log-sizes "${G16_SIZES:-16,18,20}" --backend cuda
step bench-msm     80 "$BENCH" msm --sizes "${MSM_SIZES:-16,20,22,24}"
step bench-ntt      45 "$BENCH" ntt --log-sizes "${NTT_SIZES:-16,20,22,24}" --backend cuda
# Where the MSM time goes, and the window size around the cost model's choice.
step msm-profile   60 "$BENCH" msm --sizes 20,24 --profile --window-bits "${MSM_WINDOWS:-21,22,23}" --reps 5 --cpu-max-log 16

for f in "$WORK"/bench-*.jsonl; do cut -c1-600 "$f"; done
echo "correctness: $([ $fail = 0 ] && echo PASS || echo FAIL)" | tee -a "$WORK/summary.txt"
tar czf "$OUT/gpu-out.tgz" -C "$WORK" .
exit $fail
