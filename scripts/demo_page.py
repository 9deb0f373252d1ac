"""Write OUT/index.html: one static page (no server, no script) to listen to and look at a demo run.

    python -m scripts.demo_page OUT

Reads what scripts/demo.sh leaves in OUT: the training logs (OUT/tacotron2/nvlog.json, OUT/waveglow/nvlog.json),
and the evaluations of the held-out sentences (OUT/eval) and of the demo phrases (OUT/phrases_eval) written by
`scripts.evaluate_tacotron2 --audio --calibrate`. For every sentence the page has players for the teacher's
recording, Tacotron 2 + Griffin-Lim and Tacotron 2 + WaveGlow, the teacher's and the model's mels side by side
with the attention, and the sentence's metrics; at the top the summary, the calibration table and the training
curves (OUT/curves.png, drawn here from the logs). Every file the page names is relative to OUT.
"""
import argparse
import html
import json
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.demo_page OUT")

from common.dllog import read_log  # noqa: E402

Curve = Dict[str, List[Tuple[float, float]]]  # metric -> [(minutes, value)]

PLAYERS = (("teacher", "teacher (espeak-ng)"), ("griffin_lim", "Tacotron 2 + Griffin-Lim"),
           ("waveglow", "Tacotron 2 + WaveGlow"))
SENTENCE_METRICS = (("mcd_dtw", "MCD-DTW", "{:.1f}"), ("contrast", "contrast", "{:.2f}"),
                    ("stop_ratio", "length / teacher", "{:.2f}"), ("teacher_forced_mse", "teacher-forced MSE", "{:.2f}"),
                    ("largest_jump", "largest attention jump", "{}"), ("diagonality", "diagonality", "{:.2f}"))


def read_curves(path: str) -> Curve:
    """Per-epoch metrics of a training log against the minutes since the run started (resumed runs continue)."""
    curves: Curve = {}
    if not os.path.exists(path):
        return curves
    offset, last = 0.0, 0.0
    for record in read_log(path):
        if record.get("type") != "LOG" or not isinstance(record.get("step"), list) or len(record["step"]) != 1:
            continue
        elapsed = float(record.get("elapsedtime", 0.0))
        if elapsed + offset < last:  # a resumed run's clock starts again
            offset = last
        minutes = (elapsed + offset) / 60.0
        last = elapsed + offset
        for key, value in record["data"].items():
            if isinstance(value, (int, float)):
                curves.setdefault(key, []).append((minutes, float(value)))
    return curves


FREE_RUNNING_KEYS = ("val_mcd_dtw", "val_contrast")  # validation metrics of free-running synthesis


def split_capped(curve: Curve, key: str) -> Tuple[List[Tuple[float, float]], List[Tuple[float, float]]]:
    """curve[key]'s points as (those of validations where no sentence reached the decoder's step cap, those where
    some did). A model that never stops is scored on a mel cut at the cap, which is no measure of its speech:
    the first validation of a run can score a deceptively low MCD that way."""
    points = curve.get(key, [])
    if key not in FREE_RUNNING_KEYS:
        return points, []
    capped_at = {m for m, v in curve.get("val_reached_max", []) if v > 0}
    return [p for p in points if p[0] not in capped_at], [p for p in points if p[0] in capped_at]


