#!/usr/bin/env bash
# The main job on a built-in default, on a CPU: build an espeak-ng corpus (half of it sentences of made-up words,
# so that the model learns to read letters rather than memorise a small vocabulary), train a small Tacotron 2 for
# a bounded time, synthesise phrases/demo.txt with Griffin-Lim and print the quality and calibration tables.
#   bash scripts/demo.sh            (MINUTES=10 by default; OUT=demo_output; DATA=data/espeak_pw)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${MINUTES:-10}"
OUT="${OUT:-demo_output}"
DATA="${DATA:-data/espeak_pw}"
THREADS="${THREADS:-$(nproc)}"

bash scripts/setup.sh
if [ ! -f "$DATA/metadata.csv" ]; then
    python -m scripts.make_espeak_corpus -o "$DATA" --n 1200 --seed 1 --pseudo-words 0.5
fi
FL="$DATA/filelists"
OMP_NUM_THREADS="$THREADS" python train.py -m Tacotron2 -o "$OUT/tacotron2" -d "$DATA" -lr 5e-4 --epochs 1000 -bs 16 \
    --config-file scripts/configs/tacotron2_small_cpu.json --max-minutes "$MINUTES" --resume-from-last \
    --anneal-steps 35 --anneal-factor 0.3 \
    --training-files "$FL/espeak_audio_text_train_filelist.txt" \
    --validation-files "$FL/espeak_audio_text_val_filelist.txt" --epochs-per-checkpoint 1
CKPT="$OUT/tacotron2/checkpoint_Tacotron2_last.pt"
python inference.py --tacotron2 "$CKPT" -i phrases/demo.txt -o "$OUT/audio" --plot --deterministic
python -m scripts.evaluate_tacotron2 --tacotron2 "$CKPT" -d "$DATA" \
    --filelist "$FL/espeak_audio_text_test_filelist.txt" -o "$OUT/eval" --limit 24 --calibrate
echo "wavs and alignment pictures: $OUT/audio; per-sentence metrics: $OUT/eval/metrics.json"
