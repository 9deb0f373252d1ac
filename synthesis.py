"""Text to waveforms as a library: phrases, one precision policy, Tacotron 2 and a vocoder.

    t2, _ = models.load_model("t2.pt", "Tacotron2", device)
    synth = build_synthesizer(t2, device, vocoder="hifigan")      # or waveglow=WaveGlow model, or griffin-lim
    result = synth(read_phrases("phrases/phrase.txt", text_frontend(t2)))

The text front end and the audio settings come from the Tacotron 2's checkpoint (its `card`), so plain text
reaches a phoneme model as phonemes and the vocoder is built for (or refused for) the model's mels.
inference.py, test_infer.py, hubconf.py and the demo's scripts are command lines over this module.
"""
import os
import sys
import time
import warnings
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import torch

import models
from common.checkpoint import model_card
from common.filelist import read_text_lines
from common.cpu.cpu_features import bf16_native, describe as describe_cpu
from common.cpu.linear import int8_available
from common.timing import sync
from tacotron2.data_function import pad_ids
from tacotron2.fast_inference import FastDecoder, tune_decoder
from tacotron2.static_decoder import StaticDecoder
from tacotron2.model import InferenceOutput, Tacotron2
from tacotron2.text import EmptyTextError, text_to_sequence
from tacotron2.text.frontend import FRONTENDS, FrontendError, TextFrontend, frontend_for
from tacotron2.text.segment import split_text
from common.flag_types import COUNT, NONNEG, FRACTION, PROBABILITY
from hifigan.weights import weights_path
from vocoders import GRIFFIN_LIM_ITERS, GRIFFIN_LIM_MOMENTUM, SIGMA_INFER, VOCODERS, Vocoder, build_vocoder, check_fits, expected_mels
from waveglow.model import WaveGlow


class InputError(ValueError):
    """A phrase file or line that cannot be synthesised, with file and line named."""


class Phrase(NamedTuple):
    index: int  # 0-based line number: the output is audio_<index>
    text: str
    sequence: List[int]
    part: int = 0  # which piece of a split line (--max-phrase-chars); the pieces' audio is joined
    parts: int = 1


def text_frontend(tacotron2: Tacotron2, flag: Optional[str] = None) -> TextFrontend:
    """The text front end a Tacotron 2 was trained with, from its checkpoint's card (or `flag`, --text-frontend,
    for a checkpoint written before checkpoints said it); FrontendError says what to pass where it is needed."""
    card = model_card(tacotron2)
    return frontend_for(card.train_args, card.path, flag)


def make_phrases(lines: Sequence[str], frontend: TextFrontend, max_chars: int = 0, source: str = "text"
                 ) -> List[Phrase]:
    """Lines of text -> phrases through the model's front end (one phonemizer run for all of them); blank lines
    are skipped with a note, unspeakable ones are InputErrors naming `source` and the line (1-based).

    max_chars > 0: a longer line becomes several phrases (pieces of one line, see `split_text`).
    """
    pieces: List[Tuple[int, int, int, str]] = []  # (line index, part, parts, text)
    for i, line in enumerate(lines):
        if not line.strip():
            print(f"note: {source}:{i + 1}: empty line skipped", file=sys.stderr)
            continue
        parts = split_text(line, max_chars) if max_chars > 0 else [line.strip()]
        pieces += [(i, part, len(parts), piece) for part, piece in enumerate(parts)]
    if not pieces:
        raise InputError(f"{source}: no phrases")
    try:
        symbols = frontend.to_symbols([p[3] for p in pieces])
    except FrontendError as e:
        raise InputError(f"{source}:{pieces[e.index][0] + 1}: {e}" if e.index is not None else f"{source}: {e}") \
            from e
    phrases = []
    for (i, part, parts, piece), spoken in zip(pieces, symbols):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                seq = text_to_sequence(spoken, list(frontend.cleaners))
        except EmptyTextError as e:
            where = f" (piece {part + 1} of {parts}: {piece!r})" if parts > 1 else ""
            raise InputError(f"{source}:{i + 1}: {e}{where}") from e
        phrases.append(Phrase(i, piece, seq, part, parts))
    return phrases


