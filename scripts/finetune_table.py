"""The table of scripts/finetune_demo.sh: minutes of the new voice's data x fine-tuned or from scratch.

    python -m scripts.finetune_table OUT --data-minutes 2 5 10

Reads OUT/eval/<run>/metrics.json (judged on the new voice's held-out sentences, with the listeners) and
OUT/eval/<run>_old_voice/metrics.json (the same sentences spoken by the base model's voice) for the runs `base`,
`finetuned_<m>min` and `scratch_<m>min`, and the calibration rows of `base` (the new voice's teacher, its mel
through Griffin-Lim, a hum, other voices). Prints one markdown table, and where the base model was also heard in
its own voice (`base_old_voice` judged with the listeners) that WER and the fine-tune's target beside it.
"""
import argparse
import json
import os
import sys

COLUMNS = ("WER", "CER", "DNSMOS OVRL", "MCD-DTW vs new voice", "contrast", "MCD-DTW vs old voice",
           "stop within ±10 %", "at the step cap")


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_row(out: str, name: str, label: str) -> str:
    new = _load(os.path.join(out, "eval", name, "metrics.json"))
    old = _load(os.path.join(out, "eval", f"{name}_old_voice", "metrics.json"))["summary"]
    heard, s = new["calibration"]["model_griffin_lim"], new["summary"]
    cells = [f"{heard['wer']:.2f}", f"{heard['cer']:.2f}", f"{heard['ovrl']:.2f}", f"{heard['mcd_dtw']:.1f}",
             f"{heard['contrast']:.2f}", f"{old['mcd_dtw']:.1f}", f"{100 * s['stop_within_10pct']:.0f} %",
             f"{s['reached_max']}"]
    return f"| {label} | " + " | ".join(cells) + " |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="the fine-tuning demo's output folder")
    parser.add_argument("--data-minutes", nargs="+", default=["2", "5", "10"])
    args = parser.parse_args(argv)
    lines = ["| model (Griffin-Lim) | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS),
             run_row(args.output, "base", "the base model (old voice only)")]
    for m in args.data_minutes:
        for start, label in (("finetuned", "fine-tuned from the base"), ("scratch", "from scratch")):
            name = f"{start}_{m}min"
            if os.path.exists(os.path.join(args.output, "eval", name, "metrics.json")):
                lines.append(run_row(args.output, name, f"{m} min of the new voice, {label}"))
    own = _load(os.path.join(args.output, "eval", "base_old_voice", "metrics.json")).get("calibration", {})
    if "model_griffin_lim" in own:
        heard = own["model_griffin_lim"]
        lines += ["", f"The base model in its own voice, on the same sentences: WER {heard['wer']:.2f}, CER "
                      f"{heard['cer']:.2f}, DNSMOS OVRL {heard['ovrl']:.2f}; a fine-tune's target: WER <= "
                      f"{heard['wer'] + 0.10:.2f} (within 0.10 of it)."]
    calibration = _load(os.path.join(args.output, "eval", "base", "metrics.json")).get("calibration", {})
    lines += ["", "| calibration, against the new voice's teacher | WER | CER | DNSMOS OVRL | MCD-DTW |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {row['label']} | {row['wer']:.2f} | {row['cer']:.2f} | {row['ovrl']:.2f} | {row['mcd_dtw']:.1f} |"
              for key, row in calibration.items() if not key.startswith("model")]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
