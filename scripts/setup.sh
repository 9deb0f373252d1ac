#!/usr/bin/env bash
# Sets up this checkout on a fresh Debian/Ubuntu machine, or inside an NGC PyTorch container:
#   1. the system packages it needs (Python 3 with venv; espeak-ng, festival with CMU ARCTIC's slt voice and
#      flite, which build the test and demo corpora; curl, for the server's examples; Chromium, which the demo
#      page's test opens), with apt-get as root or through sudo; where neither is possible it prints the one
#      command to run and stops;
#   2. a virtual environment in .venv (a stock Debian/Ubuntu Python refuses `pip install`, PEP 668), with the
#      packages of requirements.txt. Where the Python that makes it already has a CUDA build of torch (an NGC
#      container), the environment sees that torch and installs everything else.
# Run it again at any time: it installs only what is missing. Then:  .venv/bin/python -m pytest -q -n auto tests
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bash scripts/setup.sh takes torch's CPU build (PyPI's
# default build for Linux is the CUDA one, a few GB).
set -euo pipefail
cd "$(dirname "$0")/.."

# --- 1. system packages -------------------------------------------------------------------------------------
missing=()
python_ok() { python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; }
if ! python_ok; then missing+=(python3); fi
# Debian and Ubuntu ship venv's pip bootstrap separately (python3-venv); a Python from elsewhere has it
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then missing+=(python3-venv); fi
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v text2wave >/dev/null 2>&1 || missing+=(festival)
[ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] || missing+=(festvox-us-slt-hts)
command -v flite >/dev/null 2>&1 || missing+=(flite)
command -v curl >/dev/null 2>&1 || missing+=(curl)  # the README's server examples, run by the tests
optional=()
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    # Debian's package; Ubuntu's is a snap that a container cannot run: there the browser test is skipped
    if grep -qs '^ID=debian' /etc/os-release; then optional+=(chromium); fi
fi

if [ ${#missing[@]} -gt 0 ] || [ ${#optional[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo); else sudo=(none); fi
    if ! command -v apt-get >/dev/null 2>&1 || [ "${sudo[*]}" = none ]; then
        if [ ${#missing[@]} -gt 0 ]; then
            echo "setup: missing ${missing[*]}; install them (as root), then run this again:" >&2
            echo "    sudo apt-get install -y ${missing[*]} ${optional[*]}" >&2
            exit 1
        fi
        echo "setup: no Chromium and no way to install it here; the demo page's browser test will be skipped" >&2
    else
        echo "setup: installing ${missing[*]} ${optional[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update -qq >/dev/null
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        if [ ${#optional[@]} -gt 0 ] && ! "${sudo[@]}" apt-get install -y -qq "${optional[@]}" >/dev/null 2>&1; then
            echo "setup: Chromium could not be installed; the demo page's browser test will be skipped" >&2
        fi
    fi
fi
python_ok || { echo "setup: Python >= 3.10 is needed; python3 is $(python3 --version 2>&1)" >&2; exit 1; }

# --- 2. the virtual environment -----------------------------------------------------------------------------
requirements=requirements.txt
venv_flags=()
if python3 -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)' >/dev/null 2>&1; then
    venv_flags=(--system-site-packages)  # an NGC container: keep its CUDA build of torch
    grep -v '^torch==' requirements.txt > .venv-requirements.txt
    requirements=.venv-requirements.txt
fi
if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
    rm -rf .venv
    python3 -m venv "${venv_flags[@]}" .venv
fi
pip_flags=(-q --disable-pip-version-check)
if [ -n "${TORCH_INDEX_URL:-}" ]; then pip_flags+=(--extra-index-url "$TORCH_INDEX_URL"); fi
# pip only when the requirements changed since the last set-up that installed them (the recipes call this script
# at their start: a no-op pip run still takes ~10 s)
stamp=$(cat "$requirements" | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.requirements-installed 2>/dev/null)" != "$stamp" ]; then
    .venv/bin/python -m pip install "${pip_flags[@]}" -r "$requirements"
    echo "$stamp" > .venv/.requirements-installed
fi
rm -f .venv-requirements.txt
echo "setup: done. Python: $PWD/.venv/bin/python (torch $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("torch"))'))"
