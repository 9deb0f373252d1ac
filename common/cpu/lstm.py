"""An LSTM cell's step in the fused form the engines use: one (4H, in + H) matrix for the input and recurrent
products, then the state update. torch.nn.LSTMCell computes the same function (tests/test_fast_paths.py and
tests/test_training.py hold the engines to it); tacotron2/fast_inference.py (inference) and
common/cpu/recurrent_grad.py (teacher-forced training) build on these two functions.
"""
from typing import NamedTuple, Tuple

import torch
from torch import nn


def fused_weights(cell: nn.LSTMCell) -> Tuple[torch.Tensor, torch.Tensor]:
    """[W_ih, W_hh] (4H, in + H) and b_ih + b_hh (4H,), in the cell's dtype: gates = [x, h] W^T + b."""
    return torch.cat((cell.weight_ih, cell.weight_hh), 1), cell.bias_ih + cell.bias_hh


class Update(NamedTuple):
    """An LSTM state update and the gate activations its backward needs (`update_backward`)."""
    h: torch.Tensor  # (B, H) new hidden state
    c: torch.Tensor  # (B, H) new cell
    i: torch.Tensor  # (B, H) input gate, sigmoid
    f: torch.Tensor  # (B, H) forget gate, sigmoid
    g: torch.Tensor  # (B, H) candidate, tanh
    o: torch.Tensor  # (B, H) output gate, sigmoid
    tanh_c: torch.Tensor  # (B, H) tanh of the new cell


def update_parts(gates: torch.Tensor, cell: torch.Tensor) -> Update:
    """The state update from pre-activations (B, 4H) in PyTorch's gate order i, f, g, o, with its activations."""
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    cell = f * cell + i * g
    tanh_c = torch.tanh(cell)
    return Update(o * tanh_c, cell, i, f, g, o, tanh_c)


def update(gates: torch.Tensor, cell: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The state update from pre-activations (B, 4H) in PyTorch's gate order i, f, g, o: new (h, c), (B, H) each."""
    parts = update_parts(gates, cell)
    return parts.h, parts.c


def update_backward(d_h: torch.Tensor, d_c: torch.Tensor, parts: Update, cell: torch.Tensor
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Gradients of `update_parts(gates, cell)` for a hand-written backward: given those of the new h and c (B, H),
    those of the pre-activations (B, 4H) and of the previous cell (B, H)."""
    i, f, g, o, tanh_c = parts.i, parts.f, parts.g, parts.o, parts.tanh_c
    d_c = d_c + d_h * o * (1 - tanh_c * tanh_c)
    d_gates = torch.cat((d_c * g * i * (1 - i), d_c * cell * f * (1 - f), d_c * i * (1 - g * g),
                         d_h * tanh_c * o * (1 - o)), dim=1)
    return d_gates, d_c * f
