"""`--lr-scale PREFIX=FACTOR`: the weights under a state-dict prefix step at FACTOR x the learning rate.

Adam moves every weight by about the learning rate a step, whatever the size of its gradient. Where a layer's
inputs all share one sign, that moves a unit's pre-activation on every input the same way at once: Tacotron 2's
decoder prenet multiplies log-mel frames (mean about -5.9 on each of its 80 x r inputs), so at 2e-3 one step can shift
a first-layer unit by about half of its initial spread, and a few steps the same way leave a ReLU unit negative on
every frame; it never fires again, gets no gradient and never learns again. A run whose prenet has no units left
hears nothing of its previous frame and does not learn to speak (train.py warns when it sees one dying). A smaller
step for those weights alone (`--lr-scale decoder.prenet=0.1`) keeps the rate everywhere else.

The step is scaled after the optimizer has taken it (w <- w_before + FACTOR (w - w_before)): Adam's moments do not
depend on the rate, so this is the step of a parameter group at FACTOR x the rate, while the optimizer keeps one
group and its checkpoints their layout, with or without the flag.
"""
import argparse
from typing import List, Sequence, Tuple

import torch


def parse_scale(text: str) -> Tuple[str, float]:
    """'decoder.prenet=0.1' -> ('decoder.prenet', 0.1), for argparse."""
    prefix, sep, factor = text.rpartition("=")
    try:
        value = float(factor)
    except ValueError:
        value = -1.0
    if not sep or not prefix or not value >= 0.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not PREFIX=FACTOR with a factor >= 0 "
                                         f"(e.g. decoder.prenet=0.1)")
    return prefix, value


def parameters_under(model: torch.nn.Module, prefix: str, flag: str) -> List[torch.Tensor]:
    """The parameters whose state-dict names start with `prefix`; a prefix that names none is refused (SystemExit,
    naming `flag` and the model's top-level modules) before anything is written."""
    matched = [p for name, p in model.named_parameters() if name.startswith(prefix)]
    if not matched:
        modules = ", ".join(name for name, _ in model.named_children())
        raise SystemExit(f"error: {flag}: no parameter of the model starts with it (its modules: {modules})")
    return matched


class ScaledSteps:
    """Remembers the scaled weights before a step (`before`) and shrinks the step after it (`after`)."""

    def __init__(self, model: torch.nn.Module, scales: Sequence[Tuple[str, float]]) -> None:
        self.pairs: List[Tuple[torch.Tensor, float]] = []
        for prefix, factor in scales:  # frozen weights (--freeze) take no steps to scale
            self.pairs += [(p, factor) for p in parameters_under(model, prefix, f"--lr-scale {prefix}={factor:g}")
                           if p.requires_grad]
        self.n_weights = sum(p.numel() for p, _ in self.pairs)
        self._before = [torch.empty_like(p) for p, _ in self.pairs]  # filled by every step's `before`

    @torch.no_grad()
    def before(self) -> None:
        for (p, _), old in zip(self.pairs, self._before):
            old.copy_(p)

    @torch.no_grad()
    def after(self) -> None:
        for (p, factor), old in zip(self.pairs, self._before):
            p.lerp_(old, 1.0 - factor)  # old + factor (p - old)
