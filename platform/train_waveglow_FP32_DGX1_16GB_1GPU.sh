#!/usr/bin/env bash
# WaveGlow, DGX-1 (V100 16 GB), 1 GPU(s), FP32.
. "$(dirname "$0")/../scripts/python_env.sh"
mkdir -p output
python -m multiproc --nproc-per-node 1 train.py -m WaveGlow -o ./output/ -lr 1e-4 --epochs 1001 -bs 4 \
    --segment-length 8000 --weight-decay 0 --grad-clip-thresh 3.4028234663852886e+38 --cudnn-enabled --cudnn-benchmark \
    --log-file nvlog.json -d ./  "$@"
