"""`--warm-start-pull`: a fine-tune's weights pulled back towards the checkpoint it started from.

A few minutes of a new voice give a fine-tune a loss that it can lower by memorising them, and Adam moves every
weight by about the learning rate a step whether its gradient says much or not: in ten minutes at 1e-3 the demo's
fine-tune moved its weights by a third to a half of their own size, and its held-out speech lost words that the base
model said well. Pulling each weight a little towards its starting value after every step (L2-SP, Li et al.,
"Explicit inductive bias for transfer learning with convolutional networks", 2018, here decoupled from the gradient
as AdamW decouples weight decay) undoes the aimless part of that drift and leaves the steps that every batch agrees
on: a weight whose gradient keeps its sign settles about 1/RATE from its start, one that only wanders stays within
about sqrt(lr / (2 RATE)).
"""
from typing import Dict, List, Tuple

import torch


class WarmStartAnchor:
    """After each optimizer step, w <- w + rate * lr * (w0 - w) for every trainable weight that the warm start
    gave a value (not the layers it left at their initial values, nor frozen ones)."""

    def __init__(self, model: torch.nn.Module, start: Dict[str, torch.Tensor], rate: float):
        self.rate = rate
        self.pairs: List[Tuple[torch.Tensor, torch.Tensor]] = [
            (p, start[name].detach().to(p.device, p.dtype).clone())
            for name, p in model.named_parameters()
            if p.requires_grad and name in start and tuple(start[name].shape) == tuple(p.shape)]
        self.n_weights = sum(p.numel() for p, _ in self.pairs)

    @torch.no_grad()
    def pull(self, lr: float, skipped: torch.Tensor) -> None:
        """One step's pull at learning rate `lr`; none where `skipped` (0-d, 1: the step had a non-finite loss or
        gradient), read on the device so that a step costs no host sync. (Under float16 loss scaling the scaler's
        own skips are not seen here: such a step still pulls.)"""
        weight = (1.0 - skipped.float().clamp(0.0, 1.0)) * min(self.rate * lr, 1.0)  # 0-d
        by_dtype = {}
        for p, p0 in self.pairs:
            if p.dtype not in by_dtype:
                by_dtype[p.dtype] = weight.to(p.dtype)
            p.lerp_(p0, by_dtype[p.dtype])

    def distance(self) -> float:
        """The root-mean-square distance of the weights from their start (for the log)."""
        total = sum(float((p.detach().float() - p0.float()).pow(2).sum()) for p, p0 in self.pairs)
        return (total / max(self.n_weights, 1)) ** 0.5
