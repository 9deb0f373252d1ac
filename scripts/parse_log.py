"""Turn training logs (nvlog.json, DLLogger's JSON stream) into the seed README's tables and a loss-curve picture.

    python -m scripts.parse_log output_amp/nvlog.json output_fp32/nvlog.json [--png loss.png]

A log's earlier runs, moved aside when a later run started with the same log name (`nvlog.1.json`, ...: the
seed's two training recipes write Tacotron 2's and WaveGlow's logs to the same output/nvlog.json), are read too,
oldest first, unless --only-given.

Prints, for each log: the loss at chosen epochs ("Loss (Model/Epoch)"), then throughput and time to train
("Number of mels/samples used ...", items per second averaged over the run's epochs, the first one left out
when there are several: it holds start-up costs) with the speed-up of mixed precision where an AMP log and
an FP32 log of the same model and GPU count are given. Metric names: the seed README's
`train_iter_items/sec` and `train_epoch_items/sec` are today's `train_items_per_sec` at step [epoch, iteration]
and at step [epoch]; `train_epoch_avg_loss` is `train_loss` at step [epoch].
"""
import argparse
import os
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.parse_log ...")

from common.dllog import earlier_runs, read_log
from common.flag_types import COUNT0


class Run(NamedTuple):
    path: str
    model: str  # "Tacotron 2" or "WaveGlow"
    amp: bool
    batch_size: int
    gpus: int
    epochs: List[Dict[str, float]]  # per-epoch data, in order
    run_time: Optional[float]  # seconds, from the run's totals


def read_run(path: str) -> Run:
    records = read_log(path)
    if not records:
        raise ValueError(f"{path}: no DLLogger records (lines starting 'DLLL ')")
    params: Dict[str, object] = {}
    epochs, run_time = [], None
    for r in records:
        if r.get("type") != "LOG":
            continue
        if r["step"] == "PARAMETER":
            params.update(r["data"])
        elif r["step"] == []:
            run_time = r["data"].get("run_time", run_time)
        elif isinstance(r["step"], list) and len(r["step"]) == 1:
            epochs.append(r["data"])
    name = str(params.get("model_name", params.get("model", "?")))
    model = "WaveGlow" if name.startswith("WaveGlow") else "Tacotron 2"
    return Run(path, model, bool(params.get("amp_run", False)), int(params.get("batch_size") or 0),
               int(params.get("world_size") or 1), epochs, run_time)


def items_per_sec(run: Run) -> float:
    rates = [e["train_items_per_sec"] for e in run.epochs if "train_items_per_sec" in e]
    rates = rates[1:] if len(rates) > 1 else rates
    return sum(rates) / len(rates) if rates else float("nan")


def loss_table(runs: Sequence[Run], at: Sequence[int]) -> str:
    lines = ["| Loss (Model/Epoch) | " + " | ".join(str(e) for e in at) + " |",
             "| :---: | " + " | ".join("---:" for _ in at) + " |"]
    for run in runs:
        cells = [f"{run.epochs[e - 1]['train_loss']:.4f}" if e <= len(run.epochs) and "train_loss" in run.epochs[e - 1]
                 else "" for e in at]  # an epoch resumed after its last batch logs no loss
        lines.append(f"| {run.model} {'AMP' if run.amp else 'FP32'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def speed_table(runs: Sequence[Run]) -> str:
    unit = {"Tacotron 2": "mels", "WaveGlow": "samples"}
    lines = ["| Model | Number of GPUs | Batch size per GPU | Precision | Number of items per second | "
             "Time to train (h) | Speed-up with mixed precision |", "|---|---:|---:|---|---:|---:|---:|"]
    for run in runs:
        twin = [o for o in runs if o.model == run.model and o.gpus == run.gpus and o.amp != run.amp]
        speedup = f"{items_per_sec(run) / items_per_sec(twin[0]):.2f}" if run.amp and twin else ""
        seconds = run.run_time if run.run_time is not None else sum(e.get("train_epoch_time", 0) for e in run.epochs)
        lines.append(f"| {run.model} | {run.gpus} | {run.batch_size} | {'AMP' if run.amp else 'FP32'} | "
                     f"{items_per_sec(run):,.0f} {unit[run.model]}/s | {seconds / 3600:.3f} | {speedup} |")
    return "\n".join(lines)


def plot_losses(runs: Sequence[Run], png: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        label = f"{run.model} {'AMP' if run.amp else 'FP32'} ({os.path.dirname(run.path) or '.'})"
        xs = range(1, len(run.epochs) + 1)
        ax.plot(xs, [e.get("train_loss", float("nan")) for e in run.epochs], label=f"{label} train")
        if any("val_loss" in e for e in run.epochs):
            ax.plot(xs, [e.get("val_loss", float("nan")) for e in run.epochs], "--", label=f"{label} val")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", nargs="+", help="nvlog.json files of training runs")
    parser.add_argument("--epochs", type=COUNT0, nargs="*", default=None,
                        help="epochs (1-based) of the loss table (default: first, quarters, last)")
    parser.add_argument("--png", default=None, help="write the loss curves here")
    parser.add_argument("--only-given", action="store_true",
                        help="read only the given files, not the earlier runs moved aside beside them")
    args = parser.parse_args(argv)
    paths: List[str] = []
    for log in args.logs:
        for path in ([] if args.only_given else earlier_runs(log)) + [log]:
            if path not in paths:
                paths.append(path)
                if path != log and path not in args.logs:
                    print(f"(also reading {path}: an earlier run moved aside by the next one)", file=sys.stderr)
    try:
        runs = [read_run(p) for p in paths]
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    n = max(len(r.epochs) for r in runs)
    if n == 0:
        sys.exit("error: no finished epoch in these logs")
    at = args.epochs or sorted({1, *(max(1, round(n * q)) for q in (0.25, 0.5, 0.75)), n})
    print(loss_table(runs, at))
    print()
    print(speed_table(runs))
    if args.png:
        plot_losses(runs, args.png)
        print(f"\nwrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