def read_phrases(path: str, frontend: TextFrontend, max_chars: int = 0) -> List[Phrase]:
    """Lines of a UTF-8 file -> phrases, see `make_phrases`."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: phrase file not found")
    return make_phrases(read_text_lines(path, InputError), frontend, max_chars, path)


def run_figures(result: Dict) -> Dict[str, float]:
    """One synthesis's figures under NVIDIA's log names (test_infer.py logs them per run, inference.py sums them)."""
    samples = sum(w.numel() for w in result["audio"])
    mels = int(result["mel_lengths"].sum())
    return {"latency": result["latency"], "tacotron2_latency": result["tacotron2_latency"],
            "waveglow_latency": result["vocoder_latency"], "num_mels": mels, "num_samples": samples,
            "tacotron2_items_per_sec": mels / max(result["tacotron2_latency"], 1e-9),
            "waveglow_items_per_sec": samples / max(result["vocoder_latency"], 1e-9)}


class RunTotals:
    """The figures of several syntheses together: inference.py's summary line."""

    def __init__(self) -> None:
        self.sums = {"latency": 0.0, "tacotron2_latency": 0.0, "waveglow_latency": 0.0, "num_mels": 0,
                     "num_samples": 0}

    def add(self, result: Dict) -> None:
        figures = run_figures(result)
        for key in self.sums:
            self.sums[key] += figures[key]

    def summary(self, sampling_rate: int) -> Dict[str, float]:
        t = self.sums
        audio_seconds = t["num_samples"] / sampling_rate
        return {"tacotron2_items_per_sec": t["num_mels"] / max(t["tacotron2_latency"], 1e-9),
                "waveglow_items_per_sec": t["num_samples"] / max(t["waveglow_latency"], 1e-9),
                "tacotron2_latency": t["tacotron2_latency"], "waveglow_latency": t["waveglow_latency"],
                "latency": t["latency"], "num_mels": t["num_mels"], "audio_seconds": audio_seconds,
                "rtf": audio_seconds / max(t["latency"], 1e-9)}


def join_pieces(waves: Sequence[torch.Tensor], pause_samples: int) -> torch.Tensor:
    """A line's pieces (--max-phrase-chars) as one waveform, `pause_samples` of silence between them."""
    silence = torch.zeros(pause_samples)
    out: List[torch.Tensor] = []
    for wave in waves:
        out += [silence, wave] if out else [wave]
    return torch.cat(out)


