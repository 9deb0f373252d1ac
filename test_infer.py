"""Latency of end-to-end synthesis over repeated runs, as the seed's test_infer.py measures it.

    python test_infer.py --tacotron2 T2.pt --waveglow WG.pt -bs 1 -il 128 --num-iters 1003 [--amp-run]
    bash test_infer.sh -bs 1 -il 128 -p amp --num-iters 1003 --tacotron2 T2.pt --waveglow WG.pt

The input is one fixed sentence cut to --input-length characters, repeated --batch-size times (the seed's
interface); `-i FILE` times the phrases of a file instead. The first --warmup iterations (3, as in the
seed: `--num-iters 1003` measures 1000) are not counted. A run's latency is Tacotron 2 + WaveGlow +
denoiser, as the seed times it; the seed's stdout lines (`Latency average (seconds) = ...`, read by
test_infer.sh) come first, then the seed README's table with RTF. Without checkpoints, default-size
models with random weights are timed (a gate that never fires: every run decodes --max-decoder-steps).
"""
import argparse
import sys
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

import models
from common.checkpoint import CheckpointError
from common.dllog import RunLogger
from common.cpu.host_memory import keep_freed_memory
from common.timing import first_item_seconds
from hifigan.weights import VocoderUnavailable
from synthesis import (InputError, Phrase, Synthesizer, add_inference_flags, check_audio_flags, check_precision_flags,
                       read_phrases, run_figures, synthesizer_from_flags, text_frontend)
from tacotron2.model import Tacotron2
from tacotron2.text.frontend import FrontendError, TextFrontend
from common.flag_types import COUNT, COUNT0, SEED
from vocoders import VocoderMismatch
from waveglow.model import WaveGlow
from common.output import check_outputs

# the seed's benchmark sentence (LJSpeech's first transcript, twice), cut to --input-length characters
SENTENCE = ("The forms of printed letters should be beautiful, and that their arrangement on the page should be "
            "reasonable and a help to the shapeliness of the letters themselves. ") * 2
COLUMNS = ["Batch size", "Input length", "Precision", "Avg latency (s)", "Latency std (s)",
           "Latency confidence interval 50% (s)", "Latency confidence interval 90% (s)",
           "Latency confidence interval 95% (s)", "Latency confidence interval 99% (s)",
           "Latency confidence interval 100% (s)", "Throughput (samples/sec)", "Avg mels generated",
           "Avg audio length (s)", "Avg RTF"]


def confidence_level(latencies: Sequence[float], q: float) -> float:
    """The seed's "latency confidence interval q": the largest of the fastest int(n * q) runs."""
    ordered = sorted(latencies)
    return ordered[max(int(len(ordered) * q), 1) - 1]


def latency_stats(latencies: Sequence[float], samples: Sequence[int], mels: Sequence[int],
                  sampling_rate: int) -> Dict[str, float]:
    """Summary statistics of repeated runs (each with its latency, audio samples and mel frames), with the
    seed's definitions: population std, confidence levels as `confidence_level`."""
    lat = np.asarray(latencies, dtype=np.float64)
    audio_s = np.asarray(samples, dtype=np.float64) / sampling_rate
    return {"avg_latency": float(lat.mean()), "std_latency": float(lat.std()),
            **{f"p{q}": confidence_level(latencies, q / 100) for q in (50, 90, 95, 99, 100)},
            "throughput": float(np.mean(np.asarray(samples) / lat)), "avg_mels": float(np.mean(mels)),
            "avg_audio_s": float(audio_s.mean()), "avg_rtf": float(np.mean(audio_s / lat))}


def seed_lines(stats: Dict[str, float]) -> List[str]:
    """The seed's stdout summary, which its test_infer.sh greps (`awk -F'= '`)."""
    return [f"Throughput average (samples/sec) = {stats['throughput']:.4f}",
            f"Number of mels per audio average = {stats['avg_mels']}",
            f"Latency average (seconds) = {stats['avg_latency']:.4f}",
            f"Latency std (seconds) = {stats['std_latency']:.4f}",
            *[f"Latency cl {q} (seconds) = {stats[f'p{q}']:.4f}" for q in (50, 90, 95, 99, 100)]]


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--tacotron2", default=None, help="checkpoint (random default-size weights when omitted)")
    parser.add_argument("--waveglow", default=None, help="checkpoint (random weights when omitted)")
    parser.add_argument("--wn-channels", type=COUNT, default=256, help="WN channels of a random WaveGlow")
    parser.add_argument("-bs", "--batch-size", type=COUNT, default=1, help="copies of the sentence in a batch")
    parser.add_argument("-il", "--input-length", type=COUNT, default=64, help="characters of the sentence")
    parser.add_argument("-i", "--input", default=None, help="time this phrase file instead (one batch)")
    parser.add_argument("-n", "--num-iters", type=COUNT, default=10, help="runs, the warm-up ones included")
    parser.add_argument("--warmup", type=COUNT0, default=3, help="first runs not counted")
    add_inference_flags(parser, default_vocoder="waveglow")
    parser.add_argument("--cpu", "--cpu-run", dest="cpu", action="store_true")
    parser.add_argument("--max-decoder-steps", type=COUNT, default=None)
    parser.add_argument("--log-file", default="nvlog.json", help="DLLogger JSON-stream log of every run")
    parser.add_argument("--seed", type=SEED, default=1234)
    parser.add_argument("--first-chunk", action="store_true",
                        help="also time, for the batch's first phrase, how long until the first audio chunk is ready "
                             "when streaming (Synthesizer.stream), averaged over the counted runs")
    args = parser.parse_args(argv)
    check_outputs(parser, files=[("--log-file", args.log_file)])
    if args.num_iters <= args.warmup:
        parser.error(f"--num-iters {args.num_iters} leaves no run after --warmup {args.warmup}")
    if args.input_length < 1 or args.input_length > len(SENTENCE.strip()):
        parser.error(f"--input-length must be 1..{len(SENTENCE.strip())}")
    return args


