"""Run logging: DLLogger-style JSON lines (nvlog.json), short stdout lines and optionally TensorBoard
(scalars, alignment pictures), rank 0 only.

Each line of the log file is one JSON object with DLLogger's fields
{"timestamp", "datetime", "elapsedtime", "type", "step", "data"}. Unlike DLLogger we write no
"DLLL " prefix, so that every line parses as JSON by itself.
"""
import datetime
import json
import os
import sys
import time
from typing import Any, Dict, Optional, Sequence, Union

Step = Union[str, Sequence[int]]


class RunLogger:
    """One object created in main() and passed down; a disabled logger (other ranks) does nothing."""

    def __init__(self, log_file: Optional[str], enabled: bool = True, stdout: bool = True,
                 tensorboard_dir: Optional[str] = None) -> None:
        self.enabled = enabled
        self.stdout = stdout and enabled
        self.start = time.time()
        self._file = None
        self._tb = None
        self._tb_step = 0
        if enabled and tensorboard_dir:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise SystemExit(f"error: --tensorboard needs the tensorboard package (pip install tensorboard): {e}")
            self._tb = SummaryWriter(tensorboard_dir)
        if enabled and log_file:
            os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
            self._file = open(log_file, "a", encoding="utf-8")

    def _write(self, kind: str, step: Step, data: Dict[str, Any]) -> None:
        if self._file is None:
            return
        now = time.time()
        record = {"timestamp": now, "datetime": datetime.datetime.fromtimestamp(now).isoformat(),
                  "elapsedtime": now - self.start, "type": kind,
                  "step": step if isinstance(step, str) else list(step), "data": data}
        self._file.write(json.dumps(record, default=float) + "\n")
        self._file.flush()

    def metadata(self, data: Dict[str, Any]) -> None:
        """Run parameters (type PARAMETER)."""
        self._write("PARAMETER", "PARAMETER", data)

    def log(self, step: Step, data: Dict[str, Any], echo: bool = False) -> None:
        """Metrics at a step: (epoch,), (epoch, iteration) or a name such as 'run'."""
        self._write("LOG", step, data)
        if self._tb is not None and not isinstance(step, str):
            prefix = "iter" if len(step) > 1 else "epoch"
            self._tb_step = self._tb_step + 1 if len(step) > 1 else self._tb_step
            for key, value in data.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{prefix}/{key}", value, self._tb_step)
        if echo and self.stdout:
            label = step if isinstance(step, str) else "/".join(str(s) for s in step)
            fields = "  ".join(f"{k} {v:.5g}" if isinstance(v, float) else f"{k} {v}" for k, v in data.items())
            print(f"[{label}] {fields}", file=sys.stdout, flush=True)

    def figures(self, figures: Dict[str, Any]) -> None:
        """Matplotlib figures to TensorBoard (when enabled); the figures are closed."""
        import matplotlib.pyplot as plt
        for tag, fig in figures.items():
            if self._tb is not None:
                self._tb.add_figure(tag, fig, self._tb_step)
            plt.close(fig)

    def info(self, message: str) -> None:
        if self.stdout:
            print(message, flush=True)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._file is not None:
            self._file.close()
            self._file = None


def read_log(path: str):
    """The records of a log file, one dict per line."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