def pad_batch(phrases: Sequence[Phrase], device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Phrases -> (text (B, T_in) zero-padded, lengths (B,)), in the given order."""
    text, lengths = pad_ids([p.sequence for p in phrases])
    return text.to(device), lengths.to(device)


AMP_HELP = ("mixed precision (--amp and --fp16 are the same flag): float16 on CUDA; on a CPU whichever of bfloat16 "
            "(where the CPU has it natively), int8 LSTM matrices (fbgemm) and float32 is timed fastest, printed as "
            "'fast path: ...'")


def add_inference_flags(parser, default_vocoder: Optional[str] = None) -> None:
    """The flags every inference entry point shares, with one meaning: precision, the vocoder and its settings,
    the text front end, and the audio settings (read off the checkpoints; given, they are checked)."""
    parser.add_argument("--amp-run", "--amp", "--fp16", dest="amp_run", action="store_true", help=AMP_HELP)
    parser.add_argument("-s", "--sigma-infer", default=SIGMA_INFER, type=NONNEG,
                        help=f"WaveGlow latent sigma (the seed's {SIGMA_INFER})")
    parser.add_argument("-d", "--denoising-strength", default=0.01, type=FRACTION,
                        help="WaveGlow's denoiser strength (0: off)")
    parser.add_argument("--vocoder", choices=sorted(VOCODERS), default=default_vocoder,
                        help="; ".join(f"{k}: {v}" for k, v in VOCODERS.items())
                             + ". Default: waveglow when --waveglow is given, else griffin-lim")
    parser.add_argument("--hifigan", default="universal",
                        help="HiFi-GAN weights: the published universal or ljspeech generator, or a checkpoint path")
    parser.add_argument("--text-frontend", choices=sorted(FRONTENDS), default=None,
                        help="how plain text becomes the model's symbols; read off the checkpoint (needed only for "
                             "a phoneme model written before checkpoints said it): "
                             + "; ".join(f"{k}: {v}" for k, v in FRONTENDS.items()))
    parser.add_argument("-sr", "--sampling-rate", type=COUNT, default=None,
                        help="sampling rate; read off the checkpoint (given, it must agree)")
    parser.add_argument("--stft-hop-length", type=COUNT, default=None,
                        help="samples per mel frame; read off the checkpoint (given, it must agree)")
    parser.add_argument("--waveglow-int8", action="store_true",
                        help="CPU: WaveGlow's coupling networks in int8 (fbgemm), 1.6-3x float32's speed but audibly "
                             "noisier on the WaveGlow judged so far (docs/performance.md); judge yours with "
                             "scripts/evaluate_tacotron2.py --waveglow-dtype qint8 --listen before relying on it")
    add_griffin_lim_flags(parser)


def add_griffin_lim_flags(parser) -> None:
    """Griffin-Lim's settings, for the inference entry points and the evaluation that measures its floor."""
    parser.add_argument("--griffin-lim-iters", type=COUNT, default=GRIFFIN_LIM_ITERS, help="Griffin-Lim iterations")
    parser.add_argument("--griffin-lim-momentum", type=PROBABILITY, default=GRIFFIN_LIM_MOMENTUM,
                        help="fast Griffin-Lim's momentum in [0, 1) (0: the classic algorithm, which wants about 60 "
                             "iterations)")


def load_models(args, device: torch.device, overrides: Optional[Dict[str, object]] = None
                ) -> Tuple[Tacotron2, Optional[WaveGlow], TextFrontend]:
    """What every inference command loads, checked before any work: the Tacotron 2 (its `overrides` applied),
    the WaveGlow when `args.vocoder` is waveglow (args.vocoder None: waveglow with --waveglow, else griffin-lim;
    resolved in place), HiFi-GAN's weights found, the vocoder fitting the Tacotron 2's mels, and the text front end.
    Raises InputError, CheckpointError, FrontendError, VocoderMismatch or VocoderUnavailable."""
    args.vocoder = args.vocoder or ("waveglow" if args.waveglow else "griffin-lim")
    if args.vocoder == "waveglow" and not args.waveglow:
        raise InputError("--vocoder waveglow needs --waveglow CKPT")
    check_precision_flags(args, device)
    tacotron2, _ = models.load_model(args.tacotron2, "Tacotron2", device, overrides)
    check_audio_flags(args, tacotron2)
    waveglow = None
    if args.vocoder == "waveglow":
        waveglow, wg_config = models.load_model(args.waveglow, "WaveGlow", device)
        wn_channels = getattr(args, "wn_channels", None)
        if wn_channels and wg_config["WN_config"]["n_channels"] != wn_channels:
            raise InputError(f"--wn-channels {wn_channels}: {args.waveglow} has {wg_config['WN_config']['n_channels']} "
                             "WN channels (drop the flag: it is read off the checkpoint)")
    if args.vocoder == "hifigan":
        weights_path(args.hifigan)  # installed, or what to install
    card = model_card(tacotron2)
    check_fits(card, args.vocoder, *expected_mels(args.vocoder, card, waveglow, args.hifigan))
    return tacotron2, waveglow, text_frontend(tacotron2, args.text_frontend)


def check_precision_flags(args, device: torch.device) -> None:
    """--waveglow-int8 needs WaveGlow as the vocoder, a CPU and fbgemm (InputError)."""
    if not args.waveglow_int8:
        return
    if args.vocoder != "waveglow":
        raise InputError(f"--waveglow-int8 applies to WaveGlow; the vocoder is {args.vocoder}")
    if device.type != "cpu" or not int8_available():
        raise InputError("--waveglow-int8 runs on a CPU with fbgemm's int8 products "
                         f"({'not on ' + device.type if device.type != 'cpu' else 'this torch build has none'})")


def synthesizer_from_flags(args, tacotron2: Tacotron2, waveglow: Optional[WaveGlow], device: torch.device,
                           batch_size: int = 1, cuda_graphs: bool = True) -> "Synthesizer":
    """`build_synthesizer` with the settings of `add_inference_flags`' flags."""
    return build_synthesizer(tacotron2, waveglow, device, amp=args.amp_run, sigma=args.sigma_infer,
                             denoising_strength=args.denoising_strength, griffin_lim_iters=args.griffin_lim_iters,
                             griffin_lim_momentum=args.griffin_lim_momentum, batch_size=batch_size,
                             cuda_graphs=cuda_graphs, vocoder=args.vocoder, hifigan=args.hifigan,
                             waveglow_int8=args.waveglow_int8)


def check_audio_flags(args, tacotron2: Tacotron2) -> None:
    """-sr and --stft-hop-length, where given, must be what the Tacotron 2 was trained with (InputError)."""
    card = model_card(tacotron2)
    for flag, given, trained in (("-sr", args.sampling_rate, card.audio.sampling_rate),
                                 ("--stft-hop-length", args.stft_hop_length, card.audio.hop_length)):
        if given is not None and given != trained:
            raise InputError(f"{flag} {given}: {card.path} was trained with {trained} (drop the flag: it is read "
                             "off the checkpoint)")


class Precision(NamedTuple):
    """What `--amp-run` means on a device; `precision_policy` is the one place that decides it."""
    half: bool  # CUDA: the models in float16 (Tacotron 2 under float16 autocast)
    decoder_dtypes: Tuple[torch.dtype, ...]  # candidates for the fused decoder weights (timed when several)
    waveglow_dtypes: Tuple[Optional[torch.dtype], ...]  # WaveGlow candidates, None: the plain model
    label: str  # "FP16", "BF16/INT8 where faster", "INT8 where faster" or "FP32": how tables name the policy


def precision_policy(device: torch.device, amp: bool, waveglow_int8: bool = False) -> Precision:
    """--amp-run on CUDA: float16 models, the decoder's fused weights float16, replayed as CUDA graphs.
    On a CPU: bfloat16 weights wherever they are timed faster than float32 on this processor (decoder
    mel error ~5e-4, WaveGlow SNR above 30 dB against float32; see the README), or the decoder's LSTM matrices
    in int8 (dynamically quantized products; mel error in the README), states, softmax,
    1x1 inverses and the affine coupling in float32. bfloat16 is a candidate only where the CPU computes it
    natively (common/cpu/cpu_features.py), int8 only where fbgemm runs. Without it, float32 (TF32 products on
    Ampere+ GPUs where torch enables them).
    WaveGlow in int8 only when asked for (`waveglow_int8`, CPU): its audio was judged noisier (docs/performance.md)."""
    if device.type == "cuda":
        return Precision(half=amp, decoder_dtypes=(torch.float16 if amp else torch.float32,),
                         waveglow_dtypes=(None,), label="FP16" if amp else "FP32")
    if amp:
        bf16 = (torch.bfloat16,) if bf16_native() else ()
        int8 = (torch.qint8,) if int8_available() else ()
        kinds = [name for name, dtypes in (("BF16", bf16), ("INT8", int8)) if dtypes]
        label = f"{'/'.join(kinds)} where faster" if kinds else "FP32"
        policy = Precision(False, (*bf16, torch.float32, *int8), (None, torch.float32, *bf16), label)
    else:
        policy = Precision(False, (torch.float32,), (None, torch.float32), "FP32")
    return policy._replace(waveglow_dtypes=(torch.qint8,)) if waveglow_int8 else policy


class Synthesizer:
    """Tacotron 2 + a vocoder, set up once; `__call__` turns a batch of phrases into waveforms.

    The decoder runs on a FastDecoder snapshot (tacotron2/fast_inference.py): on CUDA over static
    buffers replayed as CUDA graphs (16 steps a launch, one host check per 16 steps); on a CPU with
    whichever products (aten or oneDNN) and dtype of the policy's candidates run fastest (timed once).
    """

    def __init__(self, tacotron2: Tacotron2, vocoder: Vocoder, device: torch.device, precision: Precision,
                 batch_size: int = 1, cuda_graphs: bool = True) -> None:
        self.device = device
        self.tacotron2 = tacotron2
        self.tacotron2.set_modes(batch_invariant=True)
        self.vocoder = vocoder
        self.half = precision.half
        self.fast_paths: Dict[str, Dict[str, float]] = dict(vocoder.fast_paths)  # the timed candidates of each choice
        if self.half:  # all but the decoder, whose engine keeps its own copies of the weights
            for part in (tacotron2.embedding, tacotron2.encoder, tacotron2.postnet):
                part.half()
        if device.type == "cuda":
            self.decoder = StaticDecoder(FastDecoder(tacotron2.decoder, precision.decoder_dtypes[0]),
                                         cuda_graphs=cuda_graphs)
        else:
            self.decoder, timings = tune_decoder(tacotron2.decoder, batch_size, precision.decoder_dtypes)
            self.fast_paths["decoder_ms_per_step"] = {k: round(1e3 * v, 3) for k, v in timings.items()}

    def chosen_fast_paths(self) -> Dict[str, str]:
        """The candidate each timed choice kept, e.g. {"decoder_ms_per_step": "bfloat16/aten"}."""
        return {part: min(timings, key=timings.get) for part, timings in self.fast_paths.items()}

    def precision_label(self) -> str:
        """How tables name what runs: the policy's label on CUDA; on a CPU the kinds the timed choices kept
        ("BF16", "INT8", "BF16+INT8" or "FP32")."""
        if self.device.type == "cuda":
            return "FP16" if self.half else "FP32"
        chosen = " ".join(self.chosen_fast_paths().values())
        kinds = [label for label, dtype in (("BF16", "bfloat16"), ("INT8", "qint8")) if dtype in chosen]
        return "+".join(kinds) or "FP32"

    def report_fast_paths(self) -> None:
        if self.device.type == "cpu":
            print(f"fast path: CPU {describe_cpu()}", file=sys.stderr)
        for part, chosen in self.chosen_fast_paths().items():
            print(f"fast path: {part} {self.fast_paths[part]}: using {chosen}", file=sys.stderr)

    @torch.no_grad()
    def mels(self, text: torch.Tensor, lengths: torch.Tensor) -> InferenceOutput:
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.half):
            return self.tacotron2.generate(text, lengths, decode=self.decoder.infer)

    def stream(self, phrase: Phrase) -> Iterator[torch.Tensor]:
        """One phrase's audio piece by piece as the vocoder produces it (WaveGlow: chunk_frames * hop samples a
        piece; HiFi-GAN: 64 frames' worth; Griffin-Lim: one piece), so that a caller can start playing before the
        phrase is done. Not peak-normalised: joined, the pieces equal `self([phrase], normalize=False)["audio"][0]`
        with the same random draws."""
        text, lengths = pad_batch([phrase], self.device)
        out = self.mels(text, lengths)
        n_frames = int(out.mel_lengths.long().clamp(min=1)[0])
        for piece in self.vocoder.stream(out.mel_outputs_postnet, n_frames):
            yield piece.float().cpu()

    def __call__(self, phrases: Sequence[Phrase], normalize: bool = True) -> Dict[str, object]:
        """Waveforms of a batch of phrases (peak-normalised unless `normalize` is False), their mels, alignments
        and the latencies of the two models."""
        text, lengths = pad_batch(phrases, self.device)
        sync(self.device)
        t0 = time.perf_counter()
        out = self.mels(text, lengths)
        sync(self.device)
        t1 = time.perf_counter()
        n_frames = out.mel_lengths.long().clamp(min=1)  # the reference cuts each wav to mel_lengths * hop
        audio = self.vocoder(out.mel_outputs_postnet, n_frames)
        sync(self.device)
        t2 = time.perf_counter()
        waves = [(w / w.abs().max().clamp_min(1e-8) if normalize else w).float().cpu() for w in audio]
        return {"audio": waves, "mel_lengths": n_frames.cpu(), "reached_max": out.reached_max.cpu(),
                "alignments": out.alignments.float().cpu(), "mels": out.mel_outputs_postnet.float().cpu(),
                "tacotron2_latency": t1 - t0, "vocoder_latency": t2 - t1, "latency": t2 - t0}


