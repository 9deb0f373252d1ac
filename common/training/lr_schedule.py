"""The learning rate of every optimizer step.

`anneal` (the default) is NVIDIA's recipe: the rate drops by a factor after given epochs. It suits a run of
1,500 epochs; a run bounded in time never reaches its first anneal and ends at its peak rate, where the weights
still wander. `cosine` and `linear` are the budgeted-training recipe instead: a short warm-up (a fresh Adam's
first moments are noisy), then a decay to a small floor that ends exactly where the budget does, so the last
minutes are spent settling rather than wandering. The budget is the run's minutes (`--max-minutes`, counted
across resumes: the checkpoint records the seconds trained) or, without one, its epochs.
"""
import math
from dataclasses import dataclass
from typing import Sequence

SCHEDULES = ("anneal", "cosine", "linear")


def anneal_lr(epoch: int, learning_rate: float, anneal_steps: Sequence[int], anneal_factor: float) -> float:
    """NVIDIA's rate of an epoch: multiplied by the factor after each anneal step passed (a factor of 0.3
    alternates x0.3 and x0.1 steps, as the reference's train.py does: 1, 0.3, 0.1, 0.03, ...)."""
    passed = sum(1 for step in anneal_steps if epoch >= int(step))
    if anneal_factor == 0.3:
        return learning_rate * (0.1 ** (passed // 2)) * (1.0 if passed % 2 == 0 else 0.3)
    return learning_rate * anneal_factor ** passed


@dataclass(frozen=True)
class LRSchedule:
    learning_rate: float  # the peak
    kind: str = "anneal"  # one of SCHEDULES
    anneal_steps: Sequence[int] = ()
    anneal_factor: float = 0.1
    warmup_steps: int = 0  # linear from 1/warmup_steps of the peak (every schedule)
    final_factor: float = 0.01  # cosine and linear end at this fraction of the peak

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.kind!r}; choose from {list(SCHEDULES)}")

    def at(self, epoch: int, iteration: int, progress: float) -> float:
        """The rate of optimizer step `iteration` (0-based, counted over the run) in `epoch`, with `progress`
        (0..1, clamped) of the budget spent."""
        warm = min(1.0, (iteration + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        if self.kind == "anneal":
            return warm * anneal_lr(epoch, self.learning_rate, self.anneal_steps, self.anneal_factor)
        p = min(max(progress, 0.0), 1.0)
        shape = 0.5 * (1.0 + math.cos(math.pi * p)) if self.kind == "cosine" else 1.0 - p
        return warm * self.learning_rate * (self.final_factor + (1.0 - self.final_factor) * shape)


def budget_progress(seconds: float, max_minutes: float, iteration: int, total_iterations: int) -> float:
    """How much of the run's budget is spent: its minutes when it has a time limit, else its steps."""
    if max_minutes > 0:
        return seconds / (60.0 * max_minutes)
    return iteration / max(total_iterations, 1)
