"""Synthesise speech: one wav per line of a text file.

    python inference.py --tacotron2 T2.pt --waveglow WG.pt -i phrases/phrase.txt -o output/ [--amp-run]

Without --waveglow (or with --vocoder griffin-lim) the mels are turned into audio by Griffin-Lim.
`audio_<i><suffix>.wav` holds line i of the input (0-based). Everything is checked (phrase file,
checkpoints, every line) before anything is synthesised or written.
"""
import argparse
import os
import sys
import time
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch

import models
from common.audio import save_wav
from common.audio_processing import griffin_lim
from common.checkpoint import (CheckpointError, check_model_kind, load_checkpoint_file, load_model_weights,
                               state_dict_from_checkpoint)
from common.dllog import RunLogger
from common.plotting import plot_alignment
from common.layers import TacotronSTFT
from common.stft import STFT
from common.timing import sync
from tacotron2.text import EmptyTextError, text_to_sequence
from tacotron2.text.segment import split_text
from waveglow.denoiser import Denoiser


class InputError(ValueError):
    """A phrase file or line that cannot be synthesised, with file and line named."""


class Phrase(NamedTuple):
    index: int  # 0-based line number: the output is audio_<index>
    text: str
    sequence: List[int]
    part: int = 0  # which piece of a split line (--max-phrase-chars); the pieces' audio is joined
    parts: int = 1


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="PyTorch Tacotron 2 + WaveGlow inference", allow_abbrev=False,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-i", "--input", type=str, required=True, help="text file, one phrase per line")
    parser.add_argument("-o", "--output", type=str, required=True, help="output folder")
    parser.add_argument("--suffix", type=str, default="", help="output file name suffix")
    parser.add_argument("--tacotron2", type=str, required=True, help="Tacotron 2 checkpoint")
    parser.add_argument("--waveglow", type=str, default=None, help="WaveGlow checkpoint (none: Griffin-Lim)")
    parser.add_argument("--vocoder", choices=["waveglow", "griffin-lim"], default=None,
                        help="vocoder (default: waveglow when --waveglow is given)")
    parser.add_argument("-s", "--sigma-infer", default=0.9, type=float, help="WaveGlow latent sigma")
    parser.add_argument("-d", "--denoising-strength", default=0.01, type=float, help="denoiser strength (0: off)")
    parser.add_argument("-sr", "--sampling-rate", default=22050, type=int, help="sampling rate")
    parser.add_argument("--stft-hop-length", type=int, default=256, help="STFT hop length (samples per mel frame)")
    parser.add_argument("--amp-run", "--amp", dest="amp_run", action="store_true",
                        help="fp16 on CUDA; on a CPU bf16 weights wherever they are timed faster than fp32")
    parser.add_argument("--include-warmup", action="store_true",
                        help="before timing, synthesise one batch of each shape (batch size, longest phrase) "
                             "untimed: on a GPU, cuDNN choices and CUDA-graph capture happen there")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                        help="on a GPU, decode without CUDA graphs (same static steps, launched one by one): "
                             "for drivers where graph capture or replay misbehaves")
    parser.add_argument("--log-file", type=str, default="nvlog.json", help="JSON-lines log, inside --output")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is present")
    parser.add_argument("-bs", "--batch-size", type=int, default=0, help="phrases per batch (0: all in one batch)")
    parser.add_argument("--text-cleaners", nargs="*", default=["english_cleaners"], type=str)
    parser.add_argument("--griffin-lim-iters", type=int, default=60, help="Griffin-Lim iterations")
    parser.add_argument("--max-decoder-steps", type=int, default=None, help="override the checkpoint's value")
    parser.add_argument("--gate-threshold", type=float, default=None, help="override the checkpoint's value")
    parser.add_argument("--deterministic", action="store_true",
                        help="prenet dropout off (same text, same audio); the paper keeps it on")
    parser.add_argument("--seed", type=int, default=None, help="seed the random generators")
    parser.add_argument("--plot", action="store_true", help="write alignment and mel pictures per phrase")
    parser.add_argument("--max-phrase-chars", type=int, default=0,
                        help="speak a longer line as pieces of at most this many characters, cut at sentence "
                             "and clause ends, joined in one wav (0: never split; ~180 suits LJSpeech models)")
    parser.add_argument("--pause", type=float, default=0.15, help="seconds of silence between the pieces of a line")
    return parser.parse_args(argv)


