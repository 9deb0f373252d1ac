"""The autocast of here and now: which dtype it computes in, and the context that turns it on for a dtype.

Models, CPU kernels and training all ask these questions (a layout chosen per forward, a hand-written backward
that must round as autocast would, a training step), so they live outside every one of them: what a run chooses
(`--amp-run`, the loss scaler) is training's (common/training/amp.py).
"""
import contextlib
from typing import ContextManager, Optional

import torch


def active_autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The dtype autocast computes in here and now on `device_type`, or None where it is off (or the device type
    has no autocast at all)."""
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


def autocast(device: torch.device, dtype: Optional[torch.dtype]) -> ContextManager:
    """torch.autocast for `dtype` on `device`, or nothing at all for float32 (dtype None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
