"""An LSTM cell's step in the fused form the engines use: one (4H, in + H) matrix for the input and recurrent
products, then the state update. torch.nn.LSTMCell computes the same function (tests/test_fast_paths.py and
tests/test_training.py hold the engines to it); tacotron2/fast_inference.py (inference) and
common/cpu/recurrent_grad.py (teacher-forced training) build on these two functions.
"""
from typing import Tuple

import torch
from torch import nn


def fused_weights(cell: nn.LSTMCell) -> Tuple[torch.Tensor, torch.Tensor]:
    """[W_ih, W_hh] (4H, in + H) and b_ih + b_hh (4H,), in the cell's dtype: gates = [x, h] W^T + b."""
    return torch.cat((cell.weight_ih, cell.weight_hh), 1), cell.bias_ih + cell.bias_hh


def update(gates: torch.Tensor, cell: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The state update from pre-activations (B, 4H) in PyTorch's gate order i, f, g, o: new (h, c), (B, H) each."""
    i, f, g, o = gates.chunk(4, dim=1)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(cell), cell
