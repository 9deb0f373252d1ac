#!/usr/bin/env bash
# The main job on a built-in default, on a CPU: build an espeak-ng corpus (half of it sentences of made-up words),
# train a small Tacotron 2 and a small WaveGlow on it for bounded times, then evaluate on held-out sentences and on
# phrases/demo.txt, print the quality and calibration tables and write OUT/index.html to listen and look.
#   bash scripts/demo.sh
# Settings (environment): MINUTES=20 (Tacotron 2), WG_MINUTES=8 (WaveGlow; 0 skips it), INPUT=phonemes
# (espeak-ng's own phonemes as ARPAbet) or characters, OUT=demo_output, DATA=data/espeak_pw, PROCS=min(nproc, 2)
# Tacotron 2 training processes (data parallel over gloo, batch 8 each), THREADS=nproc.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${MINUTES:-20}"
WG_MINUTES="${WG_MINUTES:-8}"
INPUT="${INPUT:-phonemes}"
OUT="${OUT:-demo_output}"
DATA="${DATA:-data/espeak_pw}"
THREADS="${THREADS:-$(nproc)}"
PROCS="${PROCS:-$(( THREADS < 2 ? 1 : 2 ))}"
export OMP_NUM_THREADS="$THREADS"

bash scripts/setup.sh
. scripts/python_env.sh
FL="$DATA/filelists"
if [ ! -f "$DATA/metadata.csv" ]; then
    python -m scripts.make_espeak_corpus -o "$DATA" --n 1200 --seed 1 --pseudo-words 0.5
fi
case "$INPUT" in
    phonemes) KIND=phoneme
        for split in train val test; do
            [ -f "$FL/espeak_audio_phoneme_${split}_filelist.txt" ] || python -m scripts.phonemize \
                "$FL/espeak_audio_text_${split}_filelist.txt" "$FL/espeak_audio_phoneme_${split}_filelist.txt"
        done ;;
    characters) KIND=text ;;
    *) echo "INPUT must be phonemes or characters, not $INPUT" >&2; exit 2 ;;
esac

# Stage 1: Tacotron 2 (text -> mel). The small model's batch-8 step is mostly small sequential products, which a
# second thread speeds up by ~10 %; a second process (python -m multiproc, the seed's multi-GPU launcher, here on
# CPU cores) trains on 1.5x the samples per second (see the README's demo section)
T2_LAUNCH=(python)
if [ "$PROCS" -gt 1 ]; then T2_LAUNCH=(python -m multiproc --nproc-per-node "$PROCS"); fi
OMP_NUM_THREADS=$(( THREADS / PROCS > 0 ? THREADS / PROCS : 1 )) "${T2_LAUNCH[@]}" train.py -m Tacotron2 -o "$OUT/tacotron2" -d "$DATA" -lr 2e-3 --epochs 1000 -bs 8 \
    --config-file scripts/configs/tacotron2_small_cpu.json --max-minutes "$MINUTES" --resume-from-last \
    --anneal-steps 50 --anneal-factor 0.3 \
    --training-files "$FL/espeak_audio_${KIND}_train_filelist.txt" \
    --validation-files "$FL/espeak_audio_${KIND}_val_filelist.txt" --epochs-per-checkpoint 1
T2="$OUT/tacotron2/checkpoint_Tacotron2_last.pt"

# Stage 2: WaveGlow (mel -> audio), on the same corpus; epochs of 300 clips (random segments of each), so that the
# validation curve has a point every minute or two
WG_ARGS=()
if [ "$WG_MINUTES" != 0 ]; then
    head -n 300 "$FL/espeak_audio_text_train_filelist.txt" > "$FL/espeak_audio_text_train_300_filelist.txt"
    python train.py -m WaveGlow -o "$OUT/waveglow" -d "$DATA" -lr 1e-3 --epochs 1000 -bs 4 \
        --config-file scripts/configs/waveglow_small_cpu.json --max-minutes "$WG_MINUTES" --resume-from-last \
        --training-files "$FL/espeak_audio_text_train_300_filelist.txt" \
        --validation-files "$FL/espeak_audio_text_val_filelist.txt" --epochs-per-checkpoint 1
    WG_ARGS=(--waveglow "$OUT/waveglow/checkpoint_WaveGlow_last.pt")
fi

# Held-out sentences: metrics, calibration, wavs and pictures
python -m scripts.evaluate_tacotron2 --tacotron2 "$T2" "${WG_ARGS[@]}" -d "$DATA" \
    --filelist "$FL/espeak_audio_${KIND}_test_filelist.txt" -o "$OUT/eval" --limit 24 --calibrate --audio

# The demo phrases: spoken by the teacher too, so that they can be compared
python -m scripts.make_espeak_corpus --sentences phrases/demo.txt -o "$OUT/phrases"
PHRASES=phrases/demo.txt
if [ "$KIND" = phoneme ]; then
    python -m scripts.phonemize "$OUT/phrases/filelists/espeak_audio_text_all_filelist.txt" \
        "$OUT/phrases/filelists/espeak_audio_phoneme_all_filelist.txt"
    cut -d'|' -f2 "$OUT/phrases/filelists/espeak_audio_phoneme_all_filelist.txt" > "$OUT/phrases/demo_phonemes.txt"
    PHRASES="$OUT/phrases/demo_phonemes.txt"
fi
python -m scripts.evaluate_tacotron2 --tacotron2 "$T2" "${WG_ARGS[@]}" -d "$OUT/phrases" \
    --filelist "$OUT/phrases/filelists/espeak_audio_${KIND}_all_filelist.txt" -o "$OUT/phrases_eval" --audio
# ... and through inference.py, as a user would synthesise them
python inference.py --tacotron2 "$T2" "${WG_ARGS[@]}" -i "$PHRASES" -o "$OUT/audio" --plot

python -m scripts.demo_page "$OUT"
echo "listen and look: $OUT/index.html; per-sentence metrics: $OUT/eval/metrics.json"