def read_phrases(path: str, cleaners: List[str], max_chars: int = 0) -> List[Phrase]:
    """Lines of a UTF-8 file -> phrases; blank lines are skipped with a note, unspeakable ones are errors.

    max_chars > 0: a longer line becomes several phrases (pieces of one line, see `split_text`).
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: phrase file not found")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte {raw[e.start]:#x}); re-save the file as UTF-8") from e
    phrases = []
    for i, line in enumerate(content.splitlines()):
        if not line.strip():
            print(f"note: {path}:{i + 1}: empty line skipped", file=sys.stderr)
            continue
        pieces = split_text(line, max_chars) if max_chars > 0 else [line.strip()]
        for part, piece in enumerate(pieces):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    seq = text_to_sequence(piece, cleaners)
            except EmptyTextError as e:
                where = f" (piece {part + 1} of {len(pieces)}: {piece!r})" if len(pieces) > 1 else ""
                raise InputError(f"{path}:{i + 1}: {e}{where}") from e
            phrases.append(Phrase(i, piece, seq, part, len(pieces)))
    if not phrases:
        raise InputError(f"{path}: no phrases")
    return phrases


def load_model(path: str, model_name: str, device: torch.device) -> Tuple[torch.nn.Module, Dict]:
    """A model from a checkpoint of this repository or NVIDIA's: architecture from its `config`,
    or read off its weights when it has none (never from defaults)."""
    ckpt = load_checkpoint_file(path)
    state_dict = state_dict_from_checkpoint(ckpt, path)
    check_model_kind(state_dict, model_name, path, models.SIGNATURE_KEYS)
    config = ckpt.get("config")
    if not isinstance(config, dict):
        try:
            config = models.package(model_name).config_from_weights(state_dict)
        except KeyError as e:
            raise CheckpointError(f"{path}: not a {model_name} checkpoint (no {e.args[0]!r} tensor)") from e
    try:
        model = models.get_model(model_name, config)
    except TypeError as e:
        raise CheckpointError(f"{path}: its config does not describe a {model_name}: {e}") from e
    load_model_weights(model, state_dict, path)
    return model.to(device).eval(), config


def pad_batch(phrases: Sequence[Phrase], device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Phrases -> (text (B, T_in) zero-padded, lengths (B,)), in the given order."""
    lengths = torch.tensor([len(p.sequence) for p in phrases], dtype=torch.long)
    text = torch.zeros(len(phrases), int(lengths.max()), dtype=torch.long)
    for b, p in enumerate(phrases):
        text[b, :len(p.sequence)] = torch.tensor(p.sequence)
    return text.to(device), lengths.to(device)


