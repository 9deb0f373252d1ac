#!/usr/bin/env bash
# Installs everything this repository needs on a fresh Debian/Ubuntu machine (or in an NGC container):
# the Python packages of requirements.txt and espeak-ng (used to build test and demo corpora).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v espeak-ng >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq >/dev/null && apt-get install -y -qq espeak-ng >/dev/null
    else
        echo "setup: espeak-ng is missing and cannot be installed here (need apt-get as root);" \
             "tests that build corpora will be skipped" >&2
    fi
fi

# Inside an NGC PyTorch container keep its CUDA build of torch rather than the pinned CPU one.
if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    grep -v '^torch==' requirements.txt > /tmp/requirements-no-torch.txt
    python -m pip install -q -r /tmp/requirements-no-torch.txt
else
    python -m pip install -q -r requirements.txt
fi
