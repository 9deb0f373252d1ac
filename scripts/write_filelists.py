"""Write train/val/test filelists (and train subsets) from an LJSpeech-format metadata.csv.

    python -m scripts.write_filelists --metadata LJSpeech-1.1/metadata.csv -o filelists --prefix ljs

Lines of metadata.csv are `id|text|normalized text`; filelist lines are `wavs/<id>.wav|<text>` (audio) and
`mels/<id>.pt|<text>` (mel). The split is a deterministic function of the ids and the seed.
"""
import argparse
import os
import random
import sys
from typing import Sequence


def read_metadata(path: str):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
                raise ValueError(f"{path}:{n}: expected 'id|text[|normalized text]', got {line[:80]!r}")
            rows.append((parts[0].strip(), parts[1].strip()))
    if not rows:
        raise ValueError(f"{path}: no entries")
    ids = [r[0] for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"{path}: id {dup!r} appears more than once")
    return rows


def write_filelists(metadata: str, out_dir: str, prefix: str = "ljs", wav_dir: str = "wavs", mel_dir: str = "mels",
                    val_fraction: float = 0.01, test_fraction: float = 0.0382, seed: int = 1234,
                    subsets: Sequence[int] = (64, 300, 625, 1250, 2500)) -> None:
    rows = read_metadata(metadata)
    order = sorted(rows)
    random.Random(seed).shuffle(order)
    n_val = max(1, int(round(len(order) * val_fraction)))
    n_test = max(1, int(round(len(order) * test_fraction))) if test_fraction > 0 else 0
    splits = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    for n in subsets:
        if n <= len(splits["train"]):
            splits[f"train_subset_{n}"] = splits["train"][:n]
    os.makedirs(out_dir, exist_ok=True)
    for name, items in splits.items():
        for kind, folder, ext in (("audio", wav_dir, ".wav"), ("mel", mel_dir, ".pt")):
            path = os.path.join(out_dir, f"{prefix}_{kind}_text_{name}_filelist.txt")
            with open(path, "w", encoding="utf-8") as f:
                for i, text in items:
                    f.write(f"{folder}/{i}{ext}|{text}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metadata", required=True)
    parser.add_argument("-o", "--output", default="filelists")
    parser.add_argument("--prefix", default="ljs")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--val-fraction", type=float, default=0.01)
    parser.add_argument("--test-fraction", type=float, default=0.0382)
    args = parser.parse_args()
    try:
        write_filelists(args.metadata, args.output, args.prefix, val_fraction=args.val_fraction,
                        test_fraction=args.test_fraction, seed=args.seed)
    except ValueError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
