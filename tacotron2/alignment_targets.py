"""Where the attention should be: the teacher voice's own segment times as a per-frame target for the guided
attention loss.

A diagonal prior (loss_function.guided_attention_loss without positions) says that every symbol lasts as long
as every other; the slt corpus's voice knows better: festival chose each segment's duration (a stressed vowel
160 ms, a "dh" 25 ms, a word boundary nothing, a comma's pause 100-200 ms). The corpus builder writes them to
`segments.csv` beside metadata.csv (`id|name:end name:end ...`, festival's phone names or "pau", end times in
seconds of the corpus's wav); here they become, for every mel frame, the position in the model's symbol sequence
that the frame speaks: symbol k spans positions [k, k + 1), so a frame halfway through the third symbol is at 2.5.

The symbols are matched to the segments in order: a phone symbol takes the next phone segment (its name must
agree, or the corpus's phonemes and segments disagree and the line is named), a comma or final mark takes the
pause that follows it, a space between words takes no time; a pause before a phone (the wav's leading silence)
goes to that phone, and whatever remains at the end to the last symbol.
"""
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .text.phonemizers import Segments, festival_to_arpabet

SEGMENTS_FILE = "segments.csv"
PAUSE = "pau"


class SegmentsError(ValueError):
    """A segments.csv line that cannot be read, or segments that do not match an utterance's symbols."""


def format_segments(segments: Segments) -> str:
    return " ".join(f"{name}:{end:.4f}" for name, end in segments)


def write_segments(path: str, by_id: Dict[str, Segments]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for utt_id, segments in by_id.items():
            f.write(f"{utt_id}|{format_segments(segments)}\n")


def read_segments(path: str) -> Dict[str, Segments]:
    """{id: segments} of a segments.csv; SegmentsError naming the file and line of anything malformed."""
    out: Dict[str, Segments] = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            utt_id, sep, rest = line.rstrip("\n").partition("|")
            if not sep or not utt_id:
                raise SegmentsError(f"{where}: expected 'id|name:end name:end ...', got {line.strip()!r}")
            segments, last = [], 0.0
            for token in rest.split():
                name, sep, end = token.rpartition(":")
                try:
                    seconds = float(end)
                except ValueError:
                    seconds = float("nan")
                if not sep or not name or not np.isfinite(seconds) or seconds < last:
                    raise SegmentsError(f"{where}: {token!r} is not 'name:end' with end times in order")
                segments.append((name, seconds))
                last = seconds
            out[utt_id] = tuple(segments)
    return out


def symbol_spans(symbols: Sequence[str], segments: Segments, seconds: float, where: str = "") -> np.ndarray:
    """(N, 2) start and end in seconds of each of an utterance's N symbols (strings from tacotron2.text.symbols;
    phones are "@AH0"); see the module docstring for the rules. SegmentsError, prefixed by `where`, when the
    phones do not match."""
    where = f"{where}: " if where else ""
    starts = [0.0] + [end for _, end in segments[:-1]]
    queue = [(name, start, end) for (name, end), start in zip(segments, starts)]
    spans = np.zeros((len(symbols), 2))
    i, now = 0, 0.0
    for k, symbol in enumerate(symbols):
        if symbol.startswith("@"):
            while i < len(queue) and queue[i][0] == PAUSE:  # a pause no mark took: the phone's lead-in
                i += 1
            if i == len(queue):
                raise SegmentsError(f"{where}symbol {k} ({symbol[1:]}) has no segment left")
            name, _, end = queue[i]
            phone = symbol[1:].rstrip("012")
            if festival_to_arpabet(name) != phone:
                raise SegmentsError(f"{where}symbol {k} is {phone} but the segment spoken there is {name!r}")
            i += 1
        elif i < len(queue) and queue[i][0] == PAUSE and symbol.strip():  # a mark takes the pause after it
            end = queue[i][2]
            i += 1
        else:
            end = now
        spans[k] = (now, end)
        now = end
    if any(name != PAUSE for name, _, _ in queue[i:]):
        raise SegmentsError(f"{where}{sum(n != PAUSE for n, _, _ in queue[i:])} segments left after the last "
                            f"symbol")
    if len(symbols):
        spans[-1, 1] = max(spans[-1, 1], seconds)
    return spans


def frame_positions(spans: np.ndarray, n_frames: int, hop_seconds: float) -> torch.Tensor:
    """(n_frames,) position in the symbol sequence of each mel frame's centre: k + the fraction of symbol k's
    span behind it (symbols of no duration are stepped over)."""
    centres = (np.arange(n_frames) + 0.5) * hop_seconds
    ends = spans[:, 1]
    k = np.minimum(np.searchsorted(ends, centres, side="right"), len(spans) - 1)
    start, end = spans[k, 0], spans[k, 1]
    fraction = np.clip((centres - start) / np.maximum(end - start, 1e-9), 0.0, 1.0)
    return torch.from_numpy(k + fraction).float()


def step_positions(positions: Optional[torch.Tensor], n_steps: int) -> Optional[torch.Tensor]:
    """Per-frame positions (B, T_out) -> per decoder step (B, n_steps): the mean over each step's r frames."""
    if positions is None:
        return None
    B, T = positions.shape
    return positions[:, :n_steps * (T // n_steps)].reshape(B, n_steps, -1).mean(dim=2)
