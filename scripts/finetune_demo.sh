#!/usr/bin/env bash
# A new voice from a few minutes of audio: the demo's Tacotron 2 (CMU ARCTIC's slt voice) fine-tuned on 2, 5 and
# 10 minutes of another voice (flite's kal16, male US English), each for the same budget of CPU minutes, beside
# the same data and minutes from scratch; every model judged on held-out sentences of other vocabulary spoken by
# the new voice (the recogniser's WER/CER, DNSMOS, MCD-DTW and contrast against it, stop accuracy) and by the old
# one (MCD-DTW against slt: a fine-tuned model should end closer to the new speaker than to the old one).
#   bash scripts/finetune_demo.sh          # after bash scripts/demo.sh (it runs the demo first if BASE lacks it)
# Settings (environment): BASE=demo_output (a demo run: its tacotron2_averaged.pt, else its last checkpoint, and
# heldout/), NEW_VOICE=flite-kal16, DATA_MINUTES="2 5 10", MINUTES=10 (training per run: the two runs of a data size
# share the machine, one core each on 2 cores), OUT=finetune_output, DATA=data/${NEW_VOICE}, LR=1e-3 (fine-tuning;
# from scratch the demo's 2e-3), WARMUP=200 (steps of linear warm-up of each run's fresh optimizer), FREEZE (train.py's
# --freeze for the fine-tunes, e.g. "embedding encoder"), PULL=20 (train.py's --warm-start-pull for the fine-tunes:
# each step pulls the weights back towards the base model's; 0: off), AMP=1 (--amp-run, as the demo trains),
# AVERAGE=5 (each run judged as the mean of its last AVERAGE epoch checkpoints, as the demo's model is; 1: the last
# checkpoint),
# THREADS=nproc, NEW_N=300 (sentences of the new voice's corpus), EPOCH_CLIPS=200 (clips an epoch: the data size's
# list repeated), HELD_N=48 (held-out sentences), CONFIG (the training config file;
# the fine-tunes take the base model's widths from its checkpoint, the runs from scratch this file's).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="${BASE:-demo_output}"
NEW_VOICE="${NEW_VOICE:-flite-kal16}"
DATA_MINUTES="${DATA_MINUTES:-2 5 10}"
MINUTES="${MINUTES:-10}"
OUT="${OUT:-finetune_output}"
DATA="${DATA:-data/${NEW_VOICE}}"
LR="${LR:-1e-3}"
THREADS="${THREADS:-$(nproc)}"
NEW_N="${NEW_N:-300}"
HELD_N="${HELD_N:-48}"
EPOCH_CLIPS="${EPOCH_CLIPS:-200}"
WARMUP="${WARMUP:-200}"
PULL="${PULL:-20}"
AMP="${AMP:-1}"
AVERAGE="${AVERAGE:-5}"
read -r -a FREEZE <<< "${FREEZE:-}"
CONFIG="${CONFIG:-scripts/configs/tacotron2_small_cpu.json}"
PREFIX=${NEW_VOICE//-/_}

bash scripts/setup.sh
. scripts/python_env.sh
BASE_T2="$BASE/tacotron2/checkpoint_Tacotron2_last.pt"
if [ ! -f "$BASE_T2" ] || [ ! -f "$BASE/heldout/metadata.csv" ]; then
    echo "finetune_demo: no demo run in $BASE: running it first (bash scripts/demo.sh)"
    OUT="$BASE" VOICE=slt bash scripts/demo.sh
fi
# the model the demo judged and speaks with: the mean of its last epochs where it wrote one
if [ -f "$BASE/tacotron2_averaged.pt" ]; then BASE_T2="$BASE/tacotron2_averaged.pt"; fi
PRECISION=()
if [ "$AMP" = 1 ]; then PRECISION=(--amp-run); fi
echo "finetune_demo: $(python -c 'from common.cpu.cpu_features import describe; print("CPU", describe())');" \
     "$NEW_VOICE from $BASE_T2; $DATA_MINUTES minutes of data, $MINUTES minutes of training each"

# The new voice: real sentences of the training grammar (what a user records), and the demo's held-out sentences
[ -f "$DATA/metadata.csv" ] || python -m scripts.make_corpus -o "$DATA" --voice "$NEW_VOICE" --n "$NEW_N" --seed 5
[ -f "$OUT/heldout/metadata.csv" ] || python -m scripts.make_corpus -o "$OUT/heldout" --voice "$NEW_VOICE" \
    --held-out "$HELD_N" --seed 2
FL="$DATA/filelists"
HELD_OUT="$OUT/heldout/filelists/${PREFIX}_audio_phoneme_all_filelist.txt"
OLD_HELD_OUT="$BASE/heldout/filelists/slt_audio_phoneme_all_filelist.txt"
python -m scripts.check_dataset -d "$DATA" --filelist "$FL/${PREFIX}_audio_phoneme_train_filelist.txt" \
    "$FL/${PREFIX}_audio_phoneme_val_filelist.txt" > "$OUT/check_dataset.txt" || { cat "$OUT/check_dataset.txt"; exit 1; }

judge() {  # [LISTEN_OLD=1] judge NAME CHECKPOINT [FLAGS]: both held-out sets, the listeners on the new voice's
    # (and on the old voice's with LISTEN_OLD)
    python -m scripts.evaluate_tacotron2 --tacotron2 "$2" -d "$OUT/heldout" --filelist "$HELD_OUT" \
        -o "$OUT/eval/$1" --voice "$NEW_VOICE" --listen --audio --limit "$HELD_N" "${@:3}" > "$OUT/eval/$1.log"
    python -m scripts.evaluate_tacotron2 --tacotron2 "$2" -d "$BASE/heldout" --filelist "$OLD_HELD_OUT" \
        -o "$OUT/eval/$1_old_voice" --voice slt --no-plots --limit "$HELD_N" ${LISTEN_OLD:+--listen} \
        > "$OUT/eval/$1_old_voice.log"
}
mkdir -p "$OUT/eval"
# the base model is also heard in its own voice: the fine-tune's intelligibility target is its WER there + 0.10
# (judged once: a second run into the same OUT, e.g. with other DATA_MINUTES, keeps it)
[ -f "$OUT/eval/base_old_voice/metrics.json" ] || LISTEN_OLD=1 judge base "$BASE_T2" --calibrate
# The two runs of a data size train side by side, one process of THREADS/2 threads each (on 2 cores: one core
# each for MINUTES minutes), so that both get the same machine at the same time
RUN_THREADS=$(( THREADS / 2 > 0 ? THREADS / 2 : 1 ))
for m in $DATA_MINUTES; do
    list="$FL/${PREFIX}_audio_phoneme_train_${m}min_filelist.txt"
    python -m scripts.write_filelists --minutes "$m" --filelist "$FL/${PREFIX}_audio_phoneme_train_filelist.txt" \
        -d "$DATA" -o "$list"
    # epochs of ~EPOCH_CLIPS clips whatever the data: a few minutes of audio would otherwise be an epoch of two
    # steps, most of its time spent on validation
    repeated="${list%.txt}_x.txt"
    : > "$repeated"
    while [ "$(wc -l < "$repeated")" -lt "$EPOCH_CLIPS" ]; do cat "$list" >> "$repeated"; done
    pids=()
    # flite's voices say no segment times: the diagonal guide (the config's width), without the fallback's warning
    GUIDE=(--no-guided-attention-durations)
    for start in finetuned scratch; do
        run="$OUT/${start}_${m}min"
        if [ "$start" = scratch ]; then FROM=(-lr 2e-3); else
            FROM=(--warm-start "$BASE_T2" -lr "$LR" --warm-start-pull "$PULL")
            if [ ${#FREEZE[@]} -gt 0 ]; then FROM+=(--freeze "${FREEZE[@]}"); fi
        fi
        OMP_NUM_THREADS=$RUN_THREADS python train.py -m Tacotron2 -o "$run" -d "$DATA" "${FROM[@]}" --epochs 1000 \
            -bs 8 --config-file "$CONFIG" --max-minutes "$MINUTES" --training-files "$repeated" --text-frontend festival \
            --validation-files "$FL/${PREFIX}_audio_phoneme_val_filelist.txt" --val-metrics 4 \
            --epochs-per-val-metrics 5 --epochs-per-checkpoint 1 --warmup-steps "$WARMUP" "${PRECISION[@]}" \
            "${GUIDE[@]}" > "$run.log" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || { tail -20 "$OUT"/*_"${m}"min.log; exit 1; }; done
    for start in finetuned scratch; do
        run="$OUT/${start}_${m}min"
        model="$run/checkpoint_Tacotron2_last.pt"
        if [ "$AVERAGE" -gt 1 ]; then
            python -m scripts.average_checkpoints "$run" --last "$AVERAGE" -o "${run}_averaged.pt"
            model="${run}_averaged.pt"
        fi
        judge "${start}_${m}min" "$model"
    done
done
python -m scripts.finetune_table "$OUT" --data-minutes $DATA_MINUTES | tee "$OUT/table.md"
echo "listen: $OUT/eval/*/ (teacher and model wavs of each run); the table: $OUT/table.md"
