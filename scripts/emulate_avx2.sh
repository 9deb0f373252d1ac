#!/usr/bin/env bash
# Runs a command as it would run on an x86-64 CPU with AVX2 but no AVX-512 and no bfloat16 (an AMD Zen 3, say):
# caps the instruction sets that oneDNN, aten, MKL and fbgemm may use before torch starts.
#   bash scripts/emulate_avx2.sh python -m pytest -q tests/test_fast_paths.py
# What it cannot change: the CPU's own flags (torch.cpu._is_avx512_bf16_supported() still reads them) and
# memory bandwidth, so its speeds are AVX2 kernels on this machine, not another machine's figures.
set -euo pipefail
if [ $# -eq 0 ]; then echo "usage: bash scripts/emulate_avx2.sh COMMAND [ARGS...]" >&2; exit 2; fi
export ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2
exec "$@"
