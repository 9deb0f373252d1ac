"""HiFi-GAN's generator on prepared weights, for a CPU: beside the plain generator, the same forward pass.

Every 1-D convolution (and transposed convolution) of a copy of the generator becomes a 2-D one over (B, C, 1, L)
channels-last activations with its weight cast to one dtype once, where oneDNN computes without reordering the
weights or casting them at each call (the benchmark's "vocoders" group: faster in float32 than conv1d, and in
bfloat16 faster than autocast, which casts every weight on every call). In float32 each convolution that
Winograd's algorithm computes faster on this machine (common/cpu/winograd.py: timed on the layer's own input from a
probe mel) becomes a WinogradConv: the 7- and 11-tap layers of the wider stages, where a direct convolution already
runs at the CPU's multiply rate. The generator's forward is not written again: `prepared_generator` swaps its
layers and `FastHiFiGAN` moves the mel into the layout and the audio out.
"""
import copy
from typing import Dict, List, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from common.cpu.winograd import WinogradChoice, WinogradConv
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


@torch.no_grad()
def adopt_winograd(fast: Generator, probe: torch.Tensor, repeats: int = 3) -> Dict[str, float]:
    """Swaps each float32 PreparedConv of `fast` (prepared_generator's) that F(m, r) computes faster, timed on the
    layer's own input when `fast` vocodes `probe` (B, n_mel, 1, T) rows, for a WinogradConv. Returns the summed
    milliseconds of the convolutions timed: direct, and with the faster of each."""
    layers: List[Tuple[nn.Module, str, PreparedConv]] = [
        (module, name, child) for module in fast.modules() for name, child in module.named_children()
        if isinstance(child, PreparedConv) and not child.transposed and child.weight.dtype == torch.float32
        and child.stride == (1, 1) and child.weight.size(3) > 1]
    inputs: Dict[int, torch.Tensor] = {}
    hooks = [conv.register_forward_pre_hook(lambda conv, args: inputs.setdefault(id(conv), args[0]))
             for _, _, conv in layers]
    try:
        fast(probe)
    finally:
        for hook in hooks:
            hook.remove()
    choice = WinogradChoice(repeats)  # layers of one shape on inputs of one shape: timed once
    total = {"direct": 0.0, "winograd where faster": 0.0}
    for module, name, conv in layers:
        x = inputs[id(conv)]
        key = (tuple(conv.weight.shape), conv.padding, conv.dilation, tuple(x.shape))
        winograd = choice.choose(key, conv, lambda: WinogradConv(conv.weight[:, :, 0], conv.bias, conv.padding[1],
                                                                 conv.dilation[1]), lambda: x)
        total["direct"] += 1e3 * choice.seconds[key]["direct"]
        total["winograd where faster"] += 1e3 * min(choice.seconds[key].values())
        if winograd is not None:
            setattr(module, name, winograd)
    return total


class FastHiFiGAN:
    """The generator on prepared weights in one dtype: (B, n_mel, T) log-mel -> float32 (B, T * hop) audio; in
    float32 with `winograd`, Winograd's convolutions where they are timed faster on a `probe_frames` mel
    (`convolution_ms` then holds the timings, `winograd_layers` how many were swapped)."""

    def __init__(self, generator: Generator, dtype: torch.dtype = torch.float32, winograd: bool = False,
                 probe_frames: int = 32) -> None:
        if winograd and dtype != torch.float32:
            raise ValueError(f"Winograd's convolutions are float32 only, not {dtype}")
        self.dtype = dtype
        self.generator = prepared_generator(generator, dtype)
        self.convolution_ms: Dict[str, float] = {}
        if winograd:
            probe = torch.randn(1, generator.config.n_mel_channels, probe_frames,
                                generator=torch.Generator().manual_seed(0)) - 5
            self.convolution_ms = adopt_winograd(self.generator, self._rows(probe.to(generator.conv_pre.weight)))
        self.winograd_layers = sum(isinstance(m, WinogradConv) for m in self.generator.modules())

    @property
    def name(self) -> str:
        return dtype_name(self.dtype)

    def _rows(self, mel: torch.Tensor) -> torch.Tensor:
        return mel.to(self.dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, n_mel, 1, T)

    @torch.no_grad()
    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        return self.generator(self._rows(mel)).reshape(mel.size(0), -1).float()
