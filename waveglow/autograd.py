"""Hand-written backward passes for WaveGlow's training step on a CPU; waveglow/cpu_layout.py uses them where a
gradient is needed, and the same functions in plain operations everywhere else.

Each gives autograd's gradients (tested) with less work: GatedActivation lands the gradient of a + b in one tensor
that both inputs share; PointwiseConvRows takes a 1x1 convolution's weight gradient from one matrix product over
channels-last rows, where oneDNN's backward-weights kernel is slower for these shapes, under autocast only (in
float32 oneDNN's own is the faster). The benchmark's "WaveGlow WN 256 training" group measures them; the A/B rounds
are in docs/performance.md.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F


def gated_activation(input_a: torch.Tensor, input_b: torch.Tensor, n_channels: int) -> torch.Tensor:
    """WaveNet's gate tanh(a + b)[:n] * sigmoid(a + b)[n:], (B, 2n, ...) -> (B, n, ...), in plain operations."""
    t_act, s_act = (input_a + input_b).split(n_channels, dim=1)
    return torch.tanh(t_act) * torch.sigmoid(s_act)


def sigmoid_gate(input_a: torch.Tensor, input_b: torch.Tensor, n_channels: int) -> torch.Tensor:
    """`gated_activation` for inputs whose tanh half comes doubled (weights and biases prepared so): with
    s = sigmoid(a + b), tanh(x) = 2 sigmoid(2x) - 1 gives (2 s[:n] - 1) * s[n:].

    Why: aten's CPU tanh costs several sigmoids, a tenth of a float32 coupling network's time (docs/performance.md).
    Its absolute error is float32 rounding; it is not used in bfloat16, where 2 sigmoid - 1 near 0 would lose the
    relative precision that tanh keeps."""
    s = torch.sigmoid(input_a.add_(input_b))  # input_a is a fresh convolution output: reused, not copied
    t_act, s_act = s.split(n_channels, dim=1)
    return t_act.mul_(2).sub_(1) * s_act  # a dense (B, n, ...) in the inputs' layout, as gated_activation's


class GatedActivation(torch.autograd.Function):
    """tanh(a + b)[:n] * sigmoid(a + b)[n:], (B, 2n, ...) -> (B, n, ...); backward d(a + b) = [g s (1 - t^2),
    g t s (1 - s)], written into one (B, 2n, ...) tensor in the inputs' layout where autograd would split the sum,
    build the two halves' gradients and concatenate them."""

    @staticmethod
    def forward(ctx, input_a: torch.Tensor, input_b: torch.Tensor, n_channels: int) -> torch.Tensor:
        t_act, s_act = (input_a + input_b).split(n_channels, dim=1)
        t, s = torch.tanh(t_act), torch.sigmoid(s_act)
        ctx.save_for_backward(t, s)
        ctx.channels_last = input_a.dim() == 4 and input_a.is_contiguous(memory_format=torch.channels_last)
        return t * s

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, None]:
        t, s = ctx.saved_tensors
        shape = (t.size(0), 2 * t.size(1)) + tuple(t.shape[2:])
        layout = torch.channels_last if ctx.channels_last else torch.contiguous_format
        grad_sum = torch.empty(shape, dtype=grad.dtype, device=grad.device, memory_format=layout)
        grad_t, grad_s = grad_sum.split(t.size(1), dim=1)
        torch.ops.aten.tanh_backward.grad_input(grad * s, t, grad_input=grad_t)
        torch.ops.aten.sigmoid_backward.grad_input(grad * t, s, grad_input=grad_s)
        return grad_sum, grad_sum, None


class PointwiseConvRows(torch.autograd.Function):
    """1x1 convolution of (B, C_in, 1, L) channels-last rows by a (C_out, C_in) weight, all in one dtype. Forward
    and input gradient are oneDNN's convolution; the weight gradient is G^T X over the (B L, C) rows, which the
    channels-last tensors already are in memory."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight[:, :, None, None], bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        x, weight = ctx.saved_tensors
        c_out, c_in = weight.shape
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight[:, :, None, None], [c_out], [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                [True, False, False])[0]
        grad_rows = grad.permute(0, 2, 3, 1).reshape(-1, c_out)  # (B L, C_out), a view of channels-last memory
        if ctx.needs_input_grad[1]:
            grad_weight = grad_rows.t() @ x.permute(0, 2, 3, 1).reshape(-1, c_in)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_rows.sum(0)
        return grad_x, grad_weight, grad_bias


def pointwise_conv_channels_last(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                        dtype: torch.dtype) -> torch.Tensor:
    """F.conv2d(x, weight[:, :, None, None], bias) computed in `dtype` (autocast's) through PointwiseConvRows, the
    casts made outside it, so that autograd casts the gradients back to the weights' float32."""
    with torch.autocast(x.device.type, enabled=False):
        return PointwiseConvRows.apply(x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype))
