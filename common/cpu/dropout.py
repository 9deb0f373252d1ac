"""Dropout whose mask a CPU draws fast (a shared kernel: the models' layers call it, train or not)."""
from typing import Tuple

import torch
import torch.nn.functional as F


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout, with the mask drawn as one uniform tensor on a CPU.

    There F.dropout draws its mask with bernoulli_, one number at a time, about twice as slow as one uniform
    draw (the benchmark's "Tacotron 2 training" group; docs/performance.md). Same distribution
    (each element kept with probability 1 - p, kept ones scaled by 1 / (1 - p)), another random stream.
    """
    if not training or x.device.type != "cpu" or not 0 < p < 1:
        return F.dropout(x, p, training)
    return (x * (1.0 / (1.0 - p))).mul_(keep_mask(x.shape, p))  # the scale as a scalar: exact in opmath, as F.dropout's


def keep_mask(shape: Tuple[int, ...], p: float) -> torch.Tensor:
    """The elements `dropout` keeps (bool, on the CPU), drawn as it draws them: a hand-written backward that
    replays the model's dropout (tacotron2/teacher_forcing.py) draws through here to consume the same numbers."""
    return torch.rand(shape, dtype=torch.float32) >= p
