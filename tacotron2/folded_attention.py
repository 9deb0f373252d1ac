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
    location = location_features(weights_cat, loc_W)  # (B, A, T_in)
    hidden = tanh(query[:, :, None] + location + processed_memory_t)  # (B, A, T_in)
    energies = torch.matmul(v, hidden).masked_fill(pad_mask, float("-inf"))  # (A,) x (B, A, T) -> (B, T)
    weights = F.softmax(energies, dim=1)
    return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights, hidden  # (B, E), (B, T_in)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) as 2 sigmoid(2x) - 1, within 2e-7 of torch.tanh: on a CPU torch's float32 tanh costs ~3x this."""
    return torch.sigmoid(2 * x).mul_(2).sub_(1)


def location_features(weights_cat: torch.Tensor, loc_W: torch.Tensor) -> torch.Tensor:
    """F.conv1d(weights_cat (B, 2, T_in), loc_W (A, 2, K), padding=K // 2) -> (B, A, T_in), as one matrix product
    over the K shifted copies of the two channels (small convolutions cost more in oneDNN's kernels)."""
    B, _, T = weights_cat.shape
    A, C, K = loc_W.shape
    shifted = F.pad(weights_cat, (K // 2, K // 2)).unfold(2, K, 1).transpose(2, 3)  # (B, 2, K, T_in)
    return torch.matmul(loc_W.reshape(A, C * K), shifted.reshape(B, C * K, T))  # (A, 2K) x (B, 2K, T) -> (B, A, T)


def location_features_backward(d_location: torch.Tensor, loc_W: torch.Tensor) -> torch.Tensor:
    """The gradient of `location_features` for its weights_cat, given that of its output (B, A, T_in): the
    transposed convolution, as a product to (B, 2, K, T_in) and a sum along the K diagonals."""
    B, _, T = d_location.shape
    A, C, K = loc_W.shape
    per_tap = torch.matmul(loc_W.reshape(A, C * K).t(), d_location).view(B, C, K, T)  # [b, c, k, t]
    # d weights_cat[b, c, s] = sum_k per_tap[b, c, k, s + K // 2 - k] (zero outside 0..T-1)
    padded = F.pad(per_tap, (K - 1, K - 1))  # (B, C, K, T + 2K - 2): padded[..., j] = per_tap[..., j - K + 1]
    s0, s1, s2, s3 = padded.stride()
    diagonals = padded.as_strided((B, C, K, T), (s0, s1, s2 - s3, s3),
                                  padded.storage_offset() + (K // 2 + K - 1) * s3)
    return diagonals.sum(2)
