"""Removes WaveGlow's model bias (a constant hiss) by spectral subtraction."""
import torch
from torch import nn

from common.stft import STFT


class Denoiser(nn.Module):
    """Subtracts `strength` times the spectrum of WaveGlow's output for a silent mel.

    Usable on its own on any audio once built from a WaveGlow.
    """

    def __init__(self, waveglow: nn.Module, filter_length: int = 1024, n_overlap: int = 4,
                 win_length: int = 1024, mode: str = "zeros") -> None:
        super().__init__()
        ref = waveglow.upsample.weight
        self.stft = STFT(filter_length=filter_length, hop_length=filter_length // n_overlap,
                         win_length=win_length).to(ref.device)
        n_mel = waveglow.upsample.in_channels
        if mode == "zeros":
            mel_input = torch.zeros((1, n_mel, 88), dtype=ref.dtype, device=ref.device)
        elif mode == "normal":
            mel_input = torch.randn((1, n_mel, 88), dtype=ref.dtype, device=ref.device)
        else:
            raise ValueError(f"denoiser mode must be 'zeros' or 'normal', got {mode!r}")
        with torch.no_grad():
            bias_audio = waveglow.infer(mel_input, sigma=0.0).float()
            bias_spec, _ = self.stft.transform(bias_audio)
        self.register_buffer("bias_spec", bias_spec[:, :, :1])  # (1, n_freq, 1): first frame only

    def forward(self, audio: torch.Tensor, strength: float = 0.1) -> torch.Tensor:
        """(B, L) -> (B, 1, L') denoised audio, L' = (L // hop) * hop (audio shorter than a window is
        zero-padded for the analysis and cut back)."""
        n = audio.size(-1)
        short = n <= self.stft.filter_length // 2
        if short:
            audio = torch.nn.functional.pad(audio, (0, self.stft.filter_length - n))
        spec, angles = self.stft.transform(audio.float())
        spec = torch.clamp(spec - self.bias_spec * strength, 0.0)
        out = self.stft.inverse(spec, angles)
        return out[:, :, :n // self.stft.hop_length * self.stft.hop_length] if short else out
