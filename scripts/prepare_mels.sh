#!/usr/bin/env bash
# Compute the mels of LJSpeech once (LJSpeech-1.1/mels/*.pt) for --load-mel-from-disk.
set -euo pipefail
DATADIR="${DATADIR:-LJSpeech-1.1}"
FILELISTSDIR="${FILELISTSDIR:-filelists}"
for split in train val test; do
    python preprocess_audio2mel.py -d "$DATADIR" \
        --wav-files "$FILELISTSDIR/ljs_audio_text_${split}_filelist.txt" \
        --mel-files "$FILELISTSDIR/ljs_mel_text_${split}_filelist.txt"
done
