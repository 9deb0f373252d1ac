#!/usr/bin/env bash
# Latency tables on a GPU: batch 1 and 4, 128-character phrases, FP16 and FP32.
# Usage: bash scripts/run_latency_tests.sh T2_CHECKPOINT WG_CHECKPOINT [N]
set -euo pipefail
T2="$1"; WG="$2"; N="${3:-1000}"
for bs in 1 4; do
    for amp in "--amp-run" ""; do
        python test_infer.py --tacotron2 "$T2" --waveglow "$WG" -i "phrases/phrase_${bs}_128.txt" -n "$N" $amp \
            --log-file "output/latency_bs${bs}${amp:+_amp}.json"
    done
done
