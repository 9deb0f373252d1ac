#!/usr/bin/env bash
# Installs everything this repository needs on a fresh Debian/Ubuntu machine (or in an NGC container):
# the Python packages of requirements.txt, espeak-ng (used to build test and demo corpora) and Chromium (the demo
# page's test opens it headless).
set -euo pipefail
cd "$(dirname "$0")/.."

has_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
can_apt=false
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then can_apt=true; fi
if $can_apt && { ! command -v espeak-ng >/dev/null 2>&1 || ! has_chromium; }; then
    apt-get update -qq >/dev/null
fi
if ! command -v espeak-ng >/dev/null 2>&1; then
    if $can_apt; then
        apt-get install -y -qq espeak-ng >/dev/null
    else
        echo "setup: espeak-ng is missing and cannot be installed here (need apt-get as root);" \
             "tests that build corpora will be skipped" >&2
    fi
fi
if ! has_chromium; then
    # Debian's package; elsewhere (Ubuntu's is a snap) the browser test is skipped, saying why
    if ! { $can_apt && apt-get install -y -qq chromium >/dev/null 2>&1; }; then
        echo "setup: no Chromium installed; the demo page's browser test will be skipped" >&2
    fi
fi

# Inside an NGC PyTorch container keep its CUDA build of torch rather than the pinned CPU one.
if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    grep -v '^torch==' requirements.txt > /tmp/requirements-no-torch.txt
    python -m pip install -q -r /tmp/requirements-no-torch.txt
else
    python -m pip install -q -r requirements.txt
fi