def sentence_batch(batch_size: int, input_length: int, frontend: TextFrontend) -> List[Phrase]:
    """The seed's sentence cut to input_length characters (of plain text: a phoneme model gets its phonemes)."""
    text = SENTENCE[:input_length]
    return [Phrase(i, text, sequence) for i, sequence in enumerate(frontend.sequences([text]) * batch_size)]


def load_models(args, device: torch.device) -> Tuple[Tacotron2, Optional[WaveGlow]]:
    overrides = {"max_decoder_steps": args.max_decoder_steps} if args.max_decoder_steps else {}
    if args.tacotron2:
        t2, _ = models.load_model(args.tacotron2, "Tacotron2", device, overrides)
    else:
        # random weights: a gate that never fires, so every run decodes exactly --max-decoder-steps frames
        t2 = models.get_model("Tacotron2", {"gate_threshold": 2.0, **overrides}, device).eval()
    check_audio_flags(args, t2)
    check_precision_flags(args, device)
    wg = None
    if args.vocoder == "waveglow":
        if args.waveglow:
            wg, _ = models.load_model(args.waveglow, "WaveGlow", device)
        else:
            cfg = {"WN_config": {"n_layers": 8, "kernel_size": 3, "n_channels": args.wn_channels}}
            wg = models.get_model("WaveGlow", cfg, device).eval()
    return t2, wg


def build(args, t2: Tacotron2, wg: Optional[WaveGlow], device: torch.device, batch_size: int = 1) -> Synthesizer:
    return synthesizer_from_flags(args, t2, wg, device, batch_size)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    keep_freed_memory(device)
    try:
        t2, wg = load_models(args, device)
        frontend = text_frontend(t2, args.text_frontend)
        if args.input:
            phrases = read_phrases(args.input, frontend)
        else:
            phrases = sentence_batch(args.batch_size, args.input_length, frontend)
        synth = build(args, t2, wg, device, batch_size=len(phrases))
        synth.report_fast_paths()
    except (InputError, CheckpointError, FrontendError, VocoderMismatch, VocoderUnavailable) as e:
        sys.exit(f"error: {e}")
    logger = RunLogger(args.log_file) if args.log_file else None
    if logger:
        logger.parameters({**vars(args), "model_name": "Tacotron2_PyT"})
    latencies, samples, mels = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in tqdm(range(args.num_iters), desc="runs", disable=args.num_iters < 20 or not sys.stderr.isatty()):
            result = synth(phrases)
            if i < args.warmup:
                continue
            figures = run_figures(result)
            latencies.append(result["latency"])
            samples.append(figures["num_samples"])
            mels.append(int(result["mel_lengths"].max()))
            if logger:
                logger.log((i - args.warmup,), {
                    **{k: figures[k] for k in ("latency", "tacotron2_latency", "waveglow_latency",
                                               "tacotron2_items_per_sec", "waveglow_items_per_sec")},
                    "num_mels_per_audio": mels[-1], "throughput": figures["num_samples"] / result["latency"]})
    stats = latency_stats(latencies, samples, mels, synth.vocoder.audio.sampling_rate)
    if args.first_chunk:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats["first_chunk"] = first_item_seconds(lambda: synth.stream(phrases[0]), device,
                                                      args.num_iters - args.warmup)
    row = {"batch_size": len(phrases), "input_length": int(np.mean([len(p.text) for p in phrases])),
           "precision": synth.precision_label(), **stats}
    print("\n".join(seed_lines(stats)))
    if "first_chunk" in stats:
        print(f"Time to the first audio chunk, streaming (seconds) = {stats['first_chunk']:.4f}")
    print(format_table([row]))
    if logger:
        logger.log((), {k: v for k, v in row.items()})
        logger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
