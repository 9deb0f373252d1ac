"""Quality of a Tacotron 2 on held-out sentences, in free-running (greedy) inference.

    python -m scripts.evaluate_tacotron2 --tacotron2 CKPT -d data/espeak \
        --filelist data/espeak/filelists/espeak_audio_text_test_filelist.txt -o eval/

Prints a table (diagonality, focus, stop ratio, MCD-DTW against the teacher mel), writes
eval/metrics.json and one alignment picture per sentence.
"""
import argparse
import json
import os
import sys

import torch

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.evaluate_tacotron2 ...")

import models
from common.audio import AudioConfig
from tacotron2.data_function import TextMelLoader
from tacotron2 import metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tacotron2", required=True)
    parser.add_argument("-d", "--dataset-path", required=True)
    parser.add_argument("--filelist", required=True)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N sentences only")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--deterministic", action="store_true", help="prenet dropout off")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prenet dropout draws")
    args = parser.parse_args(argv)
    model, _ = models.load_model(args.tacotron2, "Tacotron2", torch.device("cpu"))
    dataset = TextMelLoader(args.dataset_path, args.filelist, AudioConfig(), ["english_cleaners"])
    os.makedirs(args.output, exist_ok=True)
    rows = metrics.evaluate(model, dataset, args.limit, None if args.no_plots else args.output,
                            prenet_dropout=not args.deterministic, seed=args.seed)
    summary = metrics.summarize(rows)
    print(metrics.format_table(rows, summary))
    with open(os.path.join(args.output, "metrics.json"), "w") as f:
        json.dump({"summary": summary, "sentences": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
