"""A dataset doctor: the whole corpus at once, and a cleaned copy on request.

    python -m scripts.check_dataset -d ROOT --filelist train.txt val.txt [--png report.png] [--fix OUT]

Reports, for the clips the filelists name: durations (and a histogram picture), sample rates and formats,
loudness, edge silence, clipping, DC offset, NaN samples, characters per second, the symbols used and those the
text cleaners drop, duplicates, and overlap between the filelists (a validation clip that is also a training
clip). Each problem names `filelist:line` (common/training/data_checks.py holds the rules train.py applies).

--fix OUT writes a cleaned copy: every usable clip mono, at --sampling-rate, 16-bit, its DC offset removed, its
edge silence trimmed to 0.1 s, its loudness normalised to --target-db RMS (peaks kept below full scale), under
the same relative path in OUT, and each filelist again in OUT without the lines that cannot train (missing,
unreadable, silent, NaN, untranscribable). Train with `-d OUT --training-files OUT/<filelist>`.
"""
import argparse
import hashlib
import os
import sys
import warnings
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.check_dataset ...")

import soundfile as sf

from common.training import data_checks
from common.audio import AudioError, check_wav_header
from common.filelist import FilelistEntry, FilelistError, load_filelist
from tacotron2.text import EmptyTextError, text_to_sequence
from common.flag_types import COUNT, COUNT0, DBFS
from common.output import check_outputs


