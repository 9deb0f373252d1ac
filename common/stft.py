"""Short-time Fourier transform with the reference's conventions, on torch.stft.

Conventions (those of the reference's conv1d-based STFT, which published mels were
computed with): reflect padding of filter_length/2 on each side, a periodic Hann window
of win_length centred in filter_length, magnitude (not power) spectra, and an inverse
that overlap-adds windowed frames, divides by the summed squared window and trims the
padding, so a signal of F frames comes back with (F - 1) * hop_length samples.
"""
from typing import Tuple

import torch
import torch.nn.functional as F


def _padded_window(win_length: int, filter_length: int) -> torch.Tensor:
    """Periodic Hann window of win_length, zero-padded to filter_length, centred."""
    window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    left = (filter_length - win_length) // 2
    return F.pad(window, (left, filter_length - win_length - left)).float()


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Frames placed `hop` samples apart and summed, (B, n, F) -> (B, (F - 1) * hop + n).

    Each frame is cut into ceil(n / hop) hop-long pieces, and piece j of every frame is added at once (one slice
    add per piece rather than one per frame: F.fold, which does the same, took 3 times the inverse FFT's time).
    The sums are made in F.fold's order, piece by piece.
    """
    B, n, n_frames = frames.shape
    k = -(-n // hop)
    pieces = F.pad(frames, (0, 0, 0, k * hop - n)).reshape(B, k, hop, n_frames).transpose(2, 3)  # (B, k, F, hop)
    out = frames.new_zeros(B, n_frames + k - 1, hop)
    for j in range(k):
        out[:, j:j + n_frames] += pieces[:, j]
    return out.reshape(B, -1)[:, :(n_frames - 1) * hop + n]


class STFT(torch.nn.Module):
    """STFT magnitude/phase analysis and its inverse.

    Defaults are the reference's (800/200/800), which differ from the mel defaults.
    """

    def __init__(self, filter_length: int = 800, hop_length: int = 200, win_length: int = 800,
                 window: str = "hann") -> None:
        super().__init__()
        if window != "hann":
            raise ValueError(f"only the 'hann' window is supported, got {window!r}")
        if win_length > filter_length:
            raise ValueError(f"win_length {win_length} > filter_length {filter_length}")
        self.filter_length = filter_length
        self.hop_length = hop_length
        self.win_length = win_length
        self.register_buffer("window", _padded_window(win_length, filter_length), persistent=False)

    def spectrum(self, y: torch.Tensor) -> torch.Tensor:
        """Complex STFT of y, (B, L) -> (B, filter_length // 2 + 1, L // hop_length + 1)."""
        return torch.stft(y, self.filter_length, self.hop_length, window=self.window.to(y.dtype),
                          center=True, pad_mode="reflect", return_complex=True)

    def transform(self, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Magnitude and phase of y.

        Args:
            y: (B, L) waveform.
        Returns:
            magnitude, phase: (B, filter_length // 2 + 1, L // hop_length + 1).
        """
        spec = self.spectrum(y)
        return spec.abs(), spec.angle()

    def inverse_spectrum(self, spec: torch.Tensor) -> torch.Tensor:
        """Waveform from a complex spectrum, (B, n_freq, F) -> (B, 1, (F - 1) * hop_length)."""
        n_frames = spec.size(-1)
        window = self.window.to(spec.real.dtype)
        # (B, n_freq, F) -> (B, filter_length, F): windowed time-domain frames
        frames = torch.fft.irfft(spec, n=self.filter_length, dim=1) * window[:, None]
        signal = overlap_add(frames, self.hop_length)  # (B, full_len)
        envelope = overlap_add((window ** 2)[None, :, None].expand(1, -1, n_frames), self.hop_length)
        tiny = torch.finfo(signal.dtype).tiny
        signal = torch.where(envelope > tiny, signal / envelope.clamp_min(tiny), signal)
        half = self.filter_length // 2
        return signal[:, None, half:signal.size(1) - half]

    def inverse(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """Waveform from magnitude and phase, (B, n_freq, F) -> (B, 1, (F - 1) * hop_length)."""
        return self.inverse_spectrum(torch.polar(magnitude, phase))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Analysis followed by synthesis, (B, L) -> (B, 1, L')."""
        return self.inverse(*self.transform(y))
