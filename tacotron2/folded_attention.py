"""Location-sensitive attention with the location layer folded into one convolution, for the engines beside the model.

The location layer (tacotron2/model.py: LocationLayer) is a convolution (F filters) followed by a projection to the
attention's width A; both are linear, so their composition is one (A, 2, K) convolution. The inference engine
(tacotron2/fast_inference.py) and the training engine (tacotron2/teacher_forcing.py) attend through it, with the memory
projection laid out as (B, A, T_in), so that every step is a handful of kernels. Same function as `Attention.forward`
within float rounding.
"""
from typing import Tuple

import torch
import torch.nn.functional as F


def folded_location_weight(dense: torch.Tensor, conv: torch.Tensor) -> torch.Tensor:
    """The location layer's projection (A, F) after its convolution (F, 2, K) as one convolution (A, 2, K)."""
    return torch.einsum("af,fck->ack", dense, conv)


def folded_attention(query: torch.Tensor, memory: torch.Tensor, processed_memory_t: torch.Tensor,
                     weights_cat: torch.Tensor, pad_mask: torch.Tensor, loc_W: torch.Tensor, v: torch.Tensor
                     ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Attention.forward after its query projection, with the location layer folded (`folded_location_weight`)
    and the memory projection as (B, A, T_in).

    Args:
        query: (B, A) the projected query; memory (B, T_in, E); weights_cat (B, 2, T_in); pad_mask (B, T_in);
        loc_W: (A, 2, K); v: (A,).
    Returns:
        context (B, E), weights (B, T_in), and the tanh layer (B, A, T_in) that a hand-written backward reads.
    """
    location = F.conv1d(weights_cat, loc_W, padding=loc_W.size(2) // 2)  # (B, A, T_in)
    hidden = torch.tanh(query[:, :, None] + location + processed_memory_t)  # (B, A, T_in)
    energies = torch.matmul(v, hidden).masked_fill(pad_mask, float("-inf"))  # (A,) x (B, A, T) -> (B, T)
    weights = F.softmax(energies, dim=1)
    return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights, hidden  # (B, E), (B, T_in)
