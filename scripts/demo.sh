#!/usr/bin/env bash
# The main job on a built-in default, on a CPU: build a corpus spoken by CMU ARCTIC's slt voice (festival's HTS
# voice of a real speaker; half of it sentences of made-up words), train a small Tacotron 2 on it for a bounded
# time, then judge it on held-out sentences of other vocabulary with listeners we did not write (pocketsphinx's
# word error rate, DNSMOS) beside calibration rows, print the tables and write OUT/index.html to listen and look.
#   bash scripts/demo.sh
# Settings (environment): VOICE=slt (or espeak: espeak-ng's formant voice, the earlier demo), MINUTES=30
# (Tacotron 2), WG_MINUTES=0 (WaveGlow from scratch: a CPU budget buys a learning curve, not a vocoder, so it is
# off unless asked for), INPUT=phonemes (the phonemes the teacher voice spoke, as ARPAbet) or characters,
# OUT=demo_output, DATA=data/${VOICE}_pw, PROCS=min(nproc, 2) Tacotron 2 training processes (data parallel over
# gloo, batch 8 each), THREADS=nproc, SCHEDULE=anneal (Tacotron 2's learning-rate schedule: anneal, NVIDIA's,
# x0.3 from epoch ANNEAL=50; cosine or linear: down to 1 % of the peak at MINUTES), LR=2e-3 (the peak), WARMUP=200
# (steps of linear warm-up: Adam's first full-rate steps can silence the decoder prenet for good), AVERAGE=5
# (the model judged and spoken is the mean of the last AVERAGE epoch checkpoints; 1: the last checkpoint alone),
# AMP=1 (Tacotron 2 trains with --amp-run: bf16 products where the CPU has native bf16, float32 elsewhere; 0:
# float32), PRENET_LR=0.1 (the decoder prenet's weights step at this fraction of the rate, so that Adam's full
# steps do not silence its units for good, as they did in the float32 run of an AVX2 CPU; 1: the rate), T2_FLAGS
# (more train.py flags, e.g. "--bucket-batches"): the A/B rounds of docs/demo.md, whose defaults are those the
# listeners preferred.
set -euo pipefail
cd "$(dirname "$0")/.."
VOICE="${VOICE:-slt}"
MINUTES="${MINUTES:-30}"
WG_MINUTES="${WG_MINUTES:-0}"
INPUT="${INPUT:-phonemes}"
OUT="${OUT:-demo_output}"
DATA="${DATA:-data/${VOICE}_pw}"
THREADS="${THREADS:-$(nproc)}"
PROCS="${PROCS:-$(( THREADS < 2 ? 1 : 2 ))}"
ANNEAL="${ANNEAL:-50}"
SCHEDULE="${SCHEDULE:-anneal}"
WARMUP="${WARMUP:-200}"
LR="${LR:-2e-3}"
AVERAGE="${AVERAGE:-5}"
AMP="${AMP:-1}"
PRENET_LR="${PRENET_LR:-0.1}"
read -r -a T2_EXTRA <<< "${T2_FLAGS:-}"
if [ "$AMP" = 1 ]; then T2_EXTRA=(--amp-run "${T2_EXTRA[@]}"); fi
if [ "$PRENET_LR" != 1 ]; then T2_EXTRA=(--lr-scale "decoder.prenet=$PRENET_LR" "${T2_EXTRA[@]}"); fi
export OMP_NUM_THREADS="$THREADS"
case "$VOICE" in slt|espeak) ;; *) echo "VOICE must be slt or espeak, not $VOICE" >&2; exit 2 ;; esac
case "$INPUT" in phonemes) KIND=phoneme ;; characters) KIND=text ;;
    *) echo "INPUT must be phonemes or characters, not $INPUT" >&2; exit 2 ;; esac
# the front end that made the transcripts, recorded with the checkpoints: inference reads plain text through it
case "$INPUT:$VOICE" in phonemes:slt) FRONTEND=festival ;; phonemes:espeak) FRONTEND=espeak ;; *) FRONTEND=characters ;; esac
# HiFi-GAN V1's published universal generator beside Griffin-Lim (not a WaveGlow: no vocoder is trained here)
HIFIGAN_ARGS=(--hifigan universal)

bash scripts/setup.sh
. scripts/python_env.sh
START=$(date +%s)
stage() {  # stage N WHAT MINUTES: one line per stage, with the time so far and what the stage takes
    echo "== demo $(date +%H:%M), $(( ($(date +%s) - START) / 60 )) min in: stage $1 of 6, $2 (about $3 min)"
}
echo "demo: $(python -c 'from common.cpu.cpu_features import describe; print("CPU", describe())'), $(nproc) cores;" \
     "Tacotron 2 for $MINUTES minutes on the $VOICE voice from $INPUT"

# corpus(DIR, make_corpus flags...): speak it once; espeak-ng's phonemes come from scripts.phonemize (the slt
# corpus carries the phonemes festival spoke)
corpus() {
    local dir=$1; shift
    # spoken once and kept; an slt corpus from before it carried festival's segment times (the guided attention's
    # path) is spoken again
    if [ ! -f "$dir/metadata.csv" ] || { [ "$VOICE" = slt ] && [ ! -f "$dir/segments.csv" ]; }; then
        python -m scripts.make_corpus -o "$dir" --voice "$VOICE" "$@"
    fi
    if [ "$VOICE" = espeak ] && [ "$KIND" = phoneme ]; then
        for list in "$dir"/filelists/espeak_audio_text_*_filelist.txt; do
            local target=${list/_text_/_phoneme_}
            [ -f "$target" ] || python -m scripts.phonemize "$list" "$target"
        done
    fi
}
stage 1 "the corpora (spoken once, then kept)" 3
corpus "$DATA" --n 1200 --seed 1 --pseudo-words 0.5
corpus "$OUT/heldout" --held-out 48 --seed 2
FL="$DATA/filelists"
HELD_OUT="$OUT/heldout/filelists/${VOICE}_audio_${KIND}_all_filelist.txt"

