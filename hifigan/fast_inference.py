"""HiFi-GAN's generator on prepared weights, for a CPU: beside the plain generator, the same forward pass.

Every 1-D convolution (and transposed convolution) of a copy of the generator becomes a 2-D one over (B, C, 1, L)
channels-last activations with its weight cast to one dtype once, where oneDNN computes without reordering the
weights or casting them at each call (the benchmark's "vocoders" group: faster in float32 than conv1d, and in
bfloat16 faster than autocast, which casts every weight on every call). The generator's forward is not written
again: `prepared_generator` swaps its layers and `FastHiFiGAN` moves the mel into the layout and the audio out.
"""
import copy
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from common.timing import dtype_name
from hifigan.model import Generator


class PreparedConv(nn.Module):
    """A Conv1d or ConvTranspose1d computing on (B, C, 1, L) rows with its (out, in, 1, k) weight in one dtype."""

    def __init__(self, conv: Union[nn.Conv1d, nn.ConvTranspose1d], dtype: torch.dtype) -> None:
        super().__init__()
        self.transposed = isinstance(conv, nn.ConvTranspose1d)
        if conv.groups != 1 or (self.transposed and conv.output_padding[0] != 0):
            raise ValueError(f"{conv}: only ungrouped convolutions without output padding are prepared")
        weight = conv.weight.detach().unsqueeze(2).to(dtype).contiguous(memory_format=torch.channels_last)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().to(dtype))
        self.stride, self.padding, self.dilation = (1, conv.stride[0]), (0, conv.padding[0]), (1, conv.dilation[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, 1, L) -> (B, C_out, 1, L')."""
        if self.transposed:
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, dilation=self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


def prepared_generator(generator: Generator, dtype: torch.dtype) -> Generator:
    """A copy of `generator` whose convolutions are PreparedConv in `dtype`; its forward then maps (B, n_mel, 1, T)
    rows to (B, 1, 1, T * hop)."""
    fast = copy.deepcopy(generator).eval()
    for module in list(fast.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, (nn.Conv1d, nn.ConvTranspose1d)):
                setattr(module, name, PreparedConv(child, dtype))
    return fast.requires_grad_(False)


class FastHiFiGAN:
    """The generator on prepared weights in one dtype: (B, n_mel, T) log-mel -> float32 (B, T * hop) audio."""

    def __init__(self, generator: Generator, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype
        self.generator = prepared_generator(generator, dtype)

    @property
    def name(self) -> str:
        return dtype_name(self.dtype)

    @torch.no_grad()
    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        rows = mel.to(self.dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, n_mel, 1, T)
        return self.generator(rows).reshape(mel.size(0), -1).float()
