"""Average the weights of a run's last checkpoints into one (weights only: for inference, or to warm-start from).

    python -m scripts.average_checkpoints demo_output/tacotron2 --last 5 -o averaged.pt
    python -m scripts.average_checkpoints CKPT1.pt CKPT2.pt ... -o averaged.pt

A run's numbered checkpoints (`checkpoint_<Model>_<epoch>.pt`) are taken by epoch; the result loads wherever a
checkpoint does (inference.py, the hub, the server, the evaluation) and says which files it averages.
"""
import argparse
import os
import re
import sys

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.average_checkpoints ...")

from common.checkpoint import CheckpointError, atomic_save_or_exit, average_checkpoints  # noqa: E402
from common.flag_types import COUNT  # noqa: E402
from common.output import check_outputs  # noqa: E402


def last_epochs(run_dir: str, n: int) -> list:
    """The numbered checkpoints of a training folder, the last n by epoch."""
    found = []
    for name in os.listdir(run_dir):
        match = re.fullmatch(r"checkpoint_\w+?_(\d+)\.pt", name)
        if match:
            found.append((int(match.group(1)), os.path.join(run_dir, name)))
    if not found:
        raise CheckpointError(f"{run_dir}: no numbered checkpoints (checkpoint_<Model>_<epoch>.pt)")
    return [path for _, path in sorted(found)[-n:]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="a training output folder, or checkpoint files")
    parser.add_argument("--last", type=COUNT, default=5, help="with a folder: its last N numbered checkpoints")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    check_outputs(parser, files=[("-o", args.output)])
    try:
        if len(args.inputs) == 1 and os.path.isdir(args.inputs[0]):
            paths = last_epochs(args.inputs[0], args.last)
        else:
            paths = args.inputs
        averaged = average_checkpoints(paths)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    atomic_save_or_exit(averaged, args.output)
    print(f"wrote {args.output}: the mean of {', '.join(os.path.basename(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
