"""Mixed precision in one place: which autocast type a run uses, its loss scaler, and the autocast context.

fp16 always comes with dynamic loss scaling (a GradScaler that backs off on inf/NaN gradients);
bf16 has float32's range and needs none. `--amp-dtype auto` means fp16 on CUDA, bf16 on a CPU that computes
it natively and float32 on one that does not (an AVX2 CPU emulates bf16 many times slower than float32);
`--amp-dtype bf16` asks for bf16 anyway.
"""
from typing import Optional, Tuple

import torch

from common.cpu.cpu_features import bf16_native, describe as describe_cpu

AUTOCAST_DEVICE_TYPES = ("cuda", "cpu")


def amp_settings(amp: bool, device: torch.device,
                 amp_dtype: str = "auto") -> Tuple[Optional[torch.dtype], torch.amp.GradScaler]:
    """(autocast dtype or None for float32, GradScaler: enabled only for fp16)."""
    scaler_device = device.type if device.type in AUTOCAST_DEVICE_TYPES else "cpu"
    if not amp:
        return None, torch.amp.GradScaler(scaler_device, enabled=False)
    if amp_dtype == "fp16" or (amp_dtype == "auto" and device.type == "cuda"):
        return torch.float16, torch.amp.GradScaler(scaler_device)
    if amp_dtype == "auto" and device.type == "cpu" and not bf16_native():
        return None, torch.amp.GradScaler(scaler_device, enabled=False)
    return torch.bfloat16, torch.amp.GradScaler(scaler_device, enabled=False)


def describe_amp(amp: bool, device: torch.device, dtype: Optional[torch.dtype]) -> str:
    """What --amp-run chose, in one line for the log."""
    if not amp:
        return "precision: float32"
    chosen = "float32" if dtype is None else f"{str(dtype).replace('torch.', '')} autocast"
    if device.type != "cpu":
        return f"--amp-run: {chosen}"
    note = "; --amp-dtype bf16 forces bf16, emulated and slow" if dtype is None else ""
    return f"--amp-run: {chosen} on this CPU ({describe_cpu()}{note})"
