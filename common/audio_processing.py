"""Spectral compression and Griffin-Lim phase reconstruction."""
from typing import Optional

import numpy as np
import torch

from .stft import STFT


def dynamic_range_compression(x: torch.Tensor, C: float = 1.0, clip_val: float = 1e-5) -> torch.Tensor:
    """log(max(x, clip_val) * C): the reference's log-mel compression."""
    return torch.log(torch.clamp(x, min=clip_val) * C)


def random_phases(shape, rng: np.random.Generator) -> torch.Tensor:
    """Uniformly random initial phases, as Griffin-Lim starts from."""
    return torch.from_numpy(np.angle(np.exp(2j * np.pi * rng.random(shape))).astype(np.float32))


def griffin_lim(magnitudes: torch.Tensor, stft_fn: STFT, n_iters: int = 30,
                angles: Optional[torch.Tensor] = None, seed: int = 0) -> torch.Tensor:
    """Waveform whose STFT magnitude approximates `magnitudes`.

    Args:
        magnitudes: (B, n_freq, F) linear STFT magnitudes.
        stft_fn: the STFT that defines frames and windows.
        n_iters: projections after the initial inverse.
        angles: (B, n_freq, F) initial phases; random (numpy `seed`) when None.
    Returns:
        (B, (F - 1) * hop) waveform.
    """
    if angles is None:
        angles = random_phases(tuple(magnitudes.shape), np.random.default_rng(seed))
    angles = angles.to(magnitudes.device, magnitudes.dtype)
    signal = stft_fn.inverse(magnitudes, angles).squeeze(1)
    for _ in range(n_iters):
        _, angles = stft_fn.transform(signal)
        signal = stft_fn.inverse(magnitudes, angles).squeeze(1)
    return signal
