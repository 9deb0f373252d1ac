#!/usr/bin/env bash
# The seed's latency table on a GPU: batch 1 and 4, 128 characters, AMP and FP32, 1000 timed runs each.
# Usage: bash run_latency_tests.sh [T2_AMP WG_AMP T2_FP32 WG_FP32]  (default: the seed's checkpoint paths)
set -euo pipefail
T2_AMP="${1:-./checkpoints/checkpoint_Tacotron2_amp}"; WG_AMP="${2:-./checkpoints/checkpoint_WaveGlow_amp}"
T2_FP32="${3:-./checkpoints/checkpoint_Tacotron2_fp32}"; WG_FP32="${4:-./checkpoints/checkpoint_WaveGlow_fp32}"
for prec in amp fp32; do
    if [ "$prec" = amp ]; then T2="$T2_AMP"; WG="$WG_AMP"; else T2="$T2_FP32"; WG="$WG_FP32"; fi
    for bs in 1 4; do
        bash "$(dirname "$0")/test_infer.sh" -bs "$bs" -il 128 -p "$prec" --num-iters 1003 --tacotron2 "$T2" --waveglow "$WG"
    done
done
