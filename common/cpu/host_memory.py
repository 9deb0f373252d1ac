"""Keep the memory a CPU run frees, instead of handing it back to the operating system after every step.

glibc's malloc returns a freed block above its mmap threshold to the kernel at once, and trims the top of its
heap once the free space there passes the trim threshold (both adapt, up to 32 and 64 MiB). A training step
frees hundreds of MiB of activations and gradients at its end and allocates them again at the next one, so the
kernel maps and zeroes the same pages again each step: 26-30 k page faults a step (0.1-0.3 s of system time)
for WaveGlow WN 256 at batch 2 and 80 k for Tacotron 2 at batch 8, none once the memory is kept (2-core Zen 5).
The process's memory then stays at its peak, which a training or inference loop reaches every step anyway.
"""
import ctypes
import os

import torch

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20  # blocks up to this size come from the heap and are reused; larger ones are mmapped
MALLOC_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")  # glibc reads these at start-up


def user_chose_malloc_settings() -> bool:
    """The user set glibc's malloc thresholds in the environment: theirs stand."""
    return any(k in os.environ for k in MALLOC_ENV) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")


def keep_freed_memory(device: torch.device) -> bool:
    """For a run on the CPU, never trim glibc's heap and serve blocks up to 256 MiB from it; True where that was done.

    A no-op (False) for other devices, without glibc (macOS, musl) or where the user chose malloc settings in the
    environment. Process-wide: train.py, inference.py and test_infer.py call it, the benchmark for its own rows.
    """
    if device.type != "cpu" or user_chose_malloc_settings():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # -1 as a trim threshold is "never trim" (the value is kept as a size_t)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, -1))
