"""Text to waveforms as a library: phrases, one precision policy, Tacotron 2 and a vocoder.

    t2, _ = models.load_model("t2.pt", "Tacotron2", device)
    wg, _ = models.load_model("wg.pt", "WaveGlow", device)
    synth = Synthesizer(t2, WaveGlowVocoder(wg, policy), device, policy)
    result = synth(read_phrases("phrases/phrase.txt", ["english_cleaners"]))

inference.py, test_infer.py and the demo's scripts are command lines over this module.
"""
import os
import sys
import time
import warnings
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

from common.audio_processing import griffin_lim
from common.filelist import read_text_lines
from common.layers import TacotronSTFT
from common.cpu.cpu_features import bf16_native, describe as describe_cpu
from common.cpu.linear import int8_available
from common.stft import STFT
from common.timing import sync
from tacotron2.fast_inference import FastDecoder, tune_decoder
from tacotron2.static_decoder import StaticDecoder
from tacotron2.model import InferenceOutput, Tacotron2
from tacotron2.text import EmptyTextError, text_to_sequence
from tacotron2.text.segment import split_text
from waveglow.denoiser import Denoiser
from waveglow.fast_inference import FastWaveGlow, WaveGlowEngine, tune_waveglow
from waveglow.model import WaveGlow


class InputError(ValueError):
    """A phrase file or line that cannot be synthesised, with file and line named."""


class Phrase(NamedTuple):
    index: int  # 0-based line number: the output is audio_<index>
    text: str
    sequence: List[int]
    part: int = 0  # which piece of a split line (--max-phrase-chars); the pieces' audio is joined
    parts: int = 1


def read_phrases(path: str, cleaners: List[str], max_chars: int = 0) -> List[Phrase]:
    """Lines of a UTF-8 file -> phrases; blank lines are skipped with a note, unspeakable ones are errors.

    max_chars > 0: a longer line becomes several phrases (pieces of one line, see `split_text`).
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: phrase file not found")
    phrases = []
    for i, line in enumerate(read_text_lines(path, InputError)):
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


def pad_batch(phrases: Sequence[Phrase], device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Phrases -> (text (B, T_in) zero-padded, lengths (B,)), in the given order."""
    lengths = torch.tensor([len(p.sequence) for p in phrases], dtype=torch.long)
    text = torch.zeros(len(phrases), int(lengths.max()), dtype=torch.long)
    for b, p in enumerate(phrases):
        text[b, :len(p.sequence)] = torch.tensor(p.sequence)
    return text.to(device), lengths.to(device)


SIGMA_INFER = 0.6  # WaveGlow's latent sigma at inference: the seed README's value, for every entry point
AMP_HELP = ("mixed precision (--amp and --fp16 are the same flag): float16 on CUDA; on a CPU whichever of bfloat16 "
            "(where the CPU has it natively), int8 LSTM matrices (fbgemm) and float32 is timed fastest, printed as "
            "'fast path: ...'")


def add_inference_flags(parser) -> None:
    """The flags every inference entry point shares, with one meaning: precision and WaveGlow's sigma."""
    parser.add_argument("--amp-run", "--amp", "--fp16", dest="amp_run", action="store_true", help=AMP_HELP)
    parser.add_argument("-s", "--sigma-infer", default=SIGMA_INFER, type=float,
                        help=f"WaveGlow latent sigma (the seed's {SIGMA_INFER})")


class Precision(NamedTuple):
    """What `--amp-run` means on a device; `precision_policy` is the one place that decides it."""
    half: bool  # CUDA: the models in float16 (Tacotron 2 under float16 autocast)
    decoder_dtypes: Tuple[torch.dtype, ...]  # candidates for the fused decoder weights (timed when several)
    waveglow_dtypes: Tuple[Optional[torch.dtype], ...]  # WaveGlow candidates, None: the plain model
    label: str  # "FP16", "BF16/INT8 where faster", "INT8 where faster" or "FP32": how tables name the policy


def precision_policy(device: torch.device, amp: bool) -> Precision:
    """--amp-run on CUDA: float16 models, the decoder's fused weights float16, replayed as CUDA graphs.
    On a CPU: bfloat16 weights wherever they are timed faster than float32 on this processor (decoder
    mel error ~5e-4, WaveGlow SNR above 30 dB against float32; see the README), or the decoder's LSTM matrices
    in int8 (dynamically quantized products; mel error in the README), states, softmax,
    1x1 inverses and the affine coupling in float32. bfloat16 is a candidate only where the CPU computes it
    natively (common/cpu/cpu_features.py), int8 only where fbgemm runs. Without it, float32 (TF32 products on
    Ampere+ GPUs where torch enables them)."""
    if device.type == "cuda":
        return Precision(half=amp, decoder_dtypes=(torch.float16 if amp else torch.float32,),
                         waveglow_dtypes=(None,), label="FP16" if amp else "FP32")
    if amp:
        bf16 = (torch.bfloat16,) if bf16_native() else ()
        int8 = (torch.qint8,) if int8_available() else ()
        kinds = [name for name, dtypes in (("BF16", bf16), ("INT8", int8)) if dtypes]
        label = f"{'/'.join(kinds)} where faster" if kinds else "FP32"
        return Precision(False, (*bf16, torch.float32, *int8), (None, torch.float32, *bf16), label)
    return Precision(False, (torch.float32,), (None, torch.float32), "FP32")


