"""Write train/val/test filelists (and train subsets) from an LJSpeech-format metadata.csv.

    python -m scripts.write_filelists --metadata CORPUS/metadata.csv -o filelists --prefix NAME
    python -m scripts.write_filelists --metadata LJSpeech-1.1/metadata.csv --split filelists/ljspeech_split

Lines of metadata.csv are `id|text|normalized text`. Without --split, filelist lines are `wavs/<id>.wav|<text>`
(audio) and `mels/<id>.pt|<text>` (mel), and the split is a deterministic function of the ids and the seed.
With --split DIR (one `<name>.ids` file per list, as in filelists/ljspeech_split: NVIDIA's LJSpeech split),
the seed's filelists are written byte for byte in its layout: `LJSpeech-1.1/wavs/<id>.wav|<normalized text>`
in the ids' order, used with `-d ./`.
"""
import argparse
import os
import random
import sys
from typing import Sequence


def read_metadata(path: str, column: int = 1):
    """(id, text) pairs: column 1 is the transcript, 2 the normalized one (1 where a line has no third column)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
                raise ValueError(f"{path}:{n}: expected 'id|text[|normalized text]', got {line[:80]!r}")
            text = parts[column] if len(parts) > column and parts[column].strip() else parts[1]
            rows.append((parts[0].strip(), text.strip()))
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


SEED_MEL_LISTS = ("train", "val", "test", "train_subset_625", "train_subset_1250", "train_subset_2500")


def write_seed_filelists(metadata: str, split_dir: str, out_dir: str, root: str = "LJSpeech-1.1") -> None:
    """The seed's `ljs_{audio,mel}_text_<name>_filelist.txt` from the id lists in split_dir (and
    `ljs_mel_text_filelist.txt`, every id in metadata order); texts are metadata's normalized column."""
    texts = dict(read_metadata(metadata, column=2))
    names = sorted(f[:-4] for f in os.listdir(split_dir) if f.endswith(".ids"))
    if not names:
        raise ValueError(f"{split_dir}: no <name>.ids files")
    lists = {}
    for name in names:
        path = os.path.join(split_dir, f"{name}.ids")
        with open(path, encoding="utf-8") as f:
            ids = [line.strip() for line in f if line.strip()]
        missing = [i for i in ids if i not in texts]
        if missing:
            raise ValueError(f"{path}: {len(missing)} id(s) not in {metadata}, first {missing[0]!r}: "
                             f"is this the LJSpeech-1.1 metadata.csv?")
        lists[name] = ids
    os.makedirs(out_dir, exist_ok=True)

    def write(filename: str, ids: Sequence[str], folder: str, ext: str) -> None:
        with open(os.path.join(out_dir, filename), "w", encoding="utf-8", newline="\n") as f:
            for i in ids:
                f.write(f"{root}/{folder}/{i}{ext}|{texts[i]}\n")
    for name, ids in lists.items():
        write(f"ljs_audio_text_{name}_filelist.txt", ids, "wavs", ".wav")
        if name in SEED_MEL_LISTS:
            write(f"ljs_mel_text_{name}_filelist.txt", ids, "mels", ".pt")
    write("ljs_mel_text_filelist.txt", list(texts), "mels", ".pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metadata", required=True)
    parser.add_argument("-o", "--output", default="filelists")
    parser.add_argument("--prefix", default="ljs")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--val-fraction", type=float, default=0.01)
    parser.add_argument("--test-fraction", type=float, default=0.0382)
    parser.add_argument("--split", default=None, help="folder of <name>.ids lists: write the seed's filelists")
    parser.add_argument("--root", default="LJSpeech-1.1", help="with --split: the corpus folder in each path")
    args = parser.parse_args()
    try:
        if args.split:
            write_seed_filelists(args.metadata, args.split, args.output, args.root)
            return
        write_filelists(args.metadata, args.output, args.prefix, val_fraction=args.val_fraction,
                        test_fraction=args.test_fraction, seed=args.seed)
    except ValueError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
