#!/usr/bin/env bash
# Compute the mels of LJSpeech once (LJSpeech-1.1/mels/*.pt) for --load-mel-from-disk, from the seed's filelists
# (paths relative to ./, as scripts/prepare_dataset.sh writes them).
. "$(dirname "$0")/python_env.sh"
set -euo pipefail
DATASET_PATH="${DATASET_PATH:-./}"
FILELISTSDIR="${FILELISTSDIR:-filelists}"
mkdir -p "$DATASET_PATH/LJSpeech-1.1/mels"
for split in train val test; do
    python preprocess_audio2mel.py -d "$DATASET_PATH" \
        --wav-files "$FILELISTSDIR/ljs_audio_text_${split}_filelist.txt" \
        --mel-files "$FILELISTSDIR/ljs_mel_text_${split}_filelist.txt"
done
