#!/usr/bin/env bash
# Proves the CUDA paths on one GPU and prints figures (meant to take under 8 minutes on an H100 / H200; run
# it alone: its parts are timed, and the suite's CPU load slows training when they share the machine):
#
#   bash scripts/gpu_check.sh                 # every part
#   bash scripts/gpu_check.sh train infer     # some parts
#
# Parts, in order:
#   env       GPU, driver, torch
#   tests     the test suite with CUDA present (CUDA-only tests run; training and inference tests use the GPU)
#   train     a few hundred steps of Tacotron 2 and WaveGlow training, fp32/TF32 and --amp-run (fp16 +
#             GradScaler), on an espeak corpus; their loss curves side by side
#   dist      a one-rank NCCL process group forced through DDP and every collective (--force-distributed)
#   checks    scripts/gpu_checks.py: CUDA-graph decoder = step loop, fp16 vs fp32 (mel error, WaveGlow SNR,
#             no NaN/inf over the phrase files), no host syncs, RNG, fused resume, export, deferred LSTM grads
#   infer     inference.py fp16 and fp32, batch 1 and 4, CUDA graphs and --no-cuda-graphs
#   latency   test_infer.py latency tables (default-size random weights, WN 256)
#   export    export.py --device cuda
#   bench     scripts/benchmark.py --device cuda
#
# Without CUDA it says so, runs the CPU parts (train and dist, a few steps each, tiny models) and exits 0.
# OUT (default gpu_check_output) receives logs and checkpoints; CORPUS names an LJSpeech-format corpus with
# filelists/espeak_audio_text_{train,val}_filelist.txt (default: OUT/corpus, built with espeak-ng).
# TEST_WORKERS (default 8) runs the suite in parallel where pytest-xdist is installed.
. "$(dirname "$0")/python_env.sh"
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_output}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-$(command -v python3 || command -v python)}
CUDA=$($PY -c "import torch; print(int(torch.cuda.is_available()))")
START=$(date +%s)
SUMMARY=()

part() {  # part NAME TIMEOUT_S COMMAND...: run, time and record it; a failure does not stop the others
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s) status
    echo; echo "=== $name ($(date +%T))"
    if timeout "$limit" "$@"; then status=PASS; else status="FAIL (exit $?)"; fi
    SUMMARY+=("$(printf '%-8s %-14s %4d s' "$name" "$status" $(( $(date +%s) - t0 )))")
}

if [ "$CUDA" = 1 ]; then
    PARTS=${*:-env tests train dist checks infer latency export bench}
    BS_T2=8; BS_WG=8; WORKERS=8; EPOCHS_T2=${EPOCHS_T2:-6}; EPOCHS_WG=${EPOCHS_WG:-6}; WN=256; SEG=8000; T2_CONFIG=""; WG_CONFIG=""
else
    echo "gpu_check: no CUDA device here: running the CPU parts only (train, dist: a few steps, tiny models)."
    echo "gpu_check: run this on a machine with a GPU to prove the CUDA paths."
    PARTS="train dist"
    BS_T2=4; BS_WG=2; WORKERS=0; EPOCHS_T2=1; EPOCHS_WG=1; WN=8; SEG=2048
    T2_CONFIG="$OUT/tiny_t2.json"; WG_CONFIG="$OUT/tiny_wg.json"
fi

CORPUS=${CORPUS:-$OUT/corpus}
TRAIN_LIST=$CORPUS/filelists/espeak_audio_text_train_filelist.txt
VAL_LIST=$CORPUS/filelists/espeak_audio_text_val_filelist.txt
if [ ! -f "$TRAIN_LIST" ] && [[ " $PARTS " =~ " train " || " $PARTS " =~ " dist " ]]; then
    n=$([ "$CUDA" = 1 ] && echo 240 || echo 24)
    $PY -m scripts.make_corpus -o "$CORPUS" --n "$n" --seed 3 --jobs 4 >/dev/null || exit 1
fi
[ -n "$T2_CONFIG" ] && $PY - "$T2_CONFIG" "$WG_CONFIG" <<'EOF'
import json, sys
from tests.corpus import TINY_T2_FLAGS, TINY_WG_FLAGS
json.dump(TINY_T2_FLAGS, open(sys.argv[1], "w"))
json.dump(TINY_WG_FLAGS, open(sys.argv[2], "w"))
EOF

train_args() {  # MODEL OUTDIR BS EPOCHS [flags...]
    local model=$1 out=$2 bs=$3 epochs=$4; shift 4
    local config=$([ "$model" = Tacotron2 ] && echo "$T2_CONFIG" || echo "$WG_CONFIG")
    echo -m "$model" -o "$out" -d "$CORPUS" -lr 1e-3 --epochs "$epochs" -bs "$bs" --training-files "$TRAIN_LIST" \
        --validation-files "$VAL_LIST" --num-workers "$WORKERS" --log-interval 20 --epochs-per-checkpoint 1000 \
        ${config:+--config-file $config} "$@"
}

