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
                angles: Optional[torch.Tensor] = None, seed: int = 0, momentum: float = 0.0) -> torch.Tensor:
    """Waveform whose STFT magnitude approximates `magnitudes`.

    Each iteration keeps the phases of the STFT of the last waveform and puts the target magnitudes back. With
    `momentum` > 0 it is the fast Griffin-Lim of Perraudin, Balazs and Soendergaard (2013): the phases are taken
    from the last rebuilt spectrum pushed further along its last change, c + momentum * (c - c_previous), which
    converges in far fewer iterations (0.99 is the paper's value); momentum 0 is the classic algorithm.

    Args:
        magnitudes: (B, n_freq, F) linear STFT magnitudes.
        stft_fn: the STFT that defines frames and windows.
        n_iters: projections after the initial inverse.
        angles: (B, n_freq, F) initial phases; random (numpy `seed`) when None.
        momentum: 0 (classic) to below 1 (fast Griffin-Lim).
    Returns:
        (B, (F - 1) * hop) waveform.
    """
    if not 0 <= momentum < 1:
        raise ValueError(f"Griffin-Lim momentum must be in [0, 1), got {momentum}")
    if angles is None:
        angles = random_phases(tuple(magnitudes.shape), np.random.default_rng(seed))
    angles = angles.to(magnitudes.device, magnitudes.dtype)
    signal = stft_fn.inverse(magnitudes, angles).squeeze(1)
    previous = None
    for _ in range(n_iters):
        rebuilt = stft_fn.spectrum(signal)  # (B, n_freq, F) complex
        target = rebuilt if previous is None else rebuilt + momentum * (rebuilt - previous)
        previous = rebuilt if momentum > 0 else None
        signal = stft_fn.inverse_spectrum(with_magnitudes(target, magnitudes)).squeeze(1)
    return signal


def with_magnitudes(spec: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """`magnitudes` with the phases of the complex `spec` (phase 0 where spec is 0, as angle() gives): the same
    spectrum as polar(magnitudes, spec.angle()), without atan2, sin and cos (a third of Griffin-Lim's time)."""
    modulus = spec.abs()
    zero = modulus == 0
    return spec * (magnitudes / modulus.masked_fill(zero, 1)) + magnitudes * zero