def build_synthesizer(tacotron2: Tacotron2, waveglow: Optional[WaveGlow], device: torch.device, amp: bool = False,
                      sigma: float = SIGMA_INFER, denoising_strength: float = 0.01,
                      griffin_lim_iters: int = GRIFFIN_LIM_ITERS, griffin_lim_momentum: float = GRIFFIN_LIM_MOMENTUM,
                      batch_size: int = 1, cuda_graphs: bool = True, vocoder: Optional[str] = None,
                      hifigan: str = "universal", waveglow_int8: bool = False) -> Synthesizer:
    """A Synthesizer under the device's precision policy with the vocoder `vocoder` (vocoders.VOCODERS; default:
    WaveGlow when `waveglow` is given, else Griffin-Lim), built for the Tacotron 2's audio settings (its card),
    or refused (vocoders.VocoderMismatch) where the vocoder's mels differ."""
    precision = precision_policy(device, amp, waveglow_int8)
    name = vocoder or ("waveglow" if waveglow is not None else "griffin-lim")
    chosen = build_vocoder(name, model_card(tacotron2), device, amp=amp, waveglow=waveglow,
                           waveglow_dtypes=precision.waveglow_dtypes, hifigan=hifigan, sigma=sigma,
                           denoising_strength=denoising_strength, griffin_lim_iters=griffin_lim_iters,
                           griffin_lim_momentum=griffin_lim_momentum)
    return Synthesizer(tacotron2, chosen, device, precision, batch_size, cuda_graphs)
