"""WaveGlow loss: negative log-likelihood of the audio under the flow, per sample."""
from typing import List, Tuple

import torch
from torch import nn


class WaveGlowLoss(nn.Module):
    """(sum z^2 / (2 sigma^2) - sum log s - sum log|det W|) / number of latent elements."""

    def __init__(self, sigma: float = 1.0) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, model_output: Tuple[torch.Tensor, List[torch.Tensor], List[torch.Tensor]],
                clean_audio: torch.Tensor = None) -> torch.Tensor:
        z, log_s_list, log_det_W_list = model_output
        z = z.float()
        log_s_total = sum(torch.sum(log_s.float()) for log_s in log_s_list)
        log_det_W_total = sum(log_det_W_list)  # a new tensor: the model's outputs are not modified
        loss = torch.sum(z * z) / (2 * self.sigma * self.sigma) - log_s_total - log_det_W_total
        return loss / z.numel()
