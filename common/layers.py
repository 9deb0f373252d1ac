"""Layers whose attribute names are frozen by the published checkpoints, and the mel front end."""
from typing import Optional

import torch
from librosa.filters import mel as librosa_mel_fn

from .audio_processing import dynamic_range_compression
from .cpu.winograd import conv1d_by_winograd, trains_by_winograd
from .stft import STFT


class LinearNorm(torch.nn.Module):
    """nn.Linear with Xavier-uniform init for a given nonlinearity (key: `linear_layer`)."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, w_init_gain: str = "linear") -> None:
        super().__init__()
        self.linear_layer = torch.nn.Linear(in_dim, out_dim, bias=bias)
        torch.nn.init.xavier_uniform_(self.linear_layer.weight, gain=torch.nn.init.calculate_gain(w_init_gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


class ConvNorm(torch.nn.Module):
    """nn.Conv1d with 'same' padding for odd kernels and Xavier-uniform init (key: `conv`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = None, dilation: int = 1, bias: bool = True, w_init_gain: str = "linear") -> None:
        super().__init__()
        if padding is None:
            if kernel_size % 2 != 1:
                raise ValueError(f"'same' padding needs an odd kernel, got {kernel_size}")
            padding = dilation * (kernel_size - 1) // 2
        self.conv = torch.nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride,
                                    padding=padding, dilation=dilation, bias=bias)
        torch.nn.init.xavier_uniform_(self.conv.weight, gain=torch.nn.init.calculate_gain(w_init_gain))
        # float32 training on a CPU by Winograd's algorithm (fewer multiplies: common/cpu/winograd.py); None: by
        # CPU kind, a rule rather than a timing so that every process of a run computes alike
        self.winograd: Optional[bool] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, L) -> (B, C_out, L')."""
        if trains_by_winograd(x, self.conv, self.winograd):
            return conv1d_by_winograd(x, self.conv)
        return self.conv(x)


class TacotronSTFT(torch.nn.Module):
    """Log-mel spectrograms as the published models were trained on."""

    def __init__(self, filter_length: int = 1024, hop_length: int = 256, win_length: int = 1024,
                 n_mel_channels: int = 80, sampling_rate: int = 22050, mel_fmin: float = 0.0,
                 mel_fmax: float = 8000.0) -> None:
        super().__init__()
        self.n_mel_channels = n_mel_channels
        self.sampling_rate = sampling_rate
        self.stft_fn = STFT(filter_length, hop_length, win_length)
        mel_basis = librosa_mel_fn(sr=sampling_rate, n_fft=filter_length, n_mels=n_mel_channels,
                                   fmin=mel_fmin, fmax=mel_fmax)
        self.register_buffer("mel_basis", torch.from_numpy(mel_basis).float())  # (n_mel, n_freq)

    def spectral_normalize(self, magnitudes: torch.Tensor) -> torch.Tensor:
        return dynamic_range_compression(magnitudes)

    def mel_spectrogram(self, y: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrogram of y, (B, L) in [-1, 1] -> (B, n_mel, L // hop + 1)."""
        lo, hi = float(y.min()), float(y.max())
        if lo < -1 or hi > 1:
            raise ValueError(f"waveform must lie in [-1, 1], got [{lo:.3f}, {hi:.3f}]")
        magnitudes, _ = self.stft_fn.transform(y)
        mel = torch.matmul(self.mel_basis, magnitudes)  # (n_mel, n_freq) x (B, n_freq, F) -> (B, n_mel, F)
        return self.spectral_normalize(mel)
