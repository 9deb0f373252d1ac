"""The layout WaveGlow's coupling networks (WN) compute in, chosen once per forward pass by `choose`.

On a CPU, WN's 1-D convolutions run as 2-D ones over (B, C, 1, L/G) channels-last rows, where oneDNN's
convolutions are faster, forward and backward (the benchmark's "WaveGlow WN ... training" and "inference"
groups); elsewhere as conv1d over (B, C, L/G). Where a backward pass follows, the hand-written backward passes of
waveglow/autograd.py take over: the gated activation's always, the 1x1 convolutions' weight gradient under
autocast only (in float32 oneDNN's own is faster). The model (waveglow/model.py) asks for a layout and computes
in it; it never reads the autocast or grad state itself.
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from common.cpu.cpu_features import winograd_trains_faster
from common.cpu.winograd import tiles_fit, winograd_conv
from common.precision import active_autocast_dtype
from waveglow.autograd import GatedActivation, gated_activation, pointwise_conv_channels_last


@dataclass(frozen=True)
class Layout:
    channels_last: bool = False  # (B, C, 1, L) channels-last rather than (B, C, L)
    backward: bool = False  # a backward pass follows (and no trace is recorded, which a Python autograd function breaks)
    autocast: Optional[torch.dtype] = None  # the dtype autocast computes in, None where it is off
    winograd: bool = False  # float32 dilated convolutions by F(m, r), forward and backward (backward only)

    def enter(self, x: torch.Tensor, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """(B, C, L) into this layout (cast to `dtype` first, where given). Channels are split, never sliced, in
        it: a slice's backward is a zero tensor in the default layout, which would turn every gradient behind it
        out of channels-last."""
        x = x if dtype is None else x.to(dtype)
        return x.unsqueeze(2).contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def leave(self, x: torch.Tensor) -> torch.Tensor:
        """This layout back to (B, C, L)."""
        return x.squeeze(2) if self.channels_last else x

    def conv(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], padding: int = 0,
             dilation: int = 1) -> torch.Tensor:
        """conv1d by a (C_out, C_in, k) kernel of x in this layout; channels-last, the kernel may come prepared as
        (C_out, C_in, 1, k) (FastWaveGlow's, channels-last once rather than at every call)."""
        if not self.channels_last:
            return F.conv1d(x, weight, bias, padding=padding, dilation=dilation)
        if self.backward and self.autocast is not None and weight.dim() == 3 and weight.size(2) == 1:
            return pointwise_conv_channels_last(x, weight.squeeze(2), bias, self.autocast)
        if (self.backward and self.winograd and weight.dim() == 3 and weight.size(2) > 1 and x.dtype == torch.float32
                and tiles_fit(x.size(-1), padding, dilation, weight.size(2))):
            return winograd_conv(x, weight, bias, padding, dilation)
        kernel = weight if weight.dim() == 4 else weight.unsqueeze(2)
        return F.conv2d(x, kernel, bias, padding=(0, padding), dilation=(1, dilation))

    def gate(self, input_a: torch.Tensor, input_b: torch.Tensor, n_channels: int) -> torch.Tensor:
        """The gated activation (waveglow/model.py's fused_add_tanh_sigmoid_multiply)."""
        if self.backward:
            return GatedActivation.apply(input_a, input_b, n_channels)
        return gated_activation(input_a, input_b, n_channels)


PLAIN = Layout()  # conv1d and plain operations: any device, no backward pass
CHANNELS_LAST = Layout(channels_last=True)  # no backward pass: FastWaveGlow's


def choose(x: torch.Tensor, module: nn.Module) -> Layout:
    """The layout for `module` (a WN) run on input x here and now. Its `winograd` attribute, where not None, says
    whether float32 training on a CPU uses Winograd's algorithm; None leaves it to the CPU kind."""
    backward = torch.is_grad_enabled() and not torch.jit.is_tracing() and (
        x.requires_grad or any(p.requires_grad for p in module.parameters()))
    cpu, autocast = x.device.type == "cpu", active_autocast_dtype(x.device.type)
    winograd = cpu and backward and autocast is None and (
        winograd_trains_faster(module.n_channels) if module.winograd is None else module.winograd)
    return Layout(channels_last=cpu, backward=backward, autocast=autocast, winograd=winograd)
