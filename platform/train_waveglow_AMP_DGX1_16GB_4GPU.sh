#!/usr/bin/env bash
# WaveGlow, DGX-1 (V100 16 GB), 4 GPU(s), AMP.
. "$(dirname "$0")/../scripts/python_env.sh"
mkdir -p output
python -m multiproc --nproc-per-node 4 train.py -m WaveGlow -o ./output/ -lr 1e-4 --epochs 1001 -bs 10 \
    --segment-length 8000 --weight-decay 0 --grad-clip-thresh 65504.0 --cudnn-enabled --cudnn-benchmark \
    --log-file nvlog.json -d ./ --amp-run "$@"
