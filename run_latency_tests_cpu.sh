#!/usr/bin/env bash
# Latency on the CPU: batch 1 and 4, 128 characters, FP32 and --amp-run (bf16 where it is timed faster).
# Usage: bash run_latency_tests_cpu.sh [T2 WG] [ITERS]   (no checkpoints: random weights, WN 256, 300 decoder steps)
. "$(dirname "$0")/scripts/python_env.sh"
set -euo pipefail
MODELS=(--wn-channels 256 --max-decoder-steps 300)
if [ $# -ge 2 ]; then MODELS=(--tacotron2 "$1" --waveglow "$2"); shift 2; fi
ITERS="${1:-8}"
for prec in fp32 amp; do
    for bs in 1 4; do
        bash "$(dirname "$0")/test_infer.sh" --cpu -bs "$bs" -il 128 -p "$prec" --num-iters "$ITERS" "${MODELS[@]}"
    done
done
