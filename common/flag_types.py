"""Numeric flag types with their valid range: `type=COUNT` instead of `type=int`.

A value out of range is refused when the flags are read, naming the flag, instead of failing later where it is
used (`test_infer.py -bs 0` ended in a traceback inside pad_batch; a seed beyond 64 bits in a config file in
torch's `Overflow when unpacking long long`). `--config-file` values pass through the same types
(common.config_file), so the file, its line and the key are named too.
"""
import argparse
import math
from typing import Optional


class Number:
    """An argparse type: a number of `kind` (int or float) in [low, high] (an open end where asked)."""

    def __init__(self, kind: type, low: Optional[float] = None, high: Optional[float] = None,
                 low_open: bool = False, high_open: bool = False) -> None:
        self.kind, self.low, self.high, self.low_open, self.high_open = kind, low, high, low_open, high_open
        self.__name__ = kind.__name__  # argparse's "invalid int value: 'x'"

    def _show(self, value: float) -> str:
        return str(int(value)) if self.kind is int else f"{value:g}"

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {self._show(self.low)}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {self._show(self.high)}")
        return f"{what} {' and '.join(bounds)}" if bounds else what

    def __call__(self, value: object) -> object:
        # a string from the command line, or a JSON number from a config file
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {value!r}")
        if self.kind is int:
            if isinstance(value, float):
                if not value.is_integer():
                    raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {value}")
                value = int(value)
            try:
                number = int(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {value!r}") from None
        else:
            try:
                number = float(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {value!r}") from None
            if not math.isfinite(number):
                raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {value!r}")
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"{self._show(number)} is out of range: expected {self.describe()}")
        return number

    def __repr__(self) -> str:
        return f"Number({self.describe()})"


COUNT = Number(int, 1)  # sizes, steps, epochs, iterations
COUNT0 = Number(int, 0)  # the same where 0 means none or off
SEED = Number(int, 0, 2 ** 31 - 1)  # numpy takes 32 bits, and train.py adds the rank
PORT = Number(int, 1, 65535)
POSITIVE = Number(float, 0, low_open=True)
NONNEG = Number(float, 0)
FRACTION = Number(float, 0, 1)
PROBABILITY = Number(float, 0, 1, high_open=True)  # dropouts: 1 would drop everything
GATE_THRESHOLD = Number(float, 0)  # the stop probability to pass (0: stop at once; 1 or more: never stop early)
DBFS = Number(float, high=0)  # a level relative to full scale
