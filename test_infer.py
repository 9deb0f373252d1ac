"""Latency statistics of end-to-end synthesis over N runs, in the seed README's table layout.

    python test_infer.py --tacotron2 T2.pt --waveglow WG.pt -i phrases/phrase_1_128.txt -n 100 [--amp-run]

Without checkpoints, default-size models with random weights are timed (a stop threshold the gate cannot reach, so
every run decodes --max-decoder-steps frames). Reports average latency, its standard deviation,
latency percentiles 50/90/95/99/100 %, throughput (samples/s), mels generated, audio length and
real-time factor.
"""
import argparse
import sys
import warnings
from typing import Dict, List, Sequence

import numpy as np
import torch

import models
from common.checkpoint import CheckpointError
from common.dllog import RunLogger
from synthesis import InputError, Synthesizer, build_synthesizer, read_phrases

COLUMNS = ["Batch size", "Input length", "Precision", "Avg latency (s)", "Latency std (s)",
           "Latency confidence interval 50% (s)", "Latency confidence interval 90% (s)",
           "Latency confidence interval 95% (s)", "Latency confidence interval 99% (s)",
           "Latency confidence interval 100% (s)", "Throughput (samples/sec)", "Avg mels generated",
           "Avg audio length (s)", "Avg RTF"]


def latency_stats(latencies: Sequence[float], samples: Sequence[int], mels: Sequence[int],
                  sampling_rate: int) -> Dict[str, float]:
    """Summary statistics of repeated runs (each with its latency, audio samples and mel frames)."""
    lat = np.asarray(latencies, dtype=np.float64)
    smp = np.asarray(samples, dtype=np.float64)
    audio_s = smp / sampling_rate
    return {"avg_latency": lat.mean(), "std_latency": lat.std(ddof=1) if lat.size > 1 else 0.0,
            **{f"p{q}": float(np.percentile(lat, q)) for q in (50, 90, 95, 99, 100)},
            "throughput": smp.sum() / lat.sum(), "avg_mels": float(np.mean(mels)),
            "avg_audio_s": audio_s.mean(), "avg_rtf": float(np.mean(audio_s / lat))}


def format_table(rows: List[Dict[str, object]]) -> str:
    """Markdown table with the seed README's columns."""
    lines = ["|" + "|".join(COLUMNS) + "|", "|" + "|".join("---:" for _ in COLUMNS) + "|"]
    for r in rows:
        cells = [r["batch_size"], r["input_length"], r["precision"], f"{r['avg_latency']:.3f}",
                 f"{r['std_latency']:.3f}"] + [f"{r[f'p{q}']:.3f}" for q in (50, 90, 95, 99, 100)] + \
                [f"{r['throughput']:,.0f}", f"{r['avg_mels']:.0f}", f"{r['avg_audio_s']:.2f}", f"{r['avg_rtf']:.2f}"]
        lines.append("|" + "|".join(str(c) for c in cells) + "|")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tacotron2", default=None, help="checkpoint (random default-size weights when omitted)")
    parser.add_argument("--waveglow", default=None, help="checkpoint (random weights when omitted)")
    parser.add_argument("--vocoder", choices=["waveglow", "griffin-lim"], default="waveglow")
    parser.add_argument("--wn-channels", type=int, default=256, help="WN channels of a random WaveGlow")
    parser.add_argument("-i", "--input", default="phrases/phrase_1_128.txt")
    parser.add_argument("-n", "--num-iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--amp-run", "--amp", dest="amp_run", action="store_true")
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--max-decoder-steps", type=int, default=None)
    parser.add_argument("-sr", "--sampling-rate", type=int, default=22050)
    parser.add_argument("--log-file", default=None, help="JSON-lines log of every run and the summary")
    parser.add_argument("--seed", type=int, default=1234)
    return parser.parse_args(argv)


def build(args, device: torch.device, batch_size: int = 1) -> Synthesizer:
    overrides = {"max_decoder_steps": args.max_decoder_steps} if args.max_decoder_steps else {}
    if args.tacotron2:
        t2, _ = models.load_model(args.tacotron2, "Tacotron2", device, overrides)
    else:
        # random weights: a gate that never fires, so every run decodes exactly --max-decoder-steps frames
        t2 = models.get_model("Tacotron2", {"gate_threshold": 2.0, **overrides}, device).eval()
    wg = None
    if args.vocoder == "waveglow":
        if args.waveglow:
            wg, _ = models.load_model(args.waveglow, "WaveGlow", device)
        else:
            cfg = {"WN_config": {"n_layers": 8, "kernel_size": 3, "n_channels": args.wn_channels}}
            wg = models.get_model("WaveGlow", cfg, device).eval()
    return build_synthesizer(t2, wg, device, amp=args.amp_run, sampling_rate=args.sampling_rate,
                             batch_size=batch_size)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    try:
        phrases = read_phrases(args.input, ["english_cleaners"])
        synth = build(args, device, batch_size=len(phrases))
        synth.report_fast_paths()
    except (InputError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    logger = RunLogger(args.log_file) if args.log_file else None
    latencies, samples, mels = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(args.warmup + args.num_iters):
            result = synth(phrases)
            if i < args.warmup:
                continue
            latencies.append(result["latency"])
            samples.append(sum(w.numel() for w in result["audio"]))
            mels.append(int(result["mel_lengths"].float().mean()))
            if logger:
                logger.log((i - args.warmup,), {"latency": result["latency"],
                                                "tacotron2_latency": result["tacotron2_latency"],
                                                "waveglow_latency": result["vocoder_latency"]})
    stats = latency_stats(latencies, samples, mels, args.sampling_rate)
    # on a CPU --amp-run allows bf16 where it is timed faster (synthesis.precision_policy)
    low = "FP16" if device.type == "cuda" else "BF16"
    uses_low = device.type == "cuda" or any("bfloat16" in c for c in synth.chosen_fast_paths().values())
    precision = low if args.amp_run and uses_low else "FP32"
    row = {"batch_size": len(phrases), "input_length": int(np.mean([len(p.text) for p in phrases])),
           "precision": precision, **stats}
    print(format_table([row]))
    if logger:
        logger.log("summary", {k: v for k, v in row.items()})
        logger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
