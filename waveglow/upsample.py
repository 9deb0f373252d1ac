"""WaveGlow's mel upsampler, a ConvTranspose1d(n_mel, n_mel, n * stride, stride), computed as one matrix product.

aten runs a transposed convolution on a CPU as a slow reference loop, forward and backward (the benchmark's
"WaveGlow WN 256 training" and "inference" groups measure it; docs/performance.md has the figures). Output block t (stride samples) is sum_j W_j^T x[t - j] over
the kernel's n stride-long pieces W_j, so stacking n shifted copies of the frames turns it into one product,
which autograd differentiates like any other. The module and its checkpoint keys stay the ConvTranspose1d.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from common.precision import active_autocast_dtype


def product_weight(upsample: nn.ConvTranspose1d, dtype: Optional[torch.dtype] = None) -> Optional[torch.Tensor]:
    """The upsampler's weight (C_in, C_out, n * stride) as the (C_out * stride, n * C_in) matrix `upsample_as_product`
    takes, in dtype (cast before it is rearranged: half the bytes to move); differentiable. None where the kernel is
    not a whole number of strides or the convolution pads, dilates, groups or has no bias (then call the module)."""
    C_in, C_out, K = upsample.weight.shape
    stride = upsample.stride[0]
    if K % stride or upsample.padding[0] or upsample.output_padding[0] or upsample.dilation[0] != 1 \
            or upsample.groups != 1 or upsample.bias is None:
        return None
    w = upsample.weight if dtype is None else upsample.weight.to(dtype)
    # row (c, s), column block j = w[:, c, j * stride + s]
    return w.view(C_in, C_out, K // stride, stride).permute(1, 3, 2, 0).reshape(C_out * stride, K // stride * C_in)


def upsample_as_product(spect: torch.Tensor, W: torch.Tensor, bias: torch.Tensor, stride: int) -> torch.Tensor:
    """ConvTranspose1d of (B, C, F) -> (B, C, (F + n - 1) * stride), W from `product_weight`."""
    B, C, n_frames = spect.shape
    n = W.size(1) // C
    padded = F.pad(spect, (n - 1, n - 1))
    # (B, n * C, F + n - 1): row block j holds the frames shifted right by j
    cols = torch.cat([padded[:, :, n - 1 - j:2 * n - 2 - j + n_frames] for j in range(n)], 1)
    blocks = torch.matmul(W, cols)  # (B, C * stride, F + n - 1)
    blocks = blocks.view(B, C, stride, n_frames + n - 1).transpose(2, 3)  # (B, C, F + n - 1, stride)
    return blocks.reshape(B, C, -1) + bias[:, None].to(blocks.dtype)


def upsample(spect: torch.Tensor, upsampler: nn.ConvTranspose1d) -> torch.Tensor:
    """`upsampler(spect)`, as one product where its shape allows."""
    W = product_weight(upsampler, active_autocast_dtype(spect.device.type))
    if W is None:
        return upsampler(spect)
    return upsample_as_product(spect, W, upsampler.bias, upsampler.stride[0])
