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

    def transform(self, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Magnitude and phase of y.

        Args:
            y: (B, L) waveform.
        Returns:
            magnitude, phase: (B, filter_length // 2 + 1, L // hop_length + 1).
        """
        spec = torch.stft(y, self.filter_length, self.hop_length, window=self.window.to(y.dtype),
                          center=True, pad_mode="reflect", return_complex=True)
        return spec.abs(), spec.angle()

    def inverse(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """Waveform from magnitude and phase, (B, n_freq, F) -> (B, 1, (F - 1) * hop_length)."""
        n_frames = magnitude.size(-1)
        spec = torch.polar(magnitude, phase)
        window = self.window.to(magnitude.dtype)
        # (B, n_freq, F) -> (B, filter_length, F): windowed time-domain frames
        frames = torch.fft.irfft(spec, n=self.filter_length, dim=1) * window[None, :, None]
        full_len = (n_frames - 1) * self.hop_length + self.filter_length
        # overlap-add: (B, filter_length, F) -> (B, 1, 1, full_len)
        signal = F.fold(frames, output_size=(1, full_len), kernel_size=(1, self.filter_length),
                        stride=(1, self.hop_length))
        envelope = F.fold((window ** 2)[None, :, None].expand(1, -1, n_frames), output_size=(1, full_len),
                          kernel_size=(1, self.filter_length), stride=(1, self.hop_length))
        signal, envelope = signal.reshape(signal.size(0), 1, full_len), envelope.reshape(1, 1, full_len)
        tiny = torch.finfo(magnitude.dtype).tiny
        signal = torch.where(envelope > tiny, signal / envelope.clamp_min(tiny), signal)
        half = self.filter_length // 2
        return signal[:, :, half:full_len - half]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Analysis followed by synthesis, (B, L) -> (B, 1, L')."""
        return self.inverse(*self.transform(y))
