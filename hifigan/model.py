"""HiFi-GAN's generator (Kong, Kim and Bae, "HiFi-GAN: Generative Adversarial Networks for Efficient and High
Fidelity Speech Synthesis", 2020), configuration V1, for inference.

A log-mel (B, n_mel, T) becomes a waveform (B, 1, T * 256): a 7-tap convolution to 512 channels, then four
upsampling stages (transposed convolutions by 8, 8, 2, 2 with kernels 16, 16, 4, 4, the channels halved at each),
each followed by a multi-receptive-field fusion: the mean of three residual blocks of kernel 3, 7 and 11, each
block three dilated convolutions (dilation 1, 3, 5) each followed by an undilated one, all behind leaky ReLUs;
last a 7-tap convolution to one channel and tanh. The attribute names are those of the published weights
(`conv_pre`, `ups.i`, `resblocks.j.convs1.k`, `resblocks.j.convs2.k`, `conv_post`), whose weight norm
(`weight_g`, `weight_v`) `load_published` folds into plain weights.
"""
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.1


@dataclass(frozen=True)
class HiFiGANConfig:
    n_mel_channels: int = 80
    upsample_rates: Tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: Tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: Tuple[int, ...] = (3, 7, 11)
    resblock_dilations: Tuple[int, ...] = (1, 3, 5)

    @property
    def hop_length(self) -> int:
        """Audio samples per mel frame: the product of the upsampling rates."""
        n = 1
        for r in self.upsample_rates:
            n *= r
        return n


def _same_conv(channels: int, kernel_size: int, dilation: int) -> nn.Conv1d:
    """A length-preserving convolution."""
    return nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=(kernel_size - 1) * dilation // 2)


class ResBlock(nn.Module):
    """x + conv(lrelu(dilated_conv(lrelu(x)))) for each dilation in turn (the paper's ResBlock, type 1)."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(_same_conv(channels, kernel_size, d) for d in dilations)
        self.convs2 = nn.ModuleList(_same_conv(channels, kernel_size, 1) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) -> (B, C, L)."""
        for dilated, plain in zip(self.convs1, self.convs2):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class Generator(nn.Module):
    def __init__(self, config: HiFiGANConfig = HiFiGANConfig()) -> None:
        super().__init__()
        self.config = config
        c0 = config.upsample_initial_channel
        self.conv_pre = nn.Conv1d(config.n_mel_channels, c0, 7, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(c0 // 2 ** i, c0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes)))
        self.resblocks = nn.ModuleList(
            ResBlock(c0 // 2 ** (i + 1), k, config.resblock_dilations)
            for i in range(len(self.ups)) for k in config.resblock_kernel_sizes)
        self.conv_post = nn.Conv1d(c0 // 2 ** len(self.ups), 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mel, T) log-mel -> (B, 1, T * hop_length) waveform in [-1, 1]."""
        n = len(self.config.resblock_kernel_sizes)
        x = self.conv_pre(mel)  # (B, 512, T)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))  # (B, C / 2, L * rate)
            x = sum(block(x) for block in self.resblocks[i * n:(i + 1) * n]) / n  # the MRF: mean of the blocks
        # the published generator's last activation has leaky_relu's default slope, 0.01, not LRELU_SLOPE
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def fold_weight_norm(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """`name.weight_g` and `name.weight_v` -> `name.weight` = g * v / |v| (norm over all but dim 0), computed by
    the kernel torch's own weight norm uses, so that the weights equal what the published code runs."""
    out = {}
    for key, value in state_dict.items():
        if key.endswith(".weight_v"):
            base = key[:-len("_v")]
            out[base] = torch._weight_norm(value, state_dict[base + "_g"], 0)
        elif not key.endswith(".weight_g"):
            out[key] = value
    return out
