"""LJSpeech-format metadata and filelists: reading metadata.csv, deterministic train/val/test splits, the
filelists of this repository's corpora and the seed's own filelists of NVIDIA's LJSpeech split."""
import os
import random
from typing import Dict, List, Sequence

from common.filelist import read_text_lines


def read_metadata(path: str, column: int = 1):
    """(id, text) pairs: column 1 is the transcript, 2 the normalized one (1 where a line has no third column)."""
    rows = []
    for n, line in enumerate(read_text_lines(path), start=1):  # not UTF-8: the file, line and byte named
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


def split_ids(ids: Sequence[str], val_fraction: float = 0.01, test_fraction: float = 0.0382, seed: int = 1234,
              subsets: Sequence[int] = (64, 300, 625, 1250, 2500)) -> Dict[str, List[str]]:
    """{"test", "val", "train", "train_subset_<n>"...} -> ids: a deterministic function of the ids and the seed."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    n_val = max(1, int(round(len(order) * val_fraction)))
    n_test = max(1, int(round(len(order) * test_fraction))) if test_fraction > 0 else 0
    splits = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    for n in subsets:
        if n <= len(splits["train"]):
            splits[f"train_subset_{n}"] = splits["train"][:n]
    return splits


def write_lists(out_dir: str, prefix: str, splits: Dict[str, List[str]], texts: Dict[str, str], kind: str = "text",
                wav_dir: str = "wavs", mel_dir: str = "mels") -> None:
    """`<prefix>_{audio,mel}_<kind>_<split>_filelist.txt`: `wavs/<id>.wav|<text>` and `mels/<id>.pt|<text>`."""
    os.makedirs(out_dir, exist_ok=True)
    for name, ids in splits.items():
        for medium, folder, ext in (("audio", wav_dir, ".wav"), ("mel", mel_dir, ".pt")):
            with open(os.path.join(out_dir, f"{prefix}_{medium}_{kind}_{name}_filelist.txt"), "w",
                      encoding="utf-8") as f:
                f.writelines(f"{folder}/{i}{ext}|{texts[i]}\n" for i in ids)


def write_filelists(metadata: str, out_dir: str, prefix: str = "ljs", wav_dir: str = "wavs", mel_dir: str = "mels",
                    val_fraction: float = 0.01, test_fraction: float = 0.0382, seed: int = 1234,
                    subsets: Sequence[int] = (64, 300, 625, 1250, 2500)) -> Dict[str, List[str]]:
    """Audio and mel filelists of a metadata.csv's transcripts, split by `split_ids`; returns the split."""
    texts = dict(read_metadata(metadata))
    splits = split_ids(list(texts), val_fraction, test_fraction, seed, subsets)
    write_lists(out_dir, prefix, splits, texts, "text", wav_dir, mel_dir)
    return splits


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
        ids = [line.strip() for line in read_text_lines(path) if line.strip()]
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


def first_minutes(lines: Sequence[str], root: str, minutes: float) -> List[str]:
    """The first filelist lines whose wavs (paths relative to root) add up to `minutes` of audio (the line that
    crosses it included); ValueError where the whole list is shorter."""
    import soundfile as sf
    taken, seconds = [], 0.0
    for line in lines:
        if seconds >= 60 * minutes:
            return taken
        taken.append(line)
        seconds += sf.info(os.path.join(root, line.split("|", 1)[0])).duration
    if seconds < 60 * minutes:
        raise ValueError(f"the filelist holds only {seconds / 60:.1f} of the {minutes} minutes asked for")
    return taken
