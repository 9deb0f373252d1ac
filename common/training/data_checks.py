"""What is in the audio, not only in its header: content checks of every clip a filelist names.

Most failed trainings on users' own corpora come from data that passes header checks: silent clips, long
silence at the edges (attention never forms, the gate never fires), clipping, DC offset, NaN samples in
float wavs, transcripts that do not fit the clip's length. `check_corpus` measures each clip once
(`ClipStats`, in parallel, cached in a manifest keyed by file size and modification time) and judges it
(`judge`): errors for what can only break training, warnings for the rest, each naming `filelist:line`
and how to fix it. The thresholds are `Thresholds`; `strict` makes every warning an error.
"""
import argparse
import json
import math
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
from tqdm import tqdm

from torch.utils.data import Dataset

from common.training.dist_utils import DistInfo
from common.filelist import FilelistEntry
from common.model_package import ModelPackage

MANIFEST_VERSION = 1


class ClipStats(NamedTuple):
    """Measurements of one clip (float samples in [-1, 1])."""
    n_samples: int
    sampling_rate: int
    nonfinite: int  # NaN or inf samples
    peak: float
    rms_db: float  # dBFS of the whole clip (-inf for digital silence)
    dc_offset: float  # mean sample value
    clipped: float  # fraction of samples at or beyond 0.999 of full scale
    lead_silence: float  # seconds before the first frame within 40 dB of the clip's loudest frame
    trail_silence: float  # seconds after the last such frame

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sampling_rate


class Thresholds(NamedTuple):
    silent_db: float = -60.0  # RMS below this: nothing to learn (error)
    quiet_db: float = -40.0  # RMS below this: warning
    clipped: float = 0.001  # fraction of clipped samples
    dc_offset: float = 0.05
    edge_silence: float = 1.0  # seconds at either end
    cps_spread: float = 6.0  # robust z-score (median, MAD) of characters per second within the corpus


class Finding(NamedTuple):
    error: bool
    where: str  # filelist:line
    message: str

    def __str__(self) -> str:
        return f"{'error' if self.error else 'warning'}: {self.where}: {self.message}"


def read_samples(path: str) -> Tuple[np.ndarray, int]:
    """(L,) float64 samples in [-1, 1] (integer formats scaled by their full scale) and the sampling rate."""
    data, sr = sf.read(path, dtype="float64", always_2d=True)
    return data[:, 0], sr


