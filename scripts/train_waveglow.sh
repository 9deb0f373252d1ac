#!/usr/bin/env bash
# WaveGlow on LJSpeech, all GPUs, mixed precision (the seed's recipe).
. "$(dirname "$0")/python_env.sh"
mkdir -p output
python -m multiproc train.py -m WaveGlow -o ./output/ -lr 1e-4 --epochs 1001 -bs 10 --segment-length 8000 \
    --weight-decay 0 --grad-clip-thresh 65504.0 --cudnn-enabled --cudnn-benchmark --log-file nvlog.json \
    --training-files filelists/ljs_audio_text_train_filelist.txt -d ./ --amp-run "$@"
