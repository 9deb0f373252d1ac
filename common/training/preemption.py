"""Stopping a training run cleanly: SIGTERM / SIGINT (Ctrl-C) and time budgets become a flag that every rank
reads at the same step, after which the run saves a checkpoint and exits.

Under `python -m multiproc` the workers run in their own process group, so a Ctrl-C in the terminal
reaches the launcher only, which forwards it once to each worker; a second Ctrl-C (forwarded too)
stops a worker at once.
"""
import signal
from typing import Optional, Tuple

import torch

from common.training.dist_utils import DistInfo


class Preemption:
    """Turns SIGTERM/SIGINT into a flag checked after each step (the step finishes, then we save)."""

    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.signal = signum

    def requested(self, info: DistInfo, time_up: bool = False, clock: float = 0.0) -> Tuple[bool, float]:
        """(True on every rank when any rank got a signal or ran out of time: all stop at the same step; the
        slowest rank's `clock`, so that what is derived from the time, the learning rate, is the same on every
        rank). One collective for both."""
        flag = torch.tensor([1.0 if self.signal is not None or time_up else 0.0, clock], dtype=torch.float64,
                            device=info.device)
        stop, slowest = info.all_reduce_max(flag).tolist()
        return stop > 0, slowest

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