# Stage 1: Tacotron 2 (text -> mel). The small model's batch-8 step is mostly small sequential products, which a
# second thread speeds up by ~10 %; a second process (python -m multiproc, the seed's multi-GPU launcher, here on
# CPU cores) trains on 1.5x the samples per second (docs/demo.md)
stage 2 "Tacotron 2 training" "$MINUTES"
T2_LAUNCH=(python)
if [ "$PROCS" -gt 1 ]; then T2_LAUNCH=(python -m multiproc --nproc-per-node "$PROCS"); fi
OMP_NUM_THREADS=$(( THREADS / PROCS > 0 ? THREADS / PROCS : 1 )) "${T2_LAUNCH[@]}" train.py -m Tacotron2 -o "$OUT/tacotron2" -d "$DATA" -lr "$LR" --epochs 1000 -bs 8 \
    --config-file scripts/configs/tacotron2_small_cpu.json --max-minutes "$MINUTES" --resume-from-last \
    --anneal-steps "$ANNEAL" --anneal-factor 0.3 --lr-schedule "$SCHEDULE" --warmup-steps "$WARMUP" \
    --text-frontend "$FRONTEND" "${T2_EXTRA[@]}" \
    --training-files "$FL/${VOICE}_audio_${KIND}_train_filelist.txt" \
    --validation-files "$FL/${VOICE}_audio_${KIND}_val_filelist.txt" --epochs-per-checkpoint 1
# The end of a constant-rate run wanders around a minimum; the mean of its last epochs' weights lies nearer it and
# was understood better by the recogniser (docs/demo.md), at no training cost
T2="$OUT/tacotron2/checkpoint_Tacotron2_last.pt"
if [ "$AVERAGE" -gt 1 ]; then
    python -m scripts.average_checkpoints "$OUT/tacotron2" --last "$AVERAGE" -o "$OUT/tacotron2_averaged.pt"
    T2="$OUT/tacotron2_averaged.pt"
fi

# Stage 2 (WG_MINUTES > 0): WaveGlow (mel -> audio) on the same corpus; epochs of 300 clips (random segments of
# each), so that the validation curve has a point every minute or two
WG_ARGS=()
if [ "$WG_MINUTES" != 0 ]; then
    stage 3 "WaveGlow training" "$WG_MINUTES"
    head -n 300 "$FL/${VOICE}_audio_text_train_filelist.txt" > "$FL/${VOICE}_audio_text_train_300_filelist.txt"
    python train.py -m WaveGlow -o "$OUT/waveglow" -d "$DATA" -lr 1e-3 --epochs 1000 -bs 4 \
        --config-file scripts/configs/waveglow_small_cpu.json --max-minutes "$WG_MINUTES" --resume-from-last \
        --training-files "$FL/${VOICE}_audio_text_train_300_filelist.txt" \
        --validation-files "$FL/${VOICE}_audio_text_val_filelist.txt" --epochs-per-checkpoint 1
    WG_ARGS=(--waveglow "$OUT/waveglow/checkpoint_WaveGlow_last.pt")
fi

# Held-out sentences of other vocabulary: metrics, calibration, both listeners, wavs and pictures
# (13 minutes on 2 AVX-512 cores, 31 on 2 AVX2 cores of the slower EPYC)
stage 4 "the held-out sentences judged, with the listeners and the calibration rows" "13–31"
python -m scripts.evaluate_tacotron2 --tacotron2 "$T2" "${WG_ARGS[@]}" "${HIFIGAN_ARGS[@]}" -d "$OUT/heldout" \
    --filelist "$HELD_OUT" -o "$OUT/eval" --voice "$VOICE" --calibrate --listen --audio
# ... and what the checkpoints sounded like every 5 minutes of training
stage 5 "the listeners' curve over the checkpoints" 4
python -m scripts.listen_curve "$OUT/tacotron2" -d "$OUT/heldout" --filelist "$HELD_OUT" --voice "$VOICE" \
    --every 5 --limit 12 -o "$OUT/listen_curve.json"

# The demo phrases: spoken by the teacher too, so that they can be compared
stage 6 "the demo phrases, and the page" 2
corpus "$OUT/phrases" --sentences phrases/demo.txt
PHRASE_LIST="$OUT/phrases/filelists/${VOICE}_audio_${KIND}_all_filelist.txt"
python -m scripts.evaluate_tacotron2 --tacotron2 "$T2" "${WG_ARGS[@]}" "${HIFIGAN_ARGS[@]}" -d "$OUT/phrases" \
    --filelist "$PHRASE_LIST" -o "$OUT/phrases_eval" --voice "$VOICE" --listen --audio
# ... and through inference.py from plain text, as a user types them (the model's front end turns them into its
# symbols), with HiFi-GAN
cut -d'|' -f2 "$OUT/phrases/metadata.csv" > "$OUT/phrases/demo_input.txt"
VOCODER_ARGS=(--vocoder hifigan)
if [ ${#WG_ARGS[@]} -gt 0 ]; then VOCODER_ARGS=("${WG_ARGS[@]}"); fi
python inference.py --tacotron2 "$T2" "${VOCODER_ARGS[@]}" -i "$OUT/phrases/demo_input.txt" -o "$OUT/audio" --plot

python -m scripts.demo_page "$OUT"
echo "listen and look: $OUT/index.html; per-sentence metrics: $OUT/eval/metrics.json"
