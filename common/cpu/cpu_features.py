"""What this CPU can compute, asked once per process: native bfloat16, oneDNN's small-batch linear, int8 products,
and which kernel wins where that was measured rather than timed (a training step's choices must not change between
two processes, or a resumed run would not be the uninterrupted one).

x86-64 CPUs differ in what a fast path may use. bfloat16 needs AVX512-BF16 or AMX to be fast: without them
oneDNN and aten emulate it (an AVX2 Zen 3 ran bf16 matrix products ~30x slower than float32), and oneDNN's
private linear refuses bfloat16 altogether ("could not create a primitive descriptor"). So every bf16 choice
asks `bf16_native()`, and every private operator is tried once on a tiny input before it is trusted, with a
public fallback (F.linear) where it fails.

The answers follow the library limits a process was started with, so an AVX2 machine can be emulated on a
newer one: `bash scripts/emulate_avx2.sh COMMAND` sets oneDNN's, aten's, MKL's and fbgemm's instruction-set
caps before torch starts.
"""
import functools

import torch


def _has(torch_check: str, cpuinfo_flag: str) -> bool:
    """torch.cpu's check of an instruction set (private, so where it is missing: Linux's /proc/cpuinfo flags)."""
    check = getattr(torch.cpu, torch_check, None)
    if check is not None:
        return bool(check())
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and cpuinfo_flag in line.split() for line in f)
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def bf16_native() -> bool:
    """True where the CPU has bfloat16 arithmetic (AVX512-BF16 or AMX) and oneDNN and aten may use it."""
    has_instructions = _has("_is_avx512_bf16_supported", "avx512_bf16") or _has("_is_amx_tile_supported", "amx_bf16")
    onednn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    onednn_ok = bool(onednn()) if onednn is not None else True
    aten_ok = torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return has_instructions and onednn_ok and aten_ok


def winograd_trains_faster(channels: int) -> bool:
    """Whether WaveGlow's float32 training step is faster with its dilated convolutions (`channels` in, twice that
    out, 3 taps) by Winograd's algorithm (common/cpu/winograd.winograd_conv) than by oneDNN's direct ones. Measured
    on the AVX2 kind, one layer's forward and backward: slower at 32 channels, faster from 64 on, more so the wider
    (docs/performance.md). The AVX-512 kinds, whose multiply rate is two or three times higher against the same
    memory, have not been measured, so they keep the direct convolutions."""
    return torch.backends.cpu.get_cpu_capability() == "AVX2" and channels >= 64


def onednn_trains_faster(weight_bytes: int, threads: int) -> bool:
    """Whether the teacher-forced training step's small-batch float32 products (tacotron2/teacher_forcing.py: the
    LSTMs' (8, in + H) x (in + H, 4H) at batch 8) run faster through oneDNN's linear than through MKL's sgemm, for
    a `weight_bytes` matrix multiplied by `threads` threads. MKL's are the faster only on the AVX2 kind, on one
    thread and for a weight that stays in cache (the demo model's); oneDNN's for NVIDIA's 29 and 42 MB matrices
    there, on two threads (MKL does not split an 8-row product between them), and on Zen 5 (AVX-512) by far
    (docs/performance.md). A rule like `winograd_trains_faster`, for the same reason; the kinds not measured keep
    oneDNN."""
    return not (torch.backends.cpu.get_cpu_capability() == "AVX2" and threads == 1 and weight_bytes <= 8 << 20)


def describe() -> str:
    """For logs: "AVX512, bfloat16 native" / "AVX2, no native bfloat16"."""
    return f"{torch.backends.cpu.get_cpu_capability()}, {'' if bf16_native() else 'no '}native bfloat16"