def measure(samples: np.ndarray, sampling_rate: int, frame: int = 256) -> ClipStats:
    """ClipStats of (L,) samples."""
    finite = np.isfinite(samples)
    nonfinite = int((~finite).sum())
    x = np.where(finite, samples, 0.0)
    n = x.size
    peak = float(np.abs(x).max()) if n else 0.0
    rms = float(np.sqrt(np.mean(x ** 2))) if n else 0.0
    rms_db = 20 * math.log10(rms) if rms > 0 else float("-inf")
    n_frames = max(n // frame, 1)
    centred = x - x.mean() if n else x  # a DC offset is not sound
    energy = (np.sqrt(np.mean(centred[:n_frames * frame].reshape(n_frames, -1) ** 2, axis=1)) if n >= frame
              else np.array([rms]))
    loud = energy > energy.max() * 10 ** (-40 / 20) if energy.max() > 0 else np.zeros_like(energy, dtype=bool)
    if loud.any():
        first, last = int(np.argmax(loud)), int(len(loud) - 1 - np.argmax(loud[::-1]))
        lead, trail = first * frame / sampling_rate, (n - (last + 1) * frame) / sampling_rate
    else:
        lead = trail = n / sampling_rate
    return ClipStats(n, sampling_rate, nonfinite, peak, rms_db, float(x.mean()) if n else 0.0,
                     float(np.mean(np.abs(x) >= 0.999)) if n else 0.0, max(lead, 0.0), max(trail, 0.0))


def _measure_file(path: str) -> ClipStats:
    samples, sr = read_samples(path)
    return measure(samples, sr)


def judge(entry: FilelistEntry, stats: ClipStats, thresholds: Thresholds = Thresholds(), min_samples: int = 0,
          cps: Optional[float] = None, cps_z: Optional[float] = None) -> List[Finding]:
    """What is wrong with one clip; cps/cps_z: its characters per second and their robust z-score."""
    t, w = thresholds, entry.where
    found = []
    if stats.nonfinite:
        found.append(Finding(True, w, f"{entry.path}: {stats.nonfinite} NaN/inf samples (WaveGlow's loss becomes "
                                      f"NaN); re-export the clip, or drop the line"))
    if stats.rms_db < t.silent_db:
        found.append(Finding(True, w, f"{entry.path}: silent (RMS {stats.rms_db:.0f} dBFS): nothing to learn; "
                                      f"drop the line or replace the file"))
    elif stats.rms_db < t.quiet_db:
        found.append(Finding(False, w, f"{entry.path}: very quiet (RMS {stats.rms_db:.0f} dBFS); normalise its "
                                       f"loudness (python -m scripts.check_dataset --fix)"))
    if stats.clipped > t.clipped:
        found.append(Finding(False, w, f"{entry.path}: {100 * stats.clipped:.2f} % of samples clipped at full "
                                       f"scale; re-record or lower the gain"))
    if abs(stats.dc_offset) > t.dc_offset:
        found.append(Finding(False, w, f"{entry.path}: DC offset {stats.dc_offset:+.3f}; remove it "
                                       f"(e.g. sox in.wav out.wav highpass 20)"))
    for side, seconds in (("leading", stats.lead_silence), ("trailing", stats.trail_silence)):
        if seconds > t.edge_silence and stats.rms_db >= t.silent_db:
            found.append(Finding(False, w, f"{entry.path}: {seconds:.1f} s of {side} silence (attention and the stop "
                                           f"gate learn badly); trim it (python -m scripts.check_dataset --fix)"))
    if min_samples and stats.n_samples < min_samples:
        found.append(Finding(False, w, f"{entry.path}: {stats.n_samples} samples, shorter than a training segment "
                                       f"of {min_samples}: it is padded with silence"))
    if cps is not None and cps_z is not None and abs(cps_z) > t.cps_spread:
        found.append(Finding(False, w, f"{entry.path}: {cps:.1f} characters per second, far from the corpus' "
                                       f"typical rate (robust z {cps_z:+.1f}): does the transcript belong to this "
                                       f"clip?"))
    return found


def robust_z(values: Sequence[float]) -> List[float]:
    """(v - median) / (1.4826 MAD) for each value (0 where the spread is 0)."""
    v = np.asarray(values, dtype=np.float64)
    med = np.median(v)
    mad = 1.4826 * np.median(np.abs(v - med))
    return [0.0 if mad == 0 else float(x) for x in (v - med) / (mad or 1.0)]


class Manifest:
    """ClipStats of files already measured, keyed by path, valid while (size, mtime) are unchanged."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self.entries: Dict[str, dict] = {}
        if path and os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
                if data.get("version") == MANIFEST_VERSION:
                    self.entries = data["clips"]
            except (OSError, ValueError, KeyError):
                self.entries = {}  # unreadable: measure again

    @staticmethod
    def _key(path: str) -> List[float]:
        st = os.stat(path)
        return [st.st_size, st.st_mtime_ns]

    def get(self, path: str) -> Optional[ClipStats]:
        item = self.entries.get(os.path.abspath(path))
        if item is None or item["key"] != self._key(path):
            return None
        return ClipStats(*item["stats"])

    def put(self, path: str, stats: ClipStats) -> None:
        self.entries[os.path.abspath(path)] = {"key": self._key(path), "stats": list(stats)}

    def save(self) -> None:
        if not self.path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(self.path)), suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": MANIFEST_VERSION, "clips": self.entries}, f)
        os.replace(tmp, self.path)


def measure_all(paths: Iterable[str], manifest: Manifest, jobs: int = 0) -> Dict[str, ClipStats]:
    """ClipStats of every path: from the manifest where still valid, else measured (in `jobs` processes)."""
    paths = list(dict.fromkeys(paths))
    stats = {p: manifest.get(p) for p in paths}
    todo = [p for p, s in stats.items() if s is None]
    jobs = jobs or min(8, os.cpu_count() or 1)
    progress = dict(total=len(todo), desc="measuring clips", unit="clip", leave=False,
                    disable=len(todo) < 200 or not sys.stderr.isatty())  # LJSpeech: 13,100 clips, a minute or two
    if len(todo) > 64 and jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            measured = list(tqdm(pool.map(_measure_file, todo, chunksize=32), **progress))
    else:
        measured = [_measure_file(p) for p in tqdm(todo, **progress)]
    for path, s in zip(todo, measured):
        stats[path] = s
        manifest.put(path, s)
    if todo:
        manifest.save()
    return stats


def check_corpus(entries: Sequence[FilelistEntry], manifest: Manifest, thresholds: Thresholds = Thresholds(),
                 min_samples: int = 0, jobs: int = 0, text_lengths: Optional[Sequence[int]] = None
                 ) -> Tuple[List[Finding], Dict[str, ClipStats]]:
    """Findings for every entry (wav files whose headers were already checked), and every clip's stats.

    text_lengths: the cleaned transcripts' lengths, for the characters-per-second check.
    """
    stats = measure_all((e.path for e in entries), manifest, jobs)
    cps = [None] * len(entries)
    zs: List[Optional[float]] = [None] * len(entries)
    if text_lengths is not None and len(entries) >= 20:
        rates = [n / max(stats[e.path].seconds, 1e-3) for e, n in zip(entries, text_lengths)]
        cps, zs = rates, robust_z(rates)
    findings = []
    for i, entry in enumerate(entries):
        findings += judge(entry, stats[entry.path], thresholds, min_samples, cps[i], zs[i])
    return findings, stats


def check_training_data(args: argparse.Namespace, info: DistInfo, package: ModelPackage,
                        datasets: Sequence[Dataset]) -> None:
    """Content checks of every clip (above), measured once per node (local rank 0, cached in
    OUTPUT/data_checks.json for restarts) and judged on every rank: errors stop the run, warnings are printed
    (--data-checks strict refuses them too)."""
    if args.data_checks == "off" or package.content_items is None:
        return
    items = [i for i in (package.content_items(d, args) for d in datasets) if i is not None]
    findings: List[Finding] = []
    for measuring in (True, False):  # local rank 0 measures and writes the manifest, then the others read it
        if (info.local_rank == 0) == measuring:
            manifest = Manifest(os.path.join(args.output, "data_checks.json"))
            for item in items:
                findings += check_corpus(item.entries, manifest, min_samples=item.min_samples,
                                         text_lengths=item.text_lengths)[0]
        info.barrier()
    strict = args.data_checks == "strict"
    refused = [f for f in findings if f.error or strict]
    warned = [f for f in findings if not (f.error or strict)]
    if info.is_main and warned:
        print(f"{_listing(warned)}\n{len(warned)} data warning(s); training goes on (--data-checks strict refuses "
              f"them; python -m scripts.check_dataset reports the corpus, --fix writes a cleaned copy)",
              file=sys.stderr)
    if refused:
        raise SystemExit(f"{_listing(refused)}\nerror: {len(refused)} filelist line(s) refused by the data checks "
                         f"(--data-checks {args.data_checks}); fix or drop them (python -m scripts.check_dataset "
                         f"--fix writes a cleaned copy of the corpus)")


def _listing(findings: Sequence[Finding], shown: int = 20) -> str:
    """The first `shown` findings, a line each, and how many more there are."""
    more = f"\n... and {len(findings) - shown} more" if len(findings) > shown else ""
    return "\n".join(str(f) for f in findings[:shown]) + more
