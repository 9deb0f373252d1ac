#!/usr/bin/env bash
# Download LJSpeech-1.1 (needs internet) into ./LJSpeech-1.1 and write the seed's filelists with NVIDIA's split
# (filelists/ljspeech_split): filelists/ljs_{audio,mel}_text_*_filelist.txt, paths LJSpeech-1.1/..., used with -d ./
. "$(dirname "$0")/python_env.sh"
set -euo pipefail
DATADIR="${DATADIR:-LJSpeech-1.1}"
FILELISTSDIR="${FILELISTSDIR:-filelists}"
cd "$(dirname "$0")/.."
URL="https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
if [ ! -f "$DATADIR/metadata.csv" ]; then
    echo "Downloading $URL ..."
    if ! wget -c -q --show-progress "$URL" -O LJSpeech-1.1.tar.bz2; then
        echo "error: could not download LJSpeech (no internet?). Any LJSpeech-format corpus works:" >&2
        echo "  a folder with wavs/*.wav and metadata.csv (id|text|normalized text); see scripts/make_corpus.py" >&2
        exit 1
    fi
    tar -xjf LJSpeech-1.1.tar.bz2
    rm -f LJSpeech-1.1.tar.bz2
fi
python -m scripts.write_filelists --metadata "$DATADIR/metadata.csv" --split filelists/ljspeech_split -o "$FILELISTSDIR" \
    --root "$(basename "$DATADIR")"
