#!/usr/bin/env bash
# One latency measurement, as the seed's test_infer.sh runs it:
#   bash test_infer.sh -bs 1 -il 128 -p amp --num-iters 1003 --tacotron2 T2.pt --waveglow WG.pt
#   (`--fp16` or `-p fp16`, as NVIDIA's current script spells it, is -p amp with fp16 in the file names)
# writes nvlog_bs1_il128_amp.json (every run) and appends one CSV line to log_bs1_il128_amp.log:
# batch size, input length, precision, iterations, latency average, std, cl 90, cl 95, cl 99,
# throughput (samples/s), mels per audio.  Extra flags: --cpu, --wn-channels N (random WaveGlow),
# --max-decoder-steps N; without --tacotron2/--waveglow, random default-size weights are timed.
. "$(dirname "$0")/scripts/python_env.sh"
set -euo pipefail
BATCH_SIZE=1
INPUT_LENGTH=128
PRECISION=fp32
NUM_ITERS=1003  # 3 of them warm-up
MODELS=()
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        -bs|--batch-size) BATCH_SIZE="$2"; shift ;;
        -il|--input-length) INPUT_LENGTH="$2"; shift ;;
        -p|--prec) PRECISION="$2"; shift ;;
        --num-iters) NUM_ITERS="$2"; shift ;;
        --tacotron2|--waveglow) MODELS+=("$1" "$2"); shift ;;
        --wn-channels|--max-decoder-steps) EXTRA+=("$1" "$2"); shift ;;
        --cpu|--cpu-run) EXTRA+=(--cpu) ;;
        --fp16) PRECISION=fp16 ;;  # NVIDIA's current script's spelling of -p amp
        *) echo "test_infer.sh: option $1 not recognized" >&2; exit 2 ;;
    esac
    shift
done
case "$PRECISION" in
    amp|fp16) AMP=(--amp-run) ;;
    fp32) AMP=() ;;
    *) echo "test_infer.sh: -p must be amp, fp16 or fp32, not $PRECISION" >&2; exit 2 ;;
esac
SUFFIX="bs${BATCH_SIZE}_il${INPUT_LENGTH}_${PRECISION}"
TMP_LOG="tmp_log_${SUFFIX}.log"
python "$(dirname "$0")/test_infer.py" "${MODELS[@]}" --batch-size "$BATCH_SIZE" --input-length "$INPUT_LENGTH" "${AMP[@]}" \
    --log-file "nvlog_${SUFFIX}.json" --num-iters "$NUM_ITERS" "${EXTRA[@]}" 2>&1 | tee "$TMP_LOG"
value() { grep -F "$1" "$TMP_LOG" | awk -F'= ' '{print $2}'; }
echo "$BATCH_SIZE,$INPUT_LENGTH,$PRECISION,$NUM_ITERS,$(value 'Latency average (seconds)'),$(value 'Latency std (seconds)'),$(value 'Latency cl 90 (seconds)'),$(value 'Latency cl 95 (seconds)'),$(value 'Latency cl 99 (seconds)'),$(value 'Throughput average (samples/sec)'),$(value 'Number of mels per audio average')" >> "log_${SUFFIX}.log"
