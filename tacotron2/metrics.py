"""Alignment and synthesis quality metrics for held-out sentences.

diagonality: share of decoder steps whose attention peak lies within 15 % of the diagonal;
focus: mean over steps of the largest attention weight;
stop ratio: free-running output length / teacher length;
MCD-DTW and contrast against the teacher's mel: see common/mel_metrics.py;
teacher-forced mel error: mean squared error of the postnet output given the teacher's frames;
text-only mel error: the same, given the sentence's mean frame as every previous frame: what the model says from
the text alone (a decoder that only extends its previous frame hums when it runs free, and fails this one);
attention granularity: the longest stay on one symbol (decoder steps) and the largest forward jump (symbols):
a character-level alignment moves a symbol or two at a time, a word-level staircase sits, then jumps.
"""
import os
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from common.mel_metrics import contrast_ratio, mcd_dtw
from common.plotting import alignment_figure, plot_comparison


def diagonality(alignment: torch.Tensor, tolerance: float = 0.15) -> float:
    """Share of steps t whose argmax n satisfies |n / N - t / T| <= tolerance; alignment (T, N), unpadded."""
    T, N = alignment.shape
    peaks = alignment.float().argmax(dim=1).double()
    t = torch.arange(T, dtype=torch.float64)
    dev = (peaks / max(N - 1, 1) - t / max(T - 1, 1)).abs()
    return float((dev <= tolerance).double().mean())


def focus(alignment: torch.Tensor) -> float:
    """Mean over steps of the largest attention weight; alignment (T, N)."""
    return float(alignment.float().max(dim=1).values.mean())


def attention_granularity(alignment: torch.Tensor) -> Dict[str, int]:
    """Longest run of decoder steps whose attention peak stays on one symbol, and the largest forward jump of
    the peak between consecutive steps (in symbols); alignment (T, N), unpadded."""
    peaks = alignment.float().argmax(dim=1).tolist()
    longest, run = 1, 1
    for a, b in zip(peaks, peaks[1:]):
        run = run + 1 if a == b else 1
        longest = max(longest, run)
    jumps = [b - a for a, b in zip(peaks, peaks[1:])]
    return {"longest_stay": longest, "largest_jump": max([0] + jumps)}


def is_staircase(granularity: Dict[str, int], n_symbols: int, steps: int, max_jump: int = 3) -> bool:
    """A word-level staircase: jumps of more than `max_jump` symbols, or stays several times longer than the
    mean steps per symbol with such jumps (a character-level alignment moves one or two symbols a step)."""
    mean_stay = steps / max(n_symbols, 1)
    return granularity["largest_jump"] > max_jump or granularity["longest_stay"] > max(4 * mean_stay, 8)


@torch.no_grad()
def teacher_forced_error(model: torch.nn.Module, text: torch.Tensor, mel: torch.Tensor,
                         inputs: Optional[torch.Tensor] = None) -> float:
    """Mean squared error of the postnet output against the teacher log-mel (n_mel, T), given its frames
    (or other frames `inputs` (n_mel, T) as the decoder's previous frames)."""
    device = next(model.parameters()).device
    r = model.n_frames_per_step
    T = mel.size(1)
    padded = torch.nn.functional.pad(mel if inputs is None else inputs, (0, (-T) % r))[None].to(device)
    lengths = torch.tensor([len(text)], device=device)
    out = model((text[None].long().to(device), lengths, padded, padded.size(2),
                 torch.tensor([T], device=device)))
    return float(((out[1][0, :, :T].float().cpu() - mel.float()) ** 2).mean())


def text_only_error(model: torch.nn.Module, text: torch.Tensor, mel: torch.Tensor) -> float:
    """The teacher-forced error when every previous frame the decoder is given is the sentence's mean frame:
    what the model can say from the text (through the attention) alone. A decoder that only extends its previous
    frame, the cause of an averaged hum when it runs free, scores about each band's mean error here (~4.5 on the
    espeak corpora) however good its ordinary teacher-forced error."""
    return teacher_forced_error(model, text, mel, mel.mean(dim=1, keepdim=True).expand_as(mel))


