#!/usr/bin/env bash
# Latency tables on the CPU: batch 1 and 4, 128-character phrases, FP32 and BF16 (--amp-run).
# Usage: bash scripts/run_latency_tests_cpu.sh [T2_CHECKPOINT WG_CHECKPOINT] [N]
# Without checkpoints, default-size random-weight models (WaveGlow with 256 WN channels) are timed.
set -euo pipefail
CKPTS=()
if [ $# -ge 2 ]; then CKPTS=(--tacotron2 "$1" --waveglow "$2"); shift 2; fi
N="${1:-5}"
mkdir -p output
for bs in 1 4; do
    for amp in "" "--amp-run"; do
        python test_infer.py "${CKPTS[@]}" --cpu -i "phrases/phrase_${bs}_128.txt" -n "$N" $amp \
            --max-decoder-steps 300 --log-file "output/latency_cpu_bs${bs}${amp:+_amp}.json"
    done
done
