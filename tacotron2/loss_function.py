"""Tacotron 2 loss: MSE of the mels before and after the postnet, the stop-gate BCE, and an
optional guided-attention term that pulls the alignment towards the diagonal on small data."""
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from common.utils import mask_from_lengths
from .alignment_targets import step_positions


def gate_targets_per_step(gate_target: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Per-frame stop targets (B, T_out) -> per-step targets (B, n_steps).

    With r frames per step, step s predicts whether its group holds the last frame,
    i.e. the target of the group's last frame.
    """
    r = gate_target.size(1) // n_steps
    return gate_target[:, r - 1::r]


def guided_attention_loss(alignments: torch.Tensor, input_lengths: torch.Tensor, output_steps: torch.Tensor,
                          sigma: float = 0.2, positions: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean attention mass off the expected path, weighted by 1 - exp(-(n/N - p_t/N)^2 / (2 sigma^2)), where the
    path p_t is the diagonal t N / T or, given `positions`, the symbol each step speaks (alignment_targets.py).

    Args:
        alignments: (B, T_dec, T_in) attention weights.
        input_lengths: (B,) text lengths N; output_steps: (B,) decoder steps T of each item.
        positions: (B, T_dec) position in the symbols of each step (symbol k spans [k, k + 1)), or None.
    Returns:
        a scalar: 0 for attention exactly on the path, larger the further off it lies.
    """
    B, T_dec, T_in = alignments.shape
    n = torch.arange(T_in, device=alignments.device, dtype=torch.float32)[None, None, :]
    N = input_lengths.float().clamp_min(1)[:, None, None]
    if positions is None:
        t = torch.arange(T_dec, device=alignments.device, dtype=torch.float32)[None, :, None]
        path = t / output_steps.float().clamp_min(1)[:, None, None] * N  # (B, T_dec, 1)
    else:
        n = n + 0.5  # a symbol's centre
        path = positions.float()[:, :T_dec, None]
    weight = 1.0 - torch.exp(-(((n - path) / N) ** 2) / (2 * sigma ** 2))  # (B, T_dec, T_in)
    valid = mask_from_lengths(output_steps, T_dec)[:, :, None] & mask_from_lengths(input_lengths, T_in)[:, None, :]
    return (alignments.float() * weight * valid).sum() / valid[:, :, 0].sum().clamp_min(1)


MEL_DISTANCES = {"mse": F.mse_loss, "l1": F.l1_loss}


class Tacotron2Loss(nn.Module):
    """Sum of two mel MSEs and the gate BCE, each a mean over all elements as in the reference.

    Args:
        gate_pos_weight: weight of the positive (stop) frames in the BCE; None as in the reference.
            Values around 5-10 help the gate fire on small data.
        guided_attention_weight: weight of the guided-attention term at iteration 0 (0: off, the reference).
        guided_attention_sigma: width of the band along the diagonal.
        guided_attention_durations_sigma: width of the band along the teacher's segment times, narrower: that path
            is known where the diagonal is a guess, and a batch without them falls back to the diagonal's width.
        guided_attention_half_life: iterations after which the term's weight has halved.
        mel_loss: "mse" (the reference) or "l1", the distance of both mel outputs to the target.
        real_frames: average the mel distances over the real frames only (with the model's mask_padding, whose
            padded outputs are 0 like their targets). The reference's mean counts the padding too, so a batch's
            weight depends on how much of it is padding: length-bucketed batches (little padding) would step
            harder than mixed ones.
    The guided term and real_frames need the lengths: targets = (mel, gate, input_lengths, output_lengths), and a
    fifth target, per-frame positions (B, T_out) from the teacher's segment times, moves the guided term's path
    off the diagonal onto them.
    """

    def __init__(self, gate_pos_weight: Optional[float] = None, guided_attention_weight: float = 0.0,
                 guided_attention_sigma: float = 0.2, guided_attention_half_life: float = 1000.0,
                 mel_loss: str = "mse", real_frames: bool = False,
                 guided_attention_durations_sigma: float = 0.03) -> None:
        super().__init__()
        self.gate_pos_weight = gate_pos_weight
        self.guided_attention_weight = guided_attention_weight
        self.guided_attention_sigma = guided_attention_sigma
        self.guided_attention_durations_sigma = guided_attention_durations_sigma
        self.guided_attention_half_life = guided_attention_half_life
        self.iteration = 0
        if mel_loss not in MEL_DISTANCES:
            raise ValueError(f"mel_loss must be one of {sorted(MEL_DISTANCES)}, not {mel_loss!r}")
        self.mel_distance = MEL_DISTANCES[mel_loss]
        self.real_frames = real_frames

    def set_iteration(self, iteration: int) -> None:
        """The training iteration, for the guided-attention weight's decay."""
        self.iteration = iteration

    def current_guided_weight(self) -> float:
        return self.guided_attention_weight * math.pow(0.5, self.iteration / self.guided_attention_half_life)

    def forward(self, model_output: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> torch.Tensor:
        mel_out, mel_out_postnet, gate_out = (t.float() for t in model_output[:3])
        mel_target, gate_target = targets[0].detach(), targets[1].detach()
        gate_target = gate_targets_per_step(gate_target, gate_out.size(1))
        mel_loss = self.mel_distance(mel_out, mel_target) + self.mel_distance(mel_out_postnet, mel_target)
        if self.real_frames and len(targets) >= 4:  # padded frames are 0 in both: rescale the mean to the real ones
            mel_loss = mel_loss * (mel_target.size(0) * mel_target.size(2)) / targets[3].sum().clamp_min(1)
        pos_weight = None
        if self.gate_pos_weight is not None:
            pos_weight = gate_out.new_tensor(self.gate_pos_weight)
        loss = mel_loss + F.binary_cross_entropy_with_logits(gate_out, gate_target, pos_weight=pos_weight)
        weight = self.current_guided_weight()
        if weight > 0 and len(targets) >= 4:
            alignments, (input_lengths, output_lengths) = model_output[3], targets[2:4]
            r = mel_target.size(2) // gate_out.size(1)
            steps = (output_lengths + r - 1) // r
            positions = step_positions(targets[4] if len(targets) > 4 else None, gate_out.size(1))
            sigma = self.guided_attention_sigma if positions is None else self.guided_attention_durations_sigma
            loss = loss + weight * guided_attention_loss(alignments, input_lengths, steps, sigma, positions)
        return loss
