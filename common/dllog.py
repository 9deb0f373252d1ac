"""Run logging in NVIDIA DLLogger's JSON-stream layout (nvlog.json), short stdout lines and optionally
TensorBoard (scalars, alignment pictures), rank 0 only.

Each line of the log file is `DLLL ` followed by one JSON object, as DLLogger's JSONStreamBackend writes
it (parsers check the prefix and read `json.loads(line[5:])`):

* {"timestamp", "datetime", "elapsedtime", "type": "LOG", "step", "data"}: `step` is "PARAMETER" for run
  parameters (one record per parameter), a list such as [epoch, iteration] or [epoch] for metrics, and
  [] for the run's totals; timestamp and elapsedtime are strings, as DLLogger writes them.
* {"timestamp", "elapsedtime", "datetime", "type": "METADATA", "metric", "metadata"}: a metric's unit
  (and format), once per run.

One file holds one run: a new run moves an existing log aside (`nvlog.json` -> `nvlog.1.json`, the next
free number), a resumed run appends to its own log.
"""
import datetime
import json
import os
import sys
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

Step = Union[str, Sequence[int]]
Curve = Dict[str, List[Tuple[float, float]]]  # metric -> [(minutes, value)]
PREFIX = "DLLL "

# units of the metrics NVIDIA's Tacotron 2 / WaveGlow scripts declare, plus ours
METRIC_UNITS: Dict[str, Optional[str]] = {
    "run_time": "s", "val_loss": None, "train_loss": None, "train_items_per_sec": "items/s",
    "val_items_per_sec": "items/s", "train_iter_time": "s", "train_epoch_time": "s", "lr": None,
    "tacotron2_items_per_sec": "mels/s", "waveglow_items_per_sec": "samples/s", "latency": "s",
    "tacotron2_latency": "s", "waveglow_latency": "s", "throughput": "samples/s",
}


def log_path(output: str, log_file: str) -> str:
    """Where --log-file goes: a bare name inside the output folder; a path with a folder part (or an
    absolute one) as given, as the seed's commands pass it (`-o output/ --log-file=output/nvlog_fp16.json`)."""
    return log_file if os.path.dirname(log_file) else os.path.join(output, log_file)


def earlier_runs(path: str) -> List[str]:
    """The logs of earlier runs that later ones moved aside from `path` (`nvlog.1.json`, `nvlog.2.json`, ...),
    oldest first: NVIDIA's recipes train both models into one folder with one log name."""
    stem, ext = os.path.splitext(path)
    found, n = [], 1
    while os.path.exists(f"{stem}.{n}{ext}"):
        found.append(f"{stem}.{n}{ext}")
        n += 1
    return found


def _set_aside(path: str) -> Optional[str]:
    """Move an earlier run's log to the next free `<stem>.<n><ext>`; returns the new name (None: nothing to move)."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    stem, ext = os.path.splitext(path)
    n = 1
    while os.path.exists(f"{stem}.{n}{ext}"):
        n += 1
    os.replace(path, f"{stem}.{n}{ext}")
    return f"{stem}.{n}{ext}"


class RunLogger:
    """One object created in main() and passed down; a disabled logger (other ranks) does nothing.

    append: continue this file (a resumed run); otherwise an existing file is moved aside first.
    """

    def __init__(self, log_file: Optional[str], enabled: bool = True, stdout: bool = True,
                 tensorboard_dir: Optional[str] = None, append: bool = False) -> None:
        self.enabled = enabled
        self.stdout = stdout and enabled
        self.start = time.time()
        self._file = None
        self._tb = None
        self._tb_step = 0
        self._described: set = set()
        if enabled and tensorboard_dir:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise SystemExit(f"error: --tensorboard needs the tensorboard package (pip install tensorboard): {e}")
            self._tb = SummaryWriter(tensorboard_dir)
        if enabled and log_file:
            os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
            moved = None if append else _set_aside(log_file)
            if moved:
                self.info(f"note: the earlier run's log {log_file} is now {moved}")
            self._file = open(log_file, "a", encoding="utf-8")

    def _line(self, record: Dict[str, Any]) -> None:
        self._file.write(PREFIX + json.dumps(record, default=float) + "\n")
        self._file.flush()

    def _times(self) -> Dict[str, str]:
        now = time.time()
        return {"timestamp": str(now), "datetime": str(datetime.datetime.fromtimestamp(now)),
                "elapsedtime": str(now - self.start)}

    def _write(self, step: Step, data: Dict[str, Any]) -> None:
        if self._file is None:
            return
        for key in data:
            if key in METRIC_UNITS and key not in self._described:
                self._described.add(key)
                self._line({**self._times(), "type": "METADATA", "metric": key,
                            "metadata": {"unit": METRIC_UNITS[key]}})
        self._line({**self._times(), "type": "LOG", "step": step if isinstance(step, str) else list(step),
                    "data": data})

    def parameters(self, data: Dict[str, Any]) -> None:
        """Run parameters: one record per entry, step "PARAMETER", as DLLogger users log them."""
        for key, value in data.items():
            self._write("PARAMETER", {key: value})

    def log(self, step: Step, data: Dict[str, Any], echo: bool = False) -> None:
        """Metrics at a step: (epoch,), (epoch, iteration), () for the run's totals, or a name."""
        self._write(step, data)
        if self._tb is not None and not isinstance(step, str):
            prefix = "iter" if len(step) > 1 else "epoch"
            self._tb_step = self._tb_step + 1 if len(step) > 1 else self._tb_step
            for key, value in data.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{prefix}/{key}", value, self._tb_step)
        if echo and self.stdout:
            label = step if isinstance(step, str) else "/".join(str(s) for s in step) or "run"
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


def read_log(path: str) -> List[Dict[str, Any]]:
    """The records of a log file, as NVIDIA's parsers read them: lines starting `DLLL `, JSON after the prefix."""
    return list(iter_log(path))


def iter_log(path: str) -> Iterator[Dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(PREFIX):
                yield json.loads(line[len(PREFIX):])


def read_curves(path: str) -> Curve:
    """Per-epoch metrics of a training log against the minutes since the run started (resumed runs continue), and
    under "epoch" each epoch's number at the minute it ended (its checkpoint_<model>_<epoch>.pt)."""
    curves: Curve = {}
    if not os.path.exists(path):
        return curves
    offset, last = 0.0, 0.0
    for record in read_log(path):
        if record.get("type") != "LOG" or not isinstance(record.get("step"), list) or len(record["step"]) != 1:
            continue
        elapsed = float(record.get("elapsedtime", 0.0))
        if elapsed + offset < last:  # a resumed run's clock starts again
            offset = last
        minutes = (elapsed + offset) / 60.0
        last = elapsed + offset
        curves.setdefault("epoch", []).append((minutes, float(record["step"][0])))
        for key, value in record["data"].items():
            if isinstance(value, (int, float)):
                curves.setdefault(key, []).append((minutes, float(value)))
    return curves