@torch.no_grad()
def prenet_alive(model: torch.nn.Module, mels: Sequence[torch.Tensor]) -> List[float]:
    """Per prenet layer, the share of its ReLU units that fire on at least one of the teacher's decoder steps
    (`mels`: (n_mel, T) each, grouped r frames a step as the decoder reads them). A unit that fires on no frame
    gets no gradient and never fires again: a prenet with none left passes the decoder nothing of its previous
    frame, which then says only what the text allows (its teacher-forced and text-only errors become equal)."""
    device = next(model.parameters()).device
    r = model.n_frames_per_step
    steps = [m[:, :m.size(1) // r * r].T.reshape(-1, r * m.size(0)) for m in mels]  # (T / r, r n_mel) each
    x = torch.cat(steps).float().to(device)
    shares = []
    for layer in model.decoder.prenet.layers:
        x = torch.relu(layer(x))
        shares.append(float((x > 0).any(dim=0).float().mean()))
    return shares


def health(model: torch.nn.Module, dataset, n: int = 8, dying: float = 1 / 8) -> Tuple[Dict[str, float], List[str]]:
    """After an epoch: the share of live prenet units in its emptiest layer on n validation sentences, and a
    warning when it falls below `dying` (the demo's recipe on seed 2 lost all 32 of its first layer's units in
    its first epochs, and trained 30 minutes without learning to speak; its good runs keep a quarter or more)."""
    shares = prenet_alive(model, [dataset[i][1] for i in range(min(n, len(dataset)))])
    weakest = min(shares)
    problems = []
    if weakest < dying:
        layer = shares.index(weakest)
        width = model.decoder.prenet.layers[layer].linear_layer.out_features
        problems.append(f"the decoder's prenet is dying: {round(weakest * width)} of the {width} units of its layer "
                        f"{layer + 1} fire on any frame of {min(n, len(dataset))} validation sentences. A unit that "
                        "never fires never learns again, and a prenet without any passes the decoder nothing of "
                        "its previous frame: the model will not learn to speak. Restart with the prenet's steps "
                        "scaled down (--lr-scale decoder.prenet=0.1), a learning-rate warm-up (--warmup-steps 200), "
                        "a lower -lr, or another --seed.")
    return {"val_prenet_alive": weakest}, problems


def summarize(rows: Sequence[Dict[str, float]], stop_tolerance: float = 0.10) -> Dict[str, float]:
    """Means over sentences plus the share of sentences whose length is within the tolerance."""
    keys = ("diagonality", "focus", "stop_ratio", "mcd_dtw", "contrast", "teacher_forced_mse", "text_only_mse",
            "longest_stay", "largest_jump")
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out["staircase"] = int(sum(r["staircase"] for r in rows))
    out["stop_within_10pct"] = float(np.mean([abs(r["stop_ratio"] - 1.0) <= stop_tolerance for r in rows]))
    out["reached_max"] = int(sum(r["reached_max"] for r in rows))
    out["n"] = len(rows)
    return out


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset, limit: Optional[int] = None, plot_dir: Optional[str] = None,
             prenet_dropout: bool = True, seed: int = 0, keep_tensors: bool = False,
             decode: Optional[Callable] = None) -> List[Dict[str, object]]:
    """Per-sentence metrics of greedy synthesis against the teacher mels (`decode`: a decoding strategy for
    `Tacotron2.generate`, e.g. a FastDecoder's infer; None: the model's own step).

    By default the prenet dropout stays on, as at inference (a model trained with it can behave
    differently without it); the draws come from the generators seeded with `seed`, and every global
    generator (the CPU's and the model's GPU's) is left as it was, so that training continues unchanged.
    """
    model.eval()
    device = next(model.parameters()).device
    r = model.n_frames_per_step
    rows = []
    n = len(dataset) if limit is None else min(limit, len(dataset))
    # the draws come from the generators of the model's device, forked: training continues unchanged
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            model.using(prenet_dropout=prenet_dropout):
        torch.manual_seed(seed)
        for i in range(n):
            text, teacher = dataset[i][:2]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = model.generate(text[None].long().to(device), torch.tensor([len(text)], device=device),
                                     decode=decode)
            length = int(out.mel_lengths[0])
            steps = max(1, -(-max(length, 1) // r))
            align = out.alignments[0, :steps, :len(text)].float().cpu()
            mel = out.mel_outputs_postnet[0, :, :max(length, 1)].float().cpu()
            entry = dataset.entries[i]
            granularity = attention_granularity(align)
            row = {"id": os.path.splitext(os.path.basename(entry.path))[0], "text": entry.fields[0],
                   "diagonality": diagonality(align), "focus": focus(align),
                   "stop_ratio": length / teacher.size(1), "mcd_dtw": mcd_dtw(mel.numpy(), teacher.numpy()),
                   "contrast": contrast_ratio(mel.numpy(), teacher.numpy()),
                   "teacher_forced_mse": teacher_forced_error(model, text, teacher),
                   "text_only_mse": text_only_error(model, text, teacher), **granularity,
                   "staircase": is_staircase(granularity, len(text), steps),
                   "reached_max": bool(out.reached_max[0]), "frames": length, "teacher_frames": int(teacher.size(1))}
            if keep_tensors:
                row.update(alignment=align, mel=mel)
            rows.append(row)
            if plot_dir:
                plot_comparison(teacher, mel, align, os.path.join(plot_dir, f"sentence_{row['id']}.png"), row["text"])
    return rows


def format_table(rows: List[Dict[str, object]], summary: Dict[str, float]) -> str:
    head = (f"{'id':<10} {'diag':>6} {'focus':>6} {'stop':>6} {'MCD':>6} {'contr':>6} {'TF-MSE':>6} {'text':>6} "
            f"{'stay':>5} {'jump':>5} {'max?':>5}  text")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['id']:<10} {r['diagonality']:6.3f} {r['focus']:6.3f} {r['stop_ratio']:6.3f} "
                     f"{r['mcd_dtw']:6.2f} {r['contrast']:6.2f} {r['teacher_forced_mse']:6.2f} "
                     f"{r['text_only_mse']:6.2f} {r['longest_stay']:5d} {r['largest_jump']:5d} "
                     f"{'yes' if r['reached_max'] else 'no':>5}  {str(r['text'])[:40]}")
    lines.append("-" * len(head))
    lines.append(f"{'mean':<10} {summary['diagonality']:6.3f} {summary['focus']:6.3f} {summary['stop_ratio']:6.3f} "
                 f"{summary['mcd_dtw']:6.2f} {summary['contrast']:6.2f} {summary['teacher_forced_mse']:6.2f} "
                 f"{summary['text_only_mse']:6.2f} {summary['longest_stay']:5.1f} {summary['largest_jump']:5.1f} "
                 f"{summary['reached_max']:>5}  stop within ±10 %: {summary['stop_within_10pct'] * 100:.0f} % of "
                 f"{summary['n']}; word-level staircases: {summary['staircase']}")
    return "\n".join(lines)


def score(model: torch.nn.Module, dataset, n: int):
    """Summary metrics of free-running synthesis of the first n items of a TextMelLoader, and a
    picture of the first item's alignment and mel: ({name: value}, {name: figure})."""
    rows = evaluate(model, dataset, limit=n, keep_tensors=True)
    first = rows[0]
    figure = alignment_figure(first["alignment"], first["mel"], first["text"])
    summary = summarize(rows)
    return {f"val_{k}": v for k, v in summary.items() if k != "n"}, {"val_alignment": figure}
