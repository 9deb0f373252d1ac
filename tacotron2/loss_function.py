"""Tacotron 2 loss: MSE of the mels before and after the postnet plus the stop-gate BCE."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def gate_targets_per_step(gate_target: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Per-frame stop targets (B, T_out) -> per-step targets (B, n_steps).

    With r frames per step, step s predicts whether its group holds the last frame,
    i.e. the target of the group's last frame.
    """
    r = gate_target.size(1) // n_steps
    return gate_target[:, r - 1::r]


class Tacotron2Loss(nn.Module):
    """Sum of two mel MSEs and the gate BCE, each a mean over all elements as in the reference.

    Args:
        gate_pos_weight: weight of the positive (stop) frames in the BCE; None as in the reference.
            Values around 5-10 help the gate fire on small data.
    """

    def __init__(self, gate_pos_weight: Optional[float] = None) -> None:
        super().__init__()
        self.gate_pos_weight = gate_pos_weight

    def forward(self, model_output: Sequence[torch.Tensor], targets: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        mel_out, mel_out_postnet, gate_out = model_output[:3]
        mel_target, gate_target = targets[0].detach(), targets[1].detach()
        gate_target = gate_targets_per_step(gate_target, gate_out.size(1))
        mel_loss = F.mse_loss(mel_out, mel_target) + F.mse_loss(mel_out_postnet, mel_target)
        pos_weight = None
        if self.gate_pos_weight is not None:
            pos_weight = gate_out.new_tensor(self.gate_pos_weight)
        gate_loss = F.binary_cross_entropy_with_logits(gate_out, gate_target, pos_weight=pos_weight)
        return mel_loss + gate_loss