curves() {  # print per-epoch losses of two runs side by side
    $PY - "$@" <<'EOF'
import sys
from common.dllog import read_log
runs = [(p, [r["data"] for r in read_log(p + "/nvlog.json") if r["type"] == "LOG" and isinstance(r["step"], list)
             and len(r["step"]) == 1]) for p in sys.argv[1:]]
print("epoch  " + "  ".join(f"{p.split('/')[-1] + ' train/val loss':>28}" for p, _ in runs)
      + "  " + "  ".join(f"{p.split('/')[-1] + ' items/s':>16}" for p, _ in runs))
for e in range(max(len(r) for _, r in runs)):
    cells = [f"{r[e]['train_loss']:>13.4f} {r[e].get('val_loss', float('nan')):>14.4f}" if e < len(r) else " " * 28
             for _, r in runs]
    speed = [f"{r[e]['train_items_per_sec']:>16,.0f}" if e < len(r) else " " * 16 for _, r in runs]
    print(f"{e:>5}  " + "  ".join(cells) + "  " + "  ".join(speed))
EOF
}

T2_CKPT=$OUT/t2_amp/checkpoint_Tacotron2_last.pt
WG_CKPT=$OUT/wg_amp/checkpoint_WaveGlow_last.pt
for p in $PARTS; do
    case $p in
    env)
        nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
        part env 60 $PY -c "import torch; p = torch.cuda.get_device_properties(0); print('torch', torch.__version__, \
'CUDA', torch.version.cuda, p.name, p.total_memory // 2**30, 'GiB', p.multi_processor_count, 'SMs')" ;;
    tests)
        xdist=$($PY -c "import xdist" 2>/dev/null && echo "-n ${TEST_WORKERS:-8}")
        part tests 300 $PY -m pytest -q -x $xdist -p no:cacheprovider tests ;;
    train)
        for prec in ${PRECISIONS:-fp32 amp}; do
            flag=$([ $prec = amp ] && echo --amp-run)
            part "t2_$prec" 240 $PY train.py $(train_args Tacotron2 "$OUT/t2_$prec" $BS_T2 $EPOCHS_T2 --cache-mels \
                --cudnn-enabled $flag)
            part "wg_$prec" 240 $PY train.py $(train_args WaveGlow "$OUT/wg_$prec" $BS_WG $EPOCHS_WG --cudnn-enabled \
                --wn-channels $WN --segment-length $SEG $flag)
        done
        curves "$OUT/t2_fp32" "$OUT/t2_amp"
        curves "$OUT/wg_fp32" "$OUT/wg_amp" ;;
    dist)
        # the same models and flags as the train part (without --cudnn-enabled, convolutions and the encoder
        # LSTM fall back to slow native kernels: WaveGlow WN 512 ran at 5.4 s a step on an H200)
        part dist_Tacotron2 180 $PY -m multiproc --nproc-per-node 1 train.py $(train_args Tacotron2 "$OUT/dist_Tacotron2" \
            $BS_T2 2 --cudnn-enabled --force-distributed --check-replicas --amp-run --max-steps-per-epoch 10 --val-metrics 1)
        part dist_WaveGlow 180 $PY -m multiproc --nproc-per-node 1 train.py $(train_args WaveGlow "$OUT/dist_WaveGlow" \
            $BS_WG 2 --cudnn-enabled --wn-channels $WN --segment-length $SEG --force-distributed --check-replicas \
            --amp-run --max-steps-per-epoch 10) ;;
    checks)
        ckpts=""
        [ -f "$T2_CKPT" ] && ckpts="--tacotron2 $T2_CKPT"
        [ -f "$WG_CKPT" ] && ckpts="$ckpts --waveglow $WG_CKPT"
        part checks 240 $PY -m scripts.gpu_checks $ckpts --out "$OUT" ;;
    infer)
        for case in 1:--amp-run 4:--amp-run 1: 4:; do
            bs=${case%%:*}; amp=${case#*:}
            part "infer_bs${bs}${amp:+_amp}" 120 $PY inference.py --tacotron2 "$T2_CKPT" --waveglow "$WG_CKPT" \
                -i "phrases/phrase_4_64.txt" -o "$OUT/infer" --suffix "_bs${bs}${amp:+_amp}" -bs $bs $amp \
                --include-warmup --max-decoder-steps 400 --log-file "$OUT/infer/nvlog_bs${bs}${amp:+_amp}.json"
        done
        part infer_nographs 120 $PY inference.py --tacotron2 "$T2_CKPT" --waveglow "$WG_CKPT" -i phrases/phrase_4_64.txt \
            -o "$OUT/infer" --suffix _nographs -bs 4 --amp-run --no-cuda-graphs --max-decoder-steps 400 ;;
    latency)
        for bs in 1 4; do for amp in --amp-run ""; do
            part "latency_bs${bs}${amp:+_amp}" 150 $PY test_infer.py -bs "$bs" -il 128 -n "${LATENCY_ITERS:-20}" $amp \
                --max-decoder-steps 600 --log-file "$OUT/nvlog_latency_bs${bs}${amp:+_amp}.json"
        done; done ;;
    export)
        part export 120 $PY export.py --tacotron2 "$T2_CKPT" --waveglow "$WG_CKPT" -o "$OUT/export_cli" --device cuda ;;
    bench)
        part bench 300 $PY -m scripts.benchmark --device cuda ;;
    *)
        echo "gpu_check: unknown part $p"; exit 2 ;;
    esac
done

echo; echo "=== gpu_check summary ($(( $(date +%s) - START )) s, $([ "$CUDA" = 1 ] && $PY -c 'import torch; print(torch.cuda.get_device_name())' || echo 'no CUDA: CPU parts only'))"
printf '%s\n' "${SUMMARY[@]}"
! printf '%s\n' "${SUMMARY[@]}" | grep -q FAIL
