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

from common.dllog import Curve, read_curves  # noqa: E402
from common.listeners import SCORE_COLUMNS  # noqa: E402
from common.output import check_outputs  # noqa: E402

PLAYERS = (("teacher", "teacher"), ("griffin_lim", "Tacotron 2 + Griffin-Lim"),
           ("hifigan", "Tacotron 2 + HiFi-GAN V1 (the published universal generator, not a WaveGlow)"),
           ("waveglow", "Tacotron 2 + WaveGlow"))
SENTENCE_METRICS = (("mcd_dtw", "MCD-DTW", "{:.1f}"), ("contrast", "contrast", "{:.2f}"),
                    ("stop_ratio", "length / teacher", "{:.2f}"), ("teacher_forced_mse", "teacher-forced MSE", "{:.2f}"),
                    ("largest_jump", "largest attention jump", "{}"), ("diagonality", "diagonality", "{:.2f}"))


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


def plot_curves(tacotron2: Curve, waveglow: Curve, calibration: Dict[str, Dict[str, float]], path: str,
                heard: Curve = None) -> bool:
    """Training curves against minutes: both models' losses (without a WaveGlow stage, what the recogniser
    understood of the checkpoints instead: `heard`, from listen_curve.json), and MCD-DTW and contrast of both
    models' validation synthesis beside the calibration rows. False when there is nothing to draw."""
    if not tacotron2 and not waveglow:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    if waveglow or not heard:
        second = ("WaveGlow loss (−log-likelihood)", (("train", waveglow, "train_loss"),
                                                       ("validation", waveglow, "val_loss")))
    else:
        second = ("the checkpoints through Griffin-Lim, held-out sentences",
                  (("recogniser WER", heard, "wer"), ("CER", heard, "cer"), ("DNSMOS OVRL / 5", heard, "ovrl_5")))
        floor = calibration.get("teacher_griffin_lim", {})
        if "wer" in floor:
            axes[0, 1].axhline(floor["wer"], ls="--", color="gray", label="WER of the teacher's mel through Griffin-Lim")
    panels = ((axes[0, 0], "loss", (("Tacotron 2 train", tacotron2, "train_loss"),
                                    ("Tacotron 2 validation", tacotron2, "val_loss"))),
              (axes[0, 1], *second),
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
    # the vocoder's floor and the other voices: where a model that speaks should lie below
    references = [k for k in calibration if k == "teacher_griffin_lim" or not k.startswith(("teacher", "model", "hum"))]
    for key, colour in zip(references, ("gray", "red", "orange")):
        label = calibration[key].get("label", key)
        axes[1, 0].axhline(calibration[key]["mcd_dtw"], ls="--", color=colour, label=label.split(":")[0][:48])
        axes[1, 1].axhline(calibration[key]["contrast"], ls="--", color=colour, label=label.split(":")[0][:48])
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
        heard = "".join(f"<li>{html.escape(key.replace('_', ' '))}: “{html.escape(s['heard'])}” (WER {s['wer']:.2f}, "
                        f"DNSMOS {s['ovrl']:.2f})</li>"
                        for key, s in row.get("signals", {}).items() if key.startswith(("teacher", "model")) and "heard" in s)
        heard = f"<p>what the recogniser heard:</p><ul>{heard}</ul>" if heard else ""
        parts.append(f'<div class="sentence"><h3>{html.escape(sid)}: {html.escape(str(row.get("sentence", row["text"])))}</h3>'
                     f'<div class="players">{"".join(players)}</div><p>{html.escape(numbers)}</p>{heard}{figures}</div>')
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
        columns = [(k, name, fmt) for k, name, fmt in SCORE_COLUMNS if any(k in r for r in calibration.values())]
        cal_rows = [[row["label"], *(fmt.format(row[k]) if k in row else "" for k, _, fmt in columns)]
                    for row in calibration.values()]
        parts += ["<h2>Calibration (every row measured from its wav, one definition for all)</h2>",
                  _table(["against the teacher", *(name for _, name, _ in columns)], cal_rows)]
    return "\n".join(parts), calibration


def targets(result: dict) -> List[Tuple[str, str, bool]]:
    """(target, what was measured, met) for the model through Griffin-Lim on the held-out sentences, against the
    calibration rows measured the same way."""
    cal, s = result.get("calibration", {}), result["summary"]
    model, floor = cal.get("model_griffin_lim", {}), cal.get("teacher_griffin_lim", {})
    others = {k: r for k, r in cal.items() if not k.startswith(("teacher", "model", "hum"))}
    out = []
    if "wer" in model and "wer" in floor:
        out.append(("recogniser WER at most 0.10 above the teacher's mel through Griffin-Lim",
                    f"{model['wer']:.2f} against {floor['wer']:.2f}", model["wer"] <= floor["wer"] + 0.10))
        out.append(("DNSMOS OVRL at most 0.25 below the teacher's mel through Griffin-Lim",
                    f"{model['ovrl']:.2f} against {floor['ovrl']:.2f}", model["ovrl"] >= floor["ovrl"] - 0.25))
    if others and "mcd_dtw" in model:
        nearest = min(r["mcd_dtw"] for r in others.values())
        out.append(("MCD-DTW below every other voice's", f"{model['mcd_dtw']:.1f} against {nearest:.1f}",
                    model["mcd_dtw"] < nearest))
    if "hum" in cal and "mcd_dtw" in model:  # for a real speaker's voice the hum can lie below the other voices
        out.append(("MCD-DTW below the averaged hum's", f"{model['mcd_dtw']:.1f} against {cal['hum']['mcd_dtw']:.1f}",
                    model["mcd_dtw"] < cal["hum"]["mcd_dtw"]))
    out.append(("stop within ±10 % of the teacher's length for ≥ 95 %", f"{100 * s['stop_within_10pct']:.0f} %",
                s["stop_within_10pct"] >= 0.95))
    out.append(("none at the decoder's step cap", f"{s['reached_max']}", s["reached_max"] == 0))
    out.append(("character-level attention (no word-level staircase)", f"{s['staircase']} staircases",
                s["staircase"] == 0))
    return out


def budget_line(out_dir: str) -> str:
    """What the Tacotron 2 stage's budget bought here: minutes, epochs, mels per second, on which CPU."""
    from common.cpu.cpu_features import describe
    curves = read_curves(os.path.join(out_dir, "tacotron2", "nvlog.json"))
    if not curves.get("epoch"):
        return ""
    rates = [v for _, v in curves.get("train_items_per_sec", [])]
    return (f"Tacotron 2: {len(curves['epoch'])} epochs in {curves['epoch'][-1][0]:.0f} minutes, "
            f"{sum(rates) / max(len(rates), 1):,.0f} mels/s, on this machine's CPU ({describe()}, "
            f"{os.cpu_count()} cores)")


def read_listen_curve(out_dir: str) -> Curve:
    """OUT/listen_curve.json as curves against minutes: wer, cer, ovrl_5 (DNSMOS OVRL / 5, on the WER scale)."""
    path = os.path.join(out_dir, "listen_curve.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        points = json.load(f)["points"]
    return {"wer": [(p["minutes"], p["wer"]) for p in points], "cer": [(p["minutes"], p["cer"]) for p in points],
            "ovrl_5": [(p["minutes"], p["ovrl"] / 5) for p in points]}


def listen_curve_section(out_dir: str) -> str:
    path = os.path.join(out_dir, "listen_curve.json")
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        curve = json.load(f)
    rows = [[f"{p['minutes']:.1f}", f"{p['epoch']}", f"{p['wer']:.2f}", f"{p['ovrl']:.2f}", f"{p['mcd_dtw']:.1f}",
             f"{100 * p['stop_within_10pct']:.0f} %"] for p in curve["points"]]
    return (f"<h2>What the checkpoints sounded like ({curve['sentences']} held-out sentences, Griffin-Lim)</h2>"
            + _table(["minutes", "epoch", "recogniser WER", "DNSMOS OVRL", "MCD-DTW", "stop ±10 %"], rows))


WAVEGLOW_NOTE = ("WaveGlow: a CPU budget buys a WaveGlow's learning curve, not a vocoder (users of NVIDIA's report "
                 "audible speech after ~50 k GPU iterations), so the demo trains none by default: the model's mels "
                 "are heard through Griffin-Lim and through HiFi-GAN V1, the published universal generator trained on "
                 "NVIDIA's mel format (not a WaveGlow; nothing of it is trained here). With WG_MINUTES > 0 a WaveGlow "
                 "stage runs and is judged by the same listeners: expect noise shaped by the mel.")


def write_page(out_dir: str, title: str = "Tacotron 2 demo") -> str:
    """Write OUT/curves.png and OUT/index.html; returns the page's path."""
    summary, calibration = summary_section(out_dir)
    eval_path = os.path.join(out_dir, "eval", "metrics.json")
    if os.path.exists(eval_path):
        with open(eval_path, encoding="utf-8") as f:
            rows = [[t, m, "met" if ok else "NOT met"] for t, m, ok in targets(json.load(f))]
        summary = (f"<p>{html.escape(budget_line(out_dir))}</p><p>{html.escape(WAVEGLOW_NOTE)}</p>"
                   + "<h2>Targets</h2>" + _table(["target", "measured", ""], rows) + summary
                   + listen_curve_section(out_dir))
    curves = ""
    if plot_curves(read_curves(os.path.join(out_dir, "tacotron2", "nvlog.json")),
                   read_curves(os.path.join(out_dir, "waveglow", "nvlog.json")), calibration,
                   os.path.join(out_dir, "curves.png"), read_listen_curve(out_dir)):
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
    check_outputs(parser, folders=[("output", args.output)])
    print(f"wrote {write_page(args.output)}")
    eval_path = os.path.join(args.output, "eval", "metrics.json")
    if os.path.exists(eval_path):
        with open(eval_path, encoding="utf-8") as f:
            result = json.load(f)
        print(budget_line(args.output))
        for target, measured, met in targets(result):
            print(f"  {'met    ' if met else 'NOT met'}  {target}: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
