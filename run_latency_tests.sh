#!/usr/bin/env bash
# The seed's latency table on a GPU: batch 1 and 4, 128 characters, AMP and FP32, 1000 timed runs each.
# Usage: bash run_latency_tests.sh [T2_AMP WG_AMP T2_FP32 WG_FP32]  (default: the seed's checkpoint paths; where
# those files do not exist, random default-size weights are timed: WN 256, 300 decoder steps, as with NVIDIA's
# published models on a 128-character phrase)
set -euo pipefail
T2_AMP="${1:-./checkpoints/checkpoint_Tacotron2_amp}"; WG_AMP="${2:-./checkpoints/checkpoint_WaveGlow_amp}"
T2_FP32="${3:-./checkpoints/checkpoint_Tacotron2_fp32}"; WG_FP32="${4:-./checkpoints/checkpoint_WaveGlow_fp32}"
ITERS="${ITERS:-1003}"
for prec in amp fp32; do
    if [ "$prec" = amp ]; then T2="$T2_AMP"; WG="$WG_AMP"; else T2="$T2_FP32"; WG="$WG_FP32"; fi
    if [ -f "$T2" ] && [ -f "$WG" ]; then
        MODELS=(--tacotron2 "$T2" --waveglow "$WG")
    elif [ $# -gt 0 ]; then
        echo "run_latency_tests.sh: no checkpoint $T2 or $WG" >&2; exit 2
    else
        echo "run_latency_tests.sh: no $T2 / $WG: timing random default-size weights (WN 256, 300 decoder steps)" >&2
        MODELS=(--wn-channels 256 --max-decoder-steps 300)
    fi
    for bs in 1 4; do
        bash "$(dirname "$0")/test_infer.sh" -bs "$bs" -il 128 -p "$prec" --num-iters "$ITERS" "${MODELS[@]}"
    done
done
