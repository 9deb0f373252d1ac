#!/usr/bin/env bash
# Tacotron 2 on LJSpeech, all GPUs, mixed precision (the seed's recipe).
. "$(dirname "$0")/python_env.sh"
mkdir -p output
python -m multiproc train.py -m Tacotron2 -o ./output/ -lr 1e-3 --epochs 1501 -bs 128 --weight-decay 1e-6 \
    --grad-clip-thresh 1.0 --cudnn-enabled --log-file nvlog.json --anneal-steps 500 1000 1500 --anneal-factor 0.3 \
    --load-mel-from-disk --training-files filelists/ljs_mel_text_train_filelist.txt \
    --validation-files filelists/ljs_mel_text_val_filelist.txt -d ./ --amp-run "$@"
