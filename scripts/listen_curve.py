"""What a training run's checkpoints sound like, minute by minute: the listeners' curve.

    python -m scripts.listen_curve OUT/tacotron2 -d DATA --filelist HELD_OUT_FILELIST --voice slt \
        [--every 5] [--limit 12] [-o OUT/listen_curve.json]

For every `--every` minutes of training (read off the run's nvlog.json) the epoch checkpoint closest before that
minute is evaluated on the first `--limit` sentences of the filelist through Griffin-Lim (evaluation.py): the
recogniser's WER/CER, DNSMOS, MCD-DTW and contrast, stop accuracy. Prints the table and writes it as JSON for
the demo page. The listeners take about a second a sentence, so this runs once after training, not during it.
"""
import argparse
import json
import os
import sys

import torch

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.listen_curve ...")

import models  # noqa: E402
from common.dllog import read_curves  # noqa: E402
from common.flag_types import COUNT, POSITIVE  # noqa: E402
from corpora.voices import VOICES  # noqa: E402
from evaluation import Judging, evaluate_model  # noqa: E402
from common.output import check_outputs  # noqa: E402

COLUMNS = (("minutes", "{:.1f}"), ("epoch", "{:d}"), ("wer", "{:.2f}"), ("cer", "{:.2f}"), ("ovrl", "{:.2f}"),
           ("mcd_dtw", "{:.1f}"), ("contrast", "{:.2f}"), ("stop_within_10pct", "{:.2f}"), ("reached_max", "{:d}"))


def checkpoints_by_minute(run_dir: str, model_name: str, every: float) -> list:
    """[(minutes, epoch, path)]: the last epoch checkpoint ending before each multiple of `every` minutes, and
    the run's last epoch."""
    ended = [(m, int(e)) for m, e in read_curves(os.path.join(run_dir, "nvlog.json")).get("epoch", [])]
    ended = [(m, e) for m, e in ended if os.path.exists(os.path.join(run_dir, f"checkpoint_{model_name}_{e}.pt"))]
    if not ended:
        raise SystemExit(f"error: {run_dir}: no epoch checkpoints named in its nvlog.json")
    picked, target = [], every
    while target < ended[-1][0] + every:
        before = [(m, e) for m, e in ended if m <= target]
        if before and (not picked or before[-1][1] != picked[-1][1]):
            picked.append(before[-1])
        target += every
    if picked[-1][1] != ended[-1][1]:
        picked.append(ended[-1])
    return [(m, e, os.path.join(run_dir, f"checkpoint_{model_name}_{e}.pt")) for m, e in picked]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a Tacotron 2 training output folder (nvlog.json, epoch checkpoints)")
    parser.add_argument("-d", "--dataset-path", required=True)
    parser.add_argument("--filelist", required=True, help="held-out sentences (with metadata.csv beside them)")
    parser.add_argument("--voice", default="espeak", choices=sorted(VOICES))
    parser.add_argument("--every", type=POSITIVE, default=5.0, help="minutes between the checkpoints judged")
    parser.add_argument("--limit", type=COUNT, default=12, help="sentences per checkpoint")
    parser.add_argument("-o", "--output", default=None, help="JSON file (default: RUN_DIR/listen_curve.json)")
    args = parser.parse_args(argv)
    check_outputs(parser, files=[("-o", args.output or os.path.join(args.run_dir, "listen_curve.json"))])
    points = []
    for minutes, epoch, path in checkpoints_by_minute(args.run_dir, "Tacotron2", args.every):
        model, _ = models.load_model(path, "Tacotron2", torch.device("cpu"))
        result = evaluate_model(model, args.dataset_path, args.filelist, Judging(args.voice, listen=True, floor=False),
                                limit=args.limit)
        heard = result["calibration"]["model_griffin_lim"]
        s = result["summary"]
        points.append({"minutes": minutes, "epoch": epoch, **{k: heard[k] for k in ("wer", "cer", "ovrl", "mcd_dtw",
                                                                                   "contrast")},
                       "stop_within_10pct": s["stop_within_10pct"], "reached_max": s["reached_max"]})
        print(" | ".join(fmt.format(points[-1][k]) for k, fmt in COLUMNS), flush=True)
    out = args.output or os.path.join(args.run_dir, "listen_curve.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"voice": args.voice, "sentences": args.limit, "points": points}, f, indent=1)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
