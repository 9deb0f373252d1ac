"""Small tensor helpers shared by models, losses and data code."""
from typing import NamedTuple

import torch


class Batch(NamedTuple):
    """What train.py feeds a model: inputs, loss targets and the item count for throughput."""
    x: tuple
    y: tuple
    n_items: torch.Tensor  # mel frames (Tacotron 2) or samples (WaveGlow), real ones only


def mask_from_lengths(lengths: torch.Tensor, max_len: int = None) -> torch.Tensor:
    """Boolean mask of valid positions, (B,) -> (B, max_len), True where t < lengths[b].

    max_len defaults to max(lengths), as in the reference.
    """
    if max_len is None:
        max_len = int(lengths.max())
    ids = torch.arange(max_len, device=lengths.device)
    return ids[None, :] < lengths[:, None]
