"""Synthesise speech: one wav per line of a text file.

    python inference.py --tacotron2 T2.pt --waveglow WG.pt -i phrases/phrase.txt -o output/ [--amp-run]

    python inference.py --tacotron2 T2.pt --vocoder hifigan -i phrases/phrase.txt -o output/   # no WaveGlow

Without --waveglow the mels are turned into audio by Griffin-Lim, or by HiFi-GAN with --vocoder hifigan.
Plain text reaches the model through the front end it was trained with (its checkpoint says which: letters,
or phonemes from festival or espeak-ng), and the vocoder is built for its audio settings (a vocoder made for
other mels is refused). `audio_<i><suffix>.wav` holds line i of the input (0-based). Everything is checked
(phrase file, checkpoints, every line) before anything is synthesised or written.
"""
import argparse
import dataclasses
import os
import sys
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from common.audio import save_wav
from common.checkpoint import CheckpointError
from common.dllog import RunLogger, log_path
from common.cpu.host_memory import keep_freed_memory
from common.plotting import plot_alignment
from hifigan.weights import VocoderUnavailable
from synthesis import (InputError, Phrase, RunTotals, add_inference_flags, join_pieces,
                       load_models, read_phrases, synthesizer_from_flags)
from tacotron2.model import Tacotron2
from tacotron2.text.frontend import FrontendError
from common.flag_types import COUNT, COUNT0, SEED, NONNEG, GATE_THRESHOLD
from vocoders import VocoderMismatch
from waveglow.model import WaveGlow
from common.output import check_outputs

# a frame is 11.6 ms at NVIDIA's settings; speech takes 5-10 frames a letter, more a phoneme: under one frame a
# symbol the model stopped early
MIN_FRAMES_PER_SYMBOL = 1.0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="PyTorch Tacotron 2 + WaveGlow inference", allow_abbrev=False,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-i", "--input", type=str, required=True, help="text file, one phrase per line")
    parser.add_argument("-o", "--output", type=str, required=True, help="output folder")
    parser.add_argument("--suffix", type=str, default="", help="output file name suffix")
    parser.add_argument("--tacotron2", type=str, required=True, help="Tacotron 2 checkpoint")
    parser.add_argument("--waveglow", type=str, default=None, help="WaveGlow checkpoint")
    parser.add_argument("--wn-channels", type=COUNT, default=None,
                        help="WaveGlow's WN channels, as the seed's commands pass it: checked against the "
                             "checkpoint (whose architecture is read from it, 256 for NVIDIA's published one)")
    add_inference_flags(parser)
    parser.add_argument("--include-warmup", action="store_true",
                        help="before timing, synthesise one batch of each shape (batch size, longest phrase) "
                             "untimed: on a GPU, cuDNN choices and CUDA-graph capture happen there")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                        help="on a GPU, decode without CUDA graphs (same static steps, launched one by one): "
                             "for drivers where graph capture or replay misbehaves")
    parser.add_argument("--log-file", type=str, default="nvlog.json",
                        help="DLLogger JSON-stream log: a bare name goes inside --output, a path as given")
    parser.add_argument("--cpu", "--cpu-run", dest="cpu", action="store_true",
                        help="run on the CPU even when a GPU is present")
    parser.add_argument("-bs", "--batch-size", type=COUNT0, default=0, help="phrases per batch (0: all in one batch)")
    parser.add_argument("--text-cleaners", nargs="*", default=None, type=str,
                        help="text cleaners (default: the checkpoint's training flags', english_cleaners for NVIDIA's)")
    parser.add_argument("--max-decoder-steps", type=COUNT, default=None, help="override the checkpoint's value")
    parser.add_argument("--gate-threshold", type=GATE_THRESHOLD, default=None, help="override the checkpoint's value")
    parser.add_argument("--deterministic", action="store_true",
                        help="prenet dropout off (same text, same audio); the paper keeps it on")
    parser.add_argument("--seed", type=SEED, default=None, help="seed the random generators")
    parser.add_argument("--plot", action="store_true", help="write alignment and mel pictures per phrase")
    parser.add_argument("--max-phrase-chars", type=COUNT0, default=0,
                        help="speak a longer line as pieces of at most this many characters, cut at sentence "
                             "and clause ends, joined in one wav (0: never split; ~180 suits LJSpeech models)")
    parser.add_argument("--pause", type=NONNEG, default=0.15, help="seconds of silence between the pieces of a line")
    args = parser.parse_args(argv)
    check_outputs(parser, folders=[("-o", args.output)],
                  files=[("--log-file", log_path(args.output, args.log_file))])
    return args


def load(args: argparse.Namespace, device: torch.device) -> Tuple[Tacotron2, Optional[WaveGlow], List[Phrase]]:
    """The checkpoints and the phrases through the Tacotron 2's front end, checked before any work."""
    overrides = {k: v for k, v in (("max_decoder_steps", args.max_decoder_steps),
                                   ("gate_threshold", args.gate_threshold)) if v is not None}
    tacotron2, waveglow, frontend = load_models(args, device, overrides)
    if args.text_cleaners is not None:
        frontend = dataclasses.replace(frontend, cleaners=tuple(args.text_cleaners))
    print(f"text front end: {frontend.describe()}", file=sys.stderr)
    return tacotron2, waveglow, read_phrases(args.input, frontend, args.max_phrase_chars)