class GriffinLimVocoder:
    """Log-mel -> linear magnitude by least squares through the filterbank, then Griffin-Lim.

    Item by item on its own frames with the same initial phases: an item's audio does not depend on its batch.
    """

    def __init__(self, n_mel_channels: int, device: torch.device, sampling_rate: int = 22050, hop_length: int = 256,
                 n_iters: int = 60) -> None:
        self.hop_length = hop_length
        self.n_iters = n_iters
        mel_fn = TacotronSTFT(filter_length=1024, hop_length=hop_length, win_length=1024,
                              n_mel_channels=n_mel_channels, sampling_rate=sampling_rate)
        self.pinv = torch.linalg.pinv(mel_fn.mel_basis).to(device)  # (n_freq, n_mel)
        self.stft = STFT(1024, hop_length, 1024).to(device)
        self.fast_paths: Dict[str, Dict[str, float]] = {}

    @torch.no_grad()
    def __call__(self, mel: torch.Tensor, lengths: torch.Tensor) -> List[torch.Tensor]:
        """(B, n_mel, T_out) log-mel and (B,) frame counts -> B waveforms of lengths * hop samples."""
        waves = []
        for m, n in zip(mel.float(), lengths.tolist()):
            mag = (self.pinv @ torch.exp(m[:, :n])).clamp_min(1e-8)
            # n frames give (n - 1) * hop samples, and the STFT's reflect padding needs a few frames: append silence
            mag = torch.nn.functional.pad(mag, (0, max(1, 5 - n)), value=1e-8)
            wav = griffin_lim(mag[None], self.stft, n_iters=self.n_iters, seed=0)[0]
            waves.append(wav[:n * self.hop_length])
        return waves


class WaveGlowVocoder:
    """WaveGlow (weight norm folded; the plain model or a timed FastWaveGlow snapshot) and its denoiser."""

    def __init__(self, waveglow: WaveGlow, device: torch.device, precision: Precision, sigma: float = SIGMA_INFER,
                 denoising_strength: float = 0.01, hop_length: int = 256, chunk_frames: int = 200,
                 overlap_frames: int = 8) -> None:
        self.sigma = sigma
        self.denoising_strength = denoising_strength
        self.hop_length = hop_length
        self.chunk_frames = chunk_frames
        self.overlap_frames = overlap_frames
        self.half = precision.half
        self.fast_paths: Dict[str, Dict[str, float]] = {}
        waveglow.remove_weightnorm()
        if self.half:
            waveglow.half()
        self.waveglow = waveglow
        dtypes = precision.waveglow_dtypes
        self.engine: WaveGlowEngine
        if len(dtypes) > 1:
            self.engine, timings = tune_waveglow(waveglow, dtypes)
            self.fast_paths["waveglow_coupling_ms"] = {k: round(1e3 * v, 2) for k, v in timings.items()}
        else:
            self.engine = waveglow if dtypes[0] is None else FastWaveGlow(waveglow, dtypes[0])
        self.denoiser = Denoiser(waveglow).to(device) if denoising_strength > 0 else None

    @torch.no_grad()
    def pieces(self, mel: torch.Tensor) -> Iterator[torch.Tensor]:
        """(B, n_mel, T_out) log-mel -> consecutive float32 pieces (B, chunk_frames * hop) of audio as they are
        vocoded, each denoised on its own: the first audio is ready after one chunk, memory is bounded by a chunk
        (8 frames of context on each side cost 8 % at 200-frame chunks)."""
        mel = mel.half() if self.half else mel.float()
        for piece in self.engine.infer_chunks(mel, self.sigma, self.chunk_frames, self.overlap_frames):
            piece = piece.float()
            if self.denoiser is not None:
                piece = self.denoiser(piece, strength=self.denoising_strength).squeeze(1)
            yield piece

    def __call__(self, mel: torch.Tensor, lengths: torch.Tensor) -> List[torch.Tensor]:
        """(B, n_mel, T_out) log-mel and (B,) frame counts -> B waveforms of lengths * hop samples."""
        audio = torch.cat(list(self.pieces(mel)), dim=1)
        return [a[:n * self.hop_length] for a, n in zip(audio, lengths.tolist())]


Vocoder = Union[GriffinLimVocoder, WaveGlowVocoder]


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
        self.tacotron2.set_batch_invariant(True)
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
        piece; Griffin-Lim: one piece), so that a caller can start playing before the phrase is done. Not
        peak-normalised: joined, the pieces equal `self([phrase], normalize=False)["audio"][0]` with the same
        random draws."""
        text, lengths = pad_batch([phrase], self.device)
        out = self.mels(text, lengths)
        n_frames = out.mel_lengths.long().clamp(min=1)
        left = int(n_frames[0]) * self.vocoder.hop_length
        pieces = (self.vocoder.pieces(out.mel_outputs_postnet) if isinstance(self.vocoder, WaveGlowVocoder)
                  else iter(w[None] for w in self.vocoder(out.mel_outputs_postnet, n_frames)))
        for piece in pieces:
            if left <= 0:
                break
            piece = piece[0, :left]
            left -= piece.numel()
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
                      sigma: float = SIGMA_INFER, denoising_strength: float = 0.01, hop_length: int = 256,
                      sampling_rate: int = 22050, griffin_lim_iters: int = 60, batch_size: int = 1,
                      cuda_graphs: bool = True) -> Synthesizer:
    """A Synthesizer with WaveGlow (or Griffin-Lim when `waveglow` is None) under the device's precision policy."""
    precision = precision_policy(device, amp)
    if waveglow is None:
        vocoder: Vocoder = GriffinLimVocoder(tacotron2.n_mel_channels, device, sampling_rate, hop_length,
                                             griffin_lim_iters)
    else:
        vocoder = WaveGlowVocoder(waveglow, device, precision, sigma, denoising_strength, hop_length)
    return Synthesizer(tacotron2, vocoder, device, precision, batch_size, cuda_graphs)
