#!/usr/bin/env bash
# WaveGlow, DGX A100, 8 GPU(s), TF32.
. "$(dirname "$0")/../scripts/python_env.sh"
mkdir -p output
python -m multiproc --nproc-per-node 8 train.py -m WaveGlow -o ./output/ -lr 1e-4 --epochs 1001 -bs 4 \
    --segment-length 8000 --weight-decay 0 --grad-clip-thresh 3.4028234663852886e+38 --cudnn-enabled --cudnn-benchmark \
    --log-file nvlog.json -d ./  "$@"
