"""Loss dispatch by model name."""
import argparse

import torch

from tacotron2.loss_function import Tacotron2Loss
from waveglow.loss_function import WaveGlowLoss


def get_loss_function(loss_function: str, args: argparse.Namespace = None, sigma: float = None) -> torch.nn.Module:
    """The training loss of a model, configured from its flags."""
    if loss_function == "Tacotron2":
        return Tacotron2Loss(gate_pos_weight=getattr(args, "gate_pos_weight", None),
                             guided_attention_weight=getattr(args, "guided_attention_weight", 0.0),
                             guided_attention_sigma=getattr(args, "guided_attention_sigma", 0.2),
                             guided_attention_half_life=getattr(args, "guided_attention_half_life", 1000.0))
    if loss_function == "WaveGlow":
        return WaveGlowLoss(sigma=sigma if sigma is not None else getattr(args, "sigma", 1.0))
    raise ValueError(f"unknown loss function {loss_function!r}")