def plot_curves(tacotron2: Curve, waveglow: Curve, calibration: Dict[str, Dict[str, float]], path: str) -> bool:
    """Training curves against minutes: both models' losses, and MCD-DTW and contrast of both models' validation
    synthesis beside the calibration rows. False when there is nothing to draw."""
    if not tacotron2 and not waveglow:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    panels = ((axes[0, 0], "loss", (("Tacotron 2 train", tacotron2, "train_loss"),
                                    ("Tacotron 2 validation", tacotron2, "val_loss"))),
              (axes[0, 1], "WaveGlow loss (−log-likelihood)", (("train", waveglow, "train_loss"),
                                                                 ("validation", waveglow, "val_loss"))),
              (axes[1, 0], "MCD-DTW against the teacher (lower is better)",
               (("Tacotron 2 free-running", tacotron2, "val_mcd_dtw"), ("WaveGlow resynthesis", waveglow, "val_mcd_dtw"))),
              (axes[1, 1], "contrast against the teacher (1 = as much detail)",
               (("Tacotron 2 free-running", tacotron2, "val_contrast"), ("WaveGlow resynthesis", waveglow, "val_contrast"))))
    for ax, title, lines in panels:
        for label, curve, key in lines:
            kept, capped = split_capped(curve, key)
            if kept:
                ax.plot(*zip(*kept), marker=".", label=label)
            if capped:
                ax.plot(*zip(*capped), ls="none", marker="x", color="gray", label=f"{label}: some at the step cap")
        ax.set(title=title, xlabel="minutes of training")
    rows = (("teacher_griffin_lim", "teacher mel + Griffin-Lim", "gray"), ("en_gb_voice", "en-gb voice", "red"))
    for key, label, colour in rows:
        if key in calibration:
            axes[1, 0].axhline(calibration[key]["mcd_dtw"], ls="--", color=colour, label=label)
            axes[1, 1].axhline(calibration[key]["contrast"], ls="--", color=colour, label=label)
    for ax in axes.flat:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def sentence_section(out_dir: str, folder: str, title: str) -> str:
    """One block per sentence of OUT/folder/metrics.json: players, the mel comparison, the metrics."""
    path = os.path.join(out_dir, folder, "metrics.json")
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    parts = [f"<h2>{html.escape(title)}</h2>"]
    for row in result["sentences"]:
        sid = row["id"]
        players = []
        for key, label in PLAYERS:
            wav = f"{folder}/{sid}_{key}.wav"
            if os.path.exists(os.path.join(out_dir, wav)):
                players.append(f'<figure><figcaption>{html.escape(label)}</figcaption>'
                               f'<audio controls preload="metadata" src="{html.escape(wav)}"></audio></figure>')
        figures = ""
        picture = f"{folder}/sentence_{sid}.png"
        if os.path.exists(os.path.join(out_dir, picture)):
            figures = f'<img src="{html.escape(picture)}" alt="mels of {html.escape(sid)}" width="640">'
        numbers = "; ".join(f"{label} {fmt.format(row[key])}" for key, label, fmt in SENTENCE_METRICS if key in row)
        parts.append(f'<div class="sentence"><h3>{html.escape(sid)}: {html.escape(str(row.get("sentence", row["text"])))}</h3>'
                     f'<div class="players">{"".join(players)}</div><p>{html.escape(numbers)}</p>{figures}</div>')
    return "\n".join(parts)


def summary_section(out_dir: str) -> Tuple[str, Dict[str, Dict[str, float]]]:
    path = os.path.join(out_dir, "eval", "metrics.json")
    if not os.path.exists(path):
        return "", {}
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    s = result["summary"]
    rows = [["sentences", f"{s['n']}"], ["MCD-DTW (the model's mel vs the teacher's)", f"{s['mcd_dtw']:.1f}"],
            ["contrast", f"{s['contrast']:.2f}"], ["stop within ±10 %", f"{100 * s['stop_within_10pct']:.0f} %"],
            ["at the step cap", f"{s['reached_max']}"], ["word-level staircases", f"{s['staircase']}"],
            ["teacher-forced MSE", f"{s['teacher_forced_mse']:.2f}"], ["diagonality", f"{s['diagonality']:.2f}"]]
    parts = ["<h2>Held-out summary</h2>", _table(["metric", "value"], rows)]
    calibration = result.get("calibration", {})
    if calibration:
        from scripts.evaluate_tacotron2 import CALIBRATION_LABELS
        cal_rows = [[label, f"{calibration[k]['mcd_dtw']:.1f}", f"{calibration[k]['contrast']:.2f}"]
                    for k, label in CALIBRATION_LABELS.items() if k in calibration]
        parts += ["<h2>Calibration (measured from wavs, one definition for every row)</h2>",
                  _table(["against the espeak-ng teacher", "MCD-DTW", "contrast"], cal_rows)]
    return "\n".join(parts), calibration


def write_page(out_dir: str, title: str = "Tacotron 2 + WaveGlow demo") -> str:
    """Write OUT/curves.png and OUT/index.html; returns the page's path."""
    summary, calibration = summary_section(out_dir)
    curves = ""
    if plot_curves(read_curves(os.path.join(out_dir, "tacotron2", "nvlog.json")),
                   read_curves(os.path.join(out_dir, "waveglow", "nvlog.json")), calibration,
                   os.path.join(out_dir, "curves.png")):
        curves = '<h2>Training curves</h2><img src="curves.png" alt="training curves" width="880">'
    body = "\n".join(x for x in (summary, curves, sentence_section(out_dir, "eval", "Held-out sentences"),
                                 sentence_section(out_dir, "phrases_eval", "Demo phrases")) if x)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<style>body{{font-family:sans-serif;max-width:960px;margin:auto}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px}} .players{{display:flex;gap:12px}} figure{{margin:0}}
.sentence{{border-top:1px solid #ddd;margin-top:16px}}</style></head>
<body><h1>{html.escape(title)}</h1>
{body}
</body></html>
"""
    path = os.path.join(out_dir, "index.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="the demo's output folder")
    args = parser.parse_args(argv)
    print(f"wrote {write_page(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
