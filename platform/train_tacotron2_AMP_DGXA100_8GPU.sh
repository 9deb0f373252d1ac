#!/usr/bin/env bash
# Tacotron 2, DGX A100, 8 GPU(s), AMP (TF32 is on by default for matmuls and convolutions).
. "$(dirname "$0")/../scripts/python_env.sh"
mkdir -p output
python -m multiproc --nproc-per-node 8 train.py -m Tacotron2 -o ./output/ -lr 1e-3 --epochs 1501 -bs 128 \
    --weight-decay 1e-6 --grad-clip-thresh 1.0 --cudnn-enabled --anneal-steps 500 1000 1500 --anneal-factor 0.3 \
    --load-mel-from-disk --training-files=filelists/ljs_mel_text_train_filelist.txt \
    --validation-files=filelists/ljs_mel_text_val_filelist.txt --log-file nvlog.json -d ./ --amp-run "$@"