class Synthesizer:
    """Tacotron 2 + a vocoder, set up once; `__call__` turns a batch of phrases into waveforms."""

    def __init__(self, tacotron2: torch.nn.Module, waveglow: Optional[torch.nn.Module], device: torch.device,
                 amp: bool = False, sigma: float = 0.9, denoising_strength: float = 0.01, hop_length: int = 256,
                 sampling_rate: int = 22050, griffin_lim_iters: int = 60, chunk_frames: int = 200,
                 overlap_frames: int = 8, batch_size: int = 1, cuda_graphs: bool = True) -> None:
        self.device = device
        self.chunk_frames = chunk_frames
        self.overlap_frames = overlap_frames
        self.tacotron2 = tacotron2
        self.tacotron2.set_batch_invariant(True)
        self.waveglow = waveglow
        self.sigma = sigma
        self.denoising_strength = denoising_strength
        self.hop_length = hop_length
        self.griffin_lim_iters = griffin_lim_iters
        self.half = amp and device.type == "cuda"
        self.fast_paths: Dict[str, Dict[str, float]] = {}  # the timed candidates of each choice made on a CPU
        if device.type == "cuda":
            # fused decoder steps over static buffers, replayed as CUDA graphs (16 steps a launch, one
            # host check per 16 steps); float16 weights with --amp-run, states and softmax in float32
            self.tacotron2.set_fast_inference(torch.float16 if amp else torch.float32, static=True,
                                              cuda_graphs=cuda_graphs)
        else:
            # fused decoder steps, with whichever products (aten or oneDNN) and, with --amp-run, whichever
            # of bf16 and fp32 weights run faster on this CPU (bf16 mel error about 5e-4 against fp32 with
            # random default-size weights: see scripts/benchmark.py); the choice is timed, common/timing.py
            timings = self.tacotron2.decoder.tune_fast_inference(
                batch_size, [torch.bfloat16, torch.float32] if amp else [torch.float32])
            self.fast_paths["decoder_ms_per_step"] = {k: round(1e3 * v, 3) for k, v in timings.items()}
        if waveglow is not None:
            waveglow.remove_weightnorm()
            if self.half:
                waveglow.half()
            else:
                # the plain path or prepared weights, float32 or (--amp-run) bf16 coupling networks, whichever
                # is fastest on this CPU (bf16 SNR against fp32 above 30 dB, see README); the 1x1 inverses
                # and the affine coupling stay in float32
                timings = waveglow.tune_fast_inference([None, torch.float32] + ([torch.bfloat16] if amp else []))
                self.fast_paths["waveglow_coupling_ms"] = {k: round(1e3 * v, 2) for k, v in timings.items()}
            self.denoiser = Denoiser(waveglow).to(device) if denoising_strength > 0 else None
        else:
            mel_cfg = dict(filter_length=1024, hop_length=hop_length, win_length=1024,
                           n_mel_channels=tacotron2.n_mel_channels, sampling_rate=sampling_rate)
            self.mel_fn = TacotronSTFT(**mel_cfg).to(device)
            self.gl_stft = STFT(1024, hop_length, 1024).to(device)
        if self.half:
            self.tacotron2.half()

    def chosen_fast_paths(self) -> Dict[str, str]:
        """The candidate each timed choice kept, e.g. {"decoder_ms_per_step": "bfloat16/aten"}."""
        return {part: min(timings, key=timings.get) for part, timings in self.fast_paths.items()}

    def report_fast_paths(self) -> None:
        for part, chosen in self.chosen_fast_paths().items():
            print(f"fast path: {part} {self.fast_paths[part]}: using {chosen}", file=sys.stderr)

    @torch.no_grad()
    def mels(self, text: torch.Tensor, lengths: torch.Tensor):
        if self.half:
            with torch.autocast("cuda", dtype=torch.float16):
                return self.tacotron2.generate(text, lengths)
        return self.tacotron2.generate(text, lengths)

    @torch.no_grad()
    def vocode(self, mel: torch.Tensor, lengths: torch.Tensor) -> List[torch.Tensor]:
        """(B, n_mel, T_out) log-mel and (B,) frame counts -> B waveforms of lengths * hop samples."""
        if self.waveglow is None:
            # mel -> linear magnitude by least squares through the filterbank, then Griffin-Lim, item by
            # item on its own frames with the same initial phases: an item's audio does not depend on its batch
            pinv = torch.linalg.pinv(self.mel_fn.mel_basis)  # (n_freq, n_mel)
            waves = []
            for m, n in zip(mel.float(), lengths.tolist()):
                mag = (pinv @ torch.exp(m[:, :n])).clamp_min(1e-8)
                # n frames give (n - 1) * hop samples, and the STFT's reflect padding needs a few frames:
                # append silent frames
                mag = torch.nn.functional.pad(mag, (0, max(1, 5 - n)), value=1e-8)
                wav = griffin_lim(mag[None], self.gl_stft, n_iters=self.griffin_lim_iters, seed=0)[0]
                waves.append(wav[:n * self.hop_length])
            return waves
        mel = mel.half() if self.half else mel.float()
        if mel.size(2) > self.chunk_frames + 2 * self.overlap_frames:
            # long mels chunk by chunk: bounded memory, the first audio early; 8 frames of context cost 8 %
            audio = torch.cat(list(self.waveglow.infer_chunks(mel, self.sigma, self.chunk_frames,
                                                              self.overlap_frames)), dim=1).float()
        else:
            audio = self.waveglow.infer(mel, sigma=self.sigma).float()
        if self.denoiser is not None:
            audio = self.denoiser(audio, strength=self.denoising_strength).squeeze(1)
        return [a[:n * self.hop_length] for a, n in zip(audio, lengths.tolist())]

    def __call__(self, phrases: Sequence[Phrase]) -> Dict[str, object]:
        text, lengths = pad_batch(phrases, self.device)
        sync(self.device)
        t0 = time.perf_counter()
        out = self.mels(text, lengths)
        sync(self.device)
        t1 = time.perf_counter()
        n_frames = out.mel_lengths.long().clamp(min=1)  # the reference cuts each wav to mel_lengths * hop
        audio = self.vocode(out.mel_outputs_postnet, n_frames)
        sync(self.device)
        t2 = time.perf_counter()
        waves = [(w / w.abs().max().clamp_min(1e-8)).float().cpu() for w in audio]  # peak-normalised
        return {"audio": waves, "mel_lengths": n_frames.cpu(), "reached_max": out.reached_max.cpu(),
                "alignments": out.alignments.float().cpu(), "mels": out.mel_outputs_postnet.float().cpu(),
                "tacotron2_latency": t1 - t0, "vocoder_latency": t2 - t1, "latency": t2 - t0}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    if args.seed is not None:
        torch.manual_seed(args.seed)
    vocoder = args.vocoder or ("waveglow" if args.waveglow else "griffin-lim")
    if vocoder == "waveglow" and not args.waveglow:
        sys.exit("error: --vocoder waveglow needs --waveglow CKPT")
    try:
        phrases = read_phrases(args.input, args.text_cleaners, args.max_phrase_chars)
        tacotron2, _ = load_model(args.tacotron2, "Tacotron2", device)
        waveglow = load_model(args.waveglow, "WaveGlow", device)[0] if vocoder == "waveglow" else None
    except (InputError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    if args.max_decoder_steps is not None:
        tacotron2.decoder.max_decoder_steps = args.max_decoder_steps
    if args.gate_threshold is not None:
        tacotron2.decoder.gate_threshold = args.gate_threshold
    tacotron2.set_prenet_dropout(not args.deterministic)
    batch_size = args.batch_size or len(phrases)
    synth = Synthesizer(tacotron2, waveglow, device, amp=args.amp_run, sigma=args.sigma_infer,
                        denoising_strength=args.denoising_strength, hop_length=args.stft_hop_length,
                        sampling_rate=args.sampling_rate, griffin_lim_iters=args.griffin_lim_iters,
                        batch_size=batch_size, cuda_graphs=args.cuda_graphs)
    synth.report_fast_paths()
    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as e:
        sys.exit(f"error: cannot create output folder {args.output!r}: {e}")
    logger = RunLogger(os.path.join(args.output, args.log_file))
    logger.metadata({k: v for k, v in vars(args).items()})
    batches = [phrases[start:start + batch_size] for start in range(0, len(phrases), batch_size)]
    if args.include_warmup:  # one batch of each shape, so that nothing is prepared inside the timed runs
        shapes = {}
        for batch in batches:
            shapes.setdefault((len(batch), max(len(p.sequence) for p in batch)), batch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for batch in shapes.values():
                synth(batch)
    totals = {"tacotron2_latency": 0.0, "vocoder_latency": 0.0, "latency": 0.0, "mels": 0, "samples": 0}
    pieces: List[torch.Tensor] = []  # audio of the current line's pieces so far
    pause = torch.zeros(int(args.pause * args.sampling_rate))
    for batch in batches:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported per phrase below, by line
            result = synth(batch)
        for b, phrase in enumerate(batch):
            if bool(result["reached_max"][b]):
                print(f"warning: {args.input}:{phrase.index + 1}: reached max_decoder_steps="
                      f"{tacotron2.decoder.max_decoder_steps} without stopping; the audio may be cut off "
                      f"(split long lines with --max-phrase-chars 180, or raise --max-decoder-steps)",
                      file=sys.stderr)
            wav = result["audio"][b]
            pieces += [pause, wav] if pieces else [wav]
            if phrase.part == phrase.parts - 1:  # the line's last piece: write the line
                save_wav(os.path.join(args.output, f"audio_{phrase.index}{args.suffix}.wav"), torch.cat(pieces),
                         args.sampling_rate)
                pieces = []
            if args.plot:
                steps = int(result["mel_lengths"][b]) // tacotron2.n_frames_per_step + 1
                name = f"alignment_{phrase.index}" + (f"_{phrase.part}" if phrase.parts > 1 else "")
                plot_alignment(result["alignments"][b, :steps, :len(phrase.sequence)],
                               result["mels"][b, :, :int(result["mel_lengths"][b])],
                               os.path.join(args.output, f"{name}{args.suffix}.png"), phrase.text)
            totals["samples"] += wav.numel()
        totals["mels"] += int(result["mel_lengths"].sum())
        for key in ("tacotron2_latency", "vocoder_latency", "latency"):
            totals[key] += result[key]
    audio_seconds = totals["samples"] / args.sampling_rate
    summary = {"tacotron2_items_per_sec": totals["mels"] / max(totals["tacotron2_latency"], 1e-9),
               "waveglow_items_per_sec": totals["samples"] / max(totals["vocoder_latency"], 1e-9),
               "tacotron2_latency": totals["tacotron2_latency"], "waveglow_latency": totals["vocoder_latency"],
               "latency": totals["latency"], "num_mels": totals["mels"], "audio_seconds": audio_seconds,
               "rtf": audio_seconds / max(totals["latency"], 1e-9), "vocoder": vocoder, "device": device.type,
               "n_phrases": len(phrases)}
    logger.log("inference", summary, echo=True)
    logger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
