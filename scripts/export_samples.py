"""Copy a few held-out sentences of a demo run into docs/samples/: wavs to hear and pictures to see at once.

    python -m scripts.export_samples demo_output docs/samples [--n 3]

Takes the sentences of OUT/eval/metrics.json that the recogniser understood best, in the middle and worst (by the
model's word error rate through Griffin-Lim; by MCD-DTW where the listeners did not run), and copies for each the
teacher's recording, the model's wavs and the picture of the teacher's mel beside the model's with the attention.
Writes OUT_DIR/README.md: what each file is, what the recogniser heard, the figures.
"""
import argparse
import json
import os
import shutil
import sys
from typing import List
from common.flag_types import COUNT
from common.output import check_outputs

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.export_samples ...")

PLAYERS = (("teacher", "the teacher's recording"), ("griffin_lim", "Tacotron 2 + Griffin-Lim"),
           ("hifigan", "Tacotron 2 + HiFi-GAN V1 (the published universal generator, not a WaveGlow)"),
           ("waveglow", "Tacotron 2 + the demo's WaveGlow"))


def pick(rows: List[dict], n: int) -> List[dict]:
    """n sentences spread from the best to the worst."""
    def key(row):
        model = row.get("signals", {}).get("model_griffin_lim", {})
        return (model.get("wer", 0.0), model.get("mcd_dtw", row["mcd_dtw"]))
    ranked = sorted(rows, key=key)
    if n >= len(ranked):
        return ranked
    return [ranked[round(i * (len(ranked) - 1) / max(n - 1, 1))] for i in range(n)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo_output")
    parser.add_argument("out_dir")
    parser.add_argument("--n", type=COUNT, default=3)
    parser.add_argument("--title", default="Samples of the CPU demo")
    args = parser.parse_args(argv)
    check_outputs(parser, folders=[("out_dir", args.out_dir)])
    with open(os.path.join(args.demo_output, "eval", "metrics.json"), encoding="utf-8") as f:
        result = json.load(f)
    os.makedirs(args.out_dir, exist_ok=True)
    lines = [f"# {args.title}", "", "Held-out sentences (other vocabulary than the training corpus), the best, the "
             "median and the worst by what the recogniser (pocketsphinx) understood of the model through Griffin-Lim. "
             "Each picture shows the teacher's mel, the model's, and the model's attention.", ""]
    for row in pick(result["sentences"], args.n):
        sid = row["id"]
        lines += [f"## {sid}: {row.get('sentence', row['text'])}", ""]
        for key, label in PLAYERS:
            src = os.path.join(args.demo_output, "eval", f"{sid}_{key}.wav")
            if os.path.exists(src):
                shutil.copy(src, os.path.join(args.out_dir, f"{sid}_{key}.wav"))
                heard = row.get("signals", {}).get("teacher" if key == "teacher" else f"model_{key}", {})
                said = f": heard “{heard['heard']}” (WER {heard['wer']:.2f}, DNSMOS {heard['ovrl']:.2f})" \
                    if "heard" in heard else ""
                lines.append(f"- [{label}]({sid}_{key}.wav){said}")
        picture = os.path.join(args.demo_output, "eval", f"sentence_{sid}.png")
        if os.path.exists(picture):
            shutil.copy(picture, os.path.join(args.out_dir, f"sentence_{sid}.png"))
            lines += ["", f"![{sid}: teacher and model mels, attention](sentence_{sid}.png)"]
        lines.append("")
    with open(os.path.join(args.out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"wrote {args.out_dir}/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