def _cleaned_length(text: str, cleaners: List[str]) -> Optional[int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return len(text_to_sequence(text, cleaners))
    except EmptyTextError:
        return None


def dropped_characters(texts: Sequence[str], cleaners: List[str]) -> Counter:
    """Characters of the transcripts that the cleaners turn into nothing, with their counts."""
    counts = Counter(c for t in texts for c in t)
    one = _cleaned_length("1", cleaners)

    def dropped(c: str) -> bool:  # alone and before a number ("$5" is read as dollars): nothing is left of it
        return _cleaned_length(f"a{c}a", cleaners) == 2 and _cleaned_length(f"{c}1", cleaners) == one
    return Counter({c: n for c, n in counts.items() if not c.isspace() and dropped(c)})


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


class Corpus:
    """Every line of the filelists, its header problems, measurements and findings."""

    def __init__(self, root: str, filelists: Sequence[str], sampling_rate: int, cleaners: List[str],
                 jobs: int = 0) -> None:
        self.entries: Dict[str, List[FilelistEntry]] = {f: load_filelist(f, root) for f in filelists}
        self.findings: List[data_checks.Finding] = []
        self.formats: Counter = Counter()
        self.unusable = set()  # (filelist, line) that cannot train
        readable = []
        lengths = {}
        for entries in self.entries.values():
            for e in entries:
                length = _cleaned_length(e.fields[0], cleaners)
                if length is None:
                    self._refuse(e, f"transcript {e.fields[0]!r} has nothing speakable after cleaning")
                    continue
                try:
                    info = check_wav_header(e.path, sampling_rate)
                    self.formats[(info.samplerate, info.channels, info.subtype)] += 1
                except AudioError as err:
                    self._refuse(e, str(err))
                    try:
                        info = sf.info(e.path)
                    except Exception:
                        continue  # missing or not audio: dropped by --fix
                    self.formats[(info.samplerate, info.channels, info.subtype)] += 1
                    self.unusable.discard(e.where)  # channels, rate or format: --fix converts it
                readable.append(e)
                lengths[(e.source, e.line)] = length
        self.readable = readable
        measured = data_checks.Manifest(None)  # in memory: each clip is read once, for every filelist below
        self.stats = data_checks.measure_all((e.path for e in readable), measured, jobs)
        readable_lines = {e.where for e in readable}
        for entries in self.entries.values():
            mine = [e for e in entries if e.where in readable_lines]
            found, _ = data_checks.check_corpus(mine, measured, jobs=jobs,
                                                text_lengths=[lengths[(e.source, e.line)] for e in mine])
            for f in found:
                self.findings.append(f)
                if f.error:
                    self.unusable.add(f.where)
        self.lengths = lengths
        self.digests = {e.where: _digest(e.path) for e in readable}  # content of each readable line's file

    def _refuse(self, entry: FilelistEntry, message: str) -> None:
        self.findings.append(data_checks.Finding(True, entry.where, message))
        self.unusable.add(entry.where)

    def duplicates(self) -> List[str]:
        """Lines naming the same file, or files of identical content, or identical transcripts."""
        out = []
        by_path, by_digest, by_text = defaultdict(list), defaultdict(list), defaultdict(list)
        for e in (e for entries in self.entries.values() for e in entries):
            by_path[os.path.realpath(e.path)].append(e.where)
            by_text[e.fields[0].strip().lower()].append(e.where)
        for e in self.readable:
            by_digest[self.digests[e.where]].append(e.where)
        for what, groups in (("the same file", by_path), ("identical audio", by_digest),
                             ("the same transcript", by_text)):
            for places in groups.values():
                if len(places) > 1:
                    out.append(f"{what}: {', '.join(places[:6])}{' ...' if len(places) > 6 else ''}")
        return out

    def overlap(self) -> List[str]:
        """Clips (by content) that are in more than one filelist."""
        lists = defaultdict(set)
        for e in self.readable:
            lists[self.digests[e.where]].add(e.source)
        names = list(self.entries)
        out = []
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                n = sum(1 for s in lists.values() if a in s and b in s)
                if n:
                    out.append(f"{n} clip(s) in both {a} and {b}")
        return out


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def report(corpus: Corpus, cleaners: List[str]) -> str:
    st = [corpus.stats[e.path] for e in corpus.readable]
    secs = [s.seconds for s in st]
    rms = [s.rms_db for s in st if np.isfinite(s.rms_db)]
    cps = [corpus.lengths[(e.source, e.line)] / max(corpus.stats[e.path].seconds, 1e-3) for e in corpus.readable]
    lines = ["# corpus report", ""]
    for f, entries in corpus.entries.items():
        lines.append(f"{f}: {len(entries)} lines")
    lines += [f"readable clips: {len(st)}, {sum(secs) / 3600:.2f} h; duration min {min(secs, default=0):.2f} s, "
              f"median {_pct(secs, 50):.2f} s, 95 % {_pct(secs, 95):.2f} s, max {max(secs, default=0):.2f} s",
              "formats (rate, channels, sample type): " + ", ".join(f"{k}: {n}" for k, n in corpus.formats.most_common()),
              f"loudness RMS dBFS: median {_pct(rms, 50):.1f}, 5 % {_pct(rms, 5):.1f}, 95 % {_pct(rms, 95):.1f}",
              f"edge silence > 1 s: {sum((s.lead_silence > 1 or s.trail_silence > 1) and s.rms_db > -60 for s in st)} "
              f"sounding clips; median "
              f"leading {_pct([s.lead_silence for s in st], 50):.2f} s, trailing {_pct([s.trail_silence for s in st], 50):.2f} s",
              f"clipped (> 0.1 % of samples): {sum(s.clipped > 0.001 for s in st)}; DC offset > 0.05: "
              f"{sum(abs(s.dc_offset) > 0.05 for s in st)}; NaN/inf samples: {sum(s.nonfinite > 0 for s in st)}",
              f"characters per second: median {_pct(cps, 50):.1f}, 5 % {_pct(cps, 5):.1f}, 95 % {_pct(cps, 95):.1f}"]
    texts = [e.fields[0] for entries in corpus.entries.values() for e in entries]
    used = Counter(c for t in texts for c in t)
    lines.append("symbols used: " + "".join(sorted(used)))
    dropped = dropped_characters(texts, cleaners)
    lines.append("dropped by the cleaners: " + (", ".join(f"{c!r} ×{n}" for c, n in dropped.most_common())
                                                 if dropped else "none"))
    dups, overlap = corpus.duplicates(), corpus.overlap()
    lines.append("duplicates: " + ("none" if not dups else f"{len(dups)} group(s)"))
    lines += [f"  {d}" for d in dups[:20]]
    lines.append("overlap between filelists: " + ("none" if not overlap else "; ".join(overlap)))
    errors = [f for f in corpus.findings if f.error]
    warns = [f for f in corpus.findings if not f.error]
    lines.append(f"problems: {len(errors)} line(s) that cannot train, {len(warns)} warning(s)")
    lines += [f"  {f}" for f in (errors + warns)[:40]]
    if len(errors) + len(warns) > 40:
        lines.append(f"  ... and {len(errors) + len(warns) - 40} more")
    return "\n".join(lines)


def plot(corpus: Corpus, png: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    st = [corpus.stats[e.path] for e in corpus.readable]
    cps = [corpus.lengths[(e.source, e.line)] / max(corpus.stats[e.path].seconds, 1e-3) for e in corpus.readable]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    panels = [([s.seconds for s in st], "duration (s)"), ([s.rms_db for s in st if np.isfinite(s.rms_db)], "RMS (dBFS)"),
              ([max(s.lead_silence, s.trail_silence) for s in st], "longer edge silence (s)"),
              (cps, "characters per second")]
    for ax, (values, label) in zip(axes, panels):
        ax.hist(values, bins=40, color="#4472c4")
        ax.set_xlabel(label)
    axes[0].set_ylabel("clips")
    fig.suptitle(f"{len(st)} clips, {sum(s.seconds for s in st) / 3600:.2f} h")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def clean_clip(path: str, out_path: str, sampling_rate: int, target_db: float, margin: float = 0.1) -> None:
    """Mono, resampled, DC removed, edges trimmed to `margin` seconds, RMS at target_db (peak below 0.99), 16-bit."""
    data, sr = sf.read(path, dtype="float64", always_2d=True)
    x = np.nan_to_num(data.mean(axis=1))
    if sr != sampling_rate:
        import librosa
        x = librosa.resample(x, orig_sr=sr, target_sr=sampling_rate)
    x = x - x.mean()
    s = data_checks.measure(x, sampling_rate)
    start = max(0, int((s.lead_silence - margin) * sampling_rate))
    stop = len(x) - max(0, int((s.trail_silence - margin) * sampling_rate))
    x = x[start:stop]
    rms = np.sqrt(np.mean(x ** 2)) if x.size else 0.0
    if rms > 0:
        x = x * min(10 ** (target_db / 20) / rms, 0.99 / np.abs(x).max())
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    sf.write(out_path, x.astype(np.float32), sampling_rate, subtype="PCM_16")


def fix(corpus: Corpus, root: str, out: str, sampling_rate: int, target_db: float) -> List[str]:
    """Write the cleaned copy; returns the new filelists' paths. Lines that cannot train are dropped, and so are
    repeated lines and clips that a later filelist holds too (a validation clip stays out of training)."""
    digests = corpus.digests
    later: Dict[str, set] = {}
    names = list(corpus.entries)
    for i, name in enumerate(names):
        later[name] = {digests[e.where] for other in names[i + 1:] for e in corpus.entries[other] if e.where in digests}
    written, done = [], set()
    for filelist, entries in corpus.entries.items():
        keep, seen = [], set()
        for e in entries:
            d = digests.get(e.where)
            if e.where in corpus.unusable or d is None or d in seen or d in later[filelist]:
                continue
            seen.add(d)
            keep.append(e)
            rel = os.path.relpath(e.path, root)
            if rel not in done:
                clean_clip(e.path, os.path.join(out, rel), sampling_rate, target_db)
                done.add(rel)
        new = os.path.join(out, os.path.basename(filelist))
        with open(new, "w", encoding="utf-8", newline="\n") as f:
            for e in keep:
                f.write("|".join([os.path.relpath(e.path, root)] + e.fields) + "\n")
        written.append(new)
        print(f"{new}: {len(keep)} of {len(entries)} lines kept", file=sys.stderr)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", "--dataset-path", required=True, help="root of the filelists' paths")
    parser.add_argument("--filelist", nargs="+", required=True, help="filelists (e.g. train and validation)")
    parser.add_argument("--sampling-rate", type=COUNT, default=22050)
    parser.add_argument("--text-cleaners", nargs="*", default=["english_cleaners"])
    parser.add_argument("--png", default=None, help="histograms picture (default: OUT/report.png with --fix)")
    parser.add_argument("--fix", default=None, metavar="OUT", help="write a cleaned copy of the corpus here")
    parser.add_argument("--target-db", type=DBFS, default=-20.0, help="--fix: RMS loudness in dBFS")
    parser.add_argument("--jobs", type=COUNT0, default=0)
    args = parser.parse_args(argv)
    check_outputs(parser, folders=[("--fix", args.fix)], files=[("--png", args.png)])
    try:
        corpus = Corpus(args.dataset_path, args.filelist, args.sampling_rate, args.text_cleaners, args.jobs)
    except FilelistError as e:
        sys.exit(f"error: {e}")
    print(report(corpus, args.text_cleaners))
    png = args.png or (os.path.join(args.fix, "report.png") if args.fix else None)
    if args.fix:
        if os.path.realpath(args.fix) == os.path.realpath(args.dataset_path):
            sys.exit("error: --fix writes a copy: give another folder than the dataset path")
        fix(corpus, args.dataset_path, args.fix, args.sampling_rate, args.target_db)
    if png:
        os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
        plot(corpus, png)
        print(f"wrote {png}", file=sys.stderr)
    return 1 if any(f.error for f in corpus.findings) else 0


if __name__ == "__main__":
    sys.exit(main())