def warn_implausible(source: str, phrase: Phrase, frames: int, reached_max: bool, max_steps: int,
                     frames_per_step: int) -> None:
    """Name the line of an output that hit the decoder's cap, stopped at once or is far too short for its text."""
    if reached_max:
        print(f"warning: {source}:{phrase.index + 1}: reached max_decoder_steps={max_steps} without stopping; the "
              f"audio may be cut off (split long lines with --max-phrase-chars 180, or raise --max-decoder-steps)",
              file=sys.stderr)
    elif frames <= frames_per_step:
        print(f"warning: {source}:{phrase.index + 1}: the model stopped at its first step ({frames} frames): "
              f"is it trained, and does the text reach it as the symbols it was trained on?", file=sys.stderr)
    elif frames < MIN_FRAMES_PER_SYMBOL * len(phrase.sequence):
        print(f"warning: {source}:{phrase.index + 1}: {frames} frames for {len(phrase.sequence)} symbols is "
              f"implausibly short: the model may have stopped early", file=sys.stderr)


def warm_up(synth, batches: List[List[Phrase]]) -> None:
    """One batch of each shape, so that nothing is prepared inside the timed runs (--include-warmup)."""
    shapes = {}
    for batch in batches:
        shapes.setdefault((len(batch), max(len(p.sequence) for p in batch)), batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for batch in shapes.values():
            synth(batch)


def write_batch(args: argparse.Namespace, tacotron2, batch: List[Phrase], result: Dict, pieces: List[torch.Tensor],
                sampling_rate: int) -> List[torch.Tensor]:
    """A batch's wavs (a line's pieces joined once its last piece is here) and pictures; warnings per line. Returns
    the pieces of a line still waiting for its next piece."""
    for b, phrase in enumerate(batch):
        frames = int(result["mel_lengths"][b])
        warn_implausible(args.input, phrase, frames, bool(result["reached_max"][b]),
                         tacotron2.decoder.max_decoder_steps, tacotron2.n_frames_per_step)
        pieces.append(result["audio"][b])
        if phrase.part == phrase.parts - 1:  # the line's last piece: write the line
            save_wav(os.path.join(args.output, f"audio_{phrase.index}{args.suffix}.wav"),
                     join_pieces(pieces, int(args.pause * sampling_rate)), sampling_rate)
            pieces = []
        if args.plot:
            steps = frames // tacotron2.n_frames_per_step + 1
            name = f"alignment_{phrase.index}" + (f"_{phrase.part}" if phrase.parts > 1 else "")
            plot_alignment(result["alignments"][b, :steps, :len(phrase.sequence)], result["mels"][b, :, :frames],
                           os.path.join(args.output, f"{name}{args.suffix}.png"), phrase.text)
    return pieces


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    keep_freed_memory(device)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    try:
        tacotron2, waveglow, phrases = load(args, device)
    except (InputError, CheckpointError, FrontendError, VocoderMismatch, VocoderUnavailable) as e:
        sys.exit(f"error: {e}")
    except SystemExit as e:  # a phonemizer that is not installed names its package
        sys.exit(str(e.code))
    tacotron2.set_modes(prenet_dropout=not args.deterministic)
    batch_size = args.batch_size or len(phrases)
    synth = synthesizer_from_flags(args, tacotron2, waveglow, device, batch_size, args.cuda_graphs)
    synth.report_fast_paths()
    sampling_rate = synth.vocoder.audio.sampling_rate
    os.makedirs(args.output, exist_ok=True)  # checked writable with the flags; made once the inputs are good
    logger = RunLogger(log_path(args.output, args.log_file))
    logger.parameters({**vars(args), "model_name": "Tacotron2_PyT"})
    batches = [phrases[start:start + batch_size] for start in range(0, len(phrases), batch_size)]
    if args.include_warmup:
        warm_up(synth, batches)
    totals = RunTotals()
    pieces: List[torch.Tensor] = []  # audio of the current line's pieces so far
    for number, batch in enumerate(batches, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported per phrase, by line
            result = synth(batch)
        pieces = write_batch(args, tacotron2, batch, result, pieces, sampling_rate)
        totals.add(result)
        seconds = sum(w.numel() for w in result["audio"]) / sampling_rate
        print(f"batch {number}/{len(batches)}: {len(batch)} phrase(s), {seconds:.1f} s of audio in "
              f"{result['latency']:.1f} s", file=sys.stderr)
    logger.log((), {**totals.summary(sampling_rate), "vocoder": args.vocoder, "device": device.type,
                    "n_phrases": len(phrases)}, echo=True)
    logger.close()
    print(f"wrote {len({p.index for p in phrases})} wav(s) to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
