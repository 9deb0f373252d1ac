"""Vocoders: a log-mel in, a waveform out, one protocol and one table by name.

    vocoder = build_vocoder("hifigan", tacotron2_card, device, precision)
    waves = vocoder(mel, lengths)                 # B waveforms of lengths * hop samples

- `waveglow`: NVIDIA's WaveGlow from a checkpoint (`--waveglow`), weight norm folded, its denoiser;
- `hifigan`: HiFi-GAN V1's generator with the published weights (`--hifigan universal|ljspeech|CKPT`), which
  were trained on NVIDIA's mel format: any Tacotron 2 of that format (22,050 Hz, hop 256, 80 mels, 0-8 kHz) can
  use it, no vocoder training needed;
- `griffin-lim`: no model, phase reconstruction from the mel alone: robotic, a floor to compare with.

Every vocoder knows the audio settings of the mels it expects (`audio`) and where they come from (`source`), and
`check_fits` refuses a Tacotron 2 whose mels differ before any work. Each item is vocoded on its own frames (or,
WaveGlow, from its own noise in a batch-shaped draw), so that an item's audio does not depend on its batch.
"""
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch

from common.audio import AudioConfig
from common.audio_processing import griffin_lim
from common.checkpoint import ModelCard, model_card
from common.cpu.cpu_features import bf16_native
from common.layers import TacotronSTFT
from common.stft import STFT
from common.timing import dtype_name, fastest
from hifigan.fast_inference import FastHiFiGAN
from hifigan.weights import AUDIO as HIFIGAN_AUDIO
from hifigan.weights import PUBLISHED, VocoderUnavailable, load_generator
from waveglow.denoiser import Denoiser
from waveglow.fast_inference import WaveGlowEngine, tune_waveglow
from waveglow.model import WaveGlow

VOCODERS: Dict[str, str] = {
    "waveglow": "WaveGlow from --waveglow CKPT (NVIDIA's vocoder), with its denoiser",
    "hifigan": "HiFi-GAN V1, the published generators (--hifigan universal|ljspeech|CKPT), NVIDIA's mel format",
    "griffin-lim": "Griffin-Lim phase reconstruction: no model, robotic; the floor to compare a vocoder with",
}
# Griffin-Lim's default: the fast variant (momentum 0.99); docs/performance.md has the listeners' comparison with the
# classic 60 iterations (momentum 0), which --griffin-lim-iters 60 --griffin-lim-momentum 0 still runs
GRIFFIN_LIM_ITERS = 32
GRIFFIN_LIM_MOMENTUM = 0.99
SIGMA_INFER = 0.6  # WaveGlow's latent sigma at inference: the seed README's value, for every entry point


class VocoderMismatch(ValueError):
    """A Tacotron 2 and a vocoder whose mels differ, with both sources and the setting named."""


class Vocoder:
    """The protocol: `__call__(mel (B, n_mel, T), lengths (B,))` -> B float32 waveforms of lengths * hop samples;
    `stream(mel (1, n_mel, T), n_frames)` -> one item's audio in consecutive pieces (one piece unless the vocoder
    can do better); `audio` and `source` say which mels it expects; `fast_paths` the timed candidates."""
    name: str = ""
    audio: AudioConfig
    source: str
    fast_paths: Dict[str, Dict[str, float]]

    def __call__(self, mel: torch.Tensor, lengths: torch.Tensor) -> List[torch.Tensor]:
        raise NotImplementedError

    def stream(self, mel: torch.Tensor, n_frames: int) -> Iterator[torch.Tensor]:
        yield self(mel, torch.tensor([n_frames]))[0]

    @property
    def hop_length(self) -> int:
        return self.audio.hop_length


def expected_mels(name: str, tacotron2: Optional[ModelCard], waveglow: Optional[WaveGlow] = None,
                  hifigan: str = "universal") -> Tuple[AudioConfig, str]:
    """(audio settings, source) of the mels the vocoder `name` expects, known before it is built (Griffin-Lim
    follows the Tacotron 2's card); VocoderMismatch for a WaveGlow trained with a hop its upsampler cannot make."""
    if name == "waveglow" and waveglow is not None:
        card = model_card(waveglow)
        stride = waveglow.upsample.stride[0]
        if card.audio.hop_length != stride:
            raise VocoderMismatch(f"{card.path}: trained with hop_length {card.audio.hop_length}, but WaveGlow's "
                                  f"upsampler makes {stride} samples a frame")
        return card.audio, card.path
    if name == "hifigan":
        return HIFIGAN_AUDIO, hifigan_source(hifigan)
    if tacotron2 is None:
        raise ValueError(f"the {name} vocoder's mels depend on a Tacotron 2's card")
    return tacotron2.audio, f"Griffin-Lim with {tacotron2.path}'s settings"


def check_fits(tacotron2: ModelCard, name: str, audio: AudioConfig, source: str) -> None:
    """Refuse a Tacotron 2 whose mels a vocoder (`name`, expecting `audio`, from `source`) was not made for:
    sampling rate, STFT, mel channels or band."""
    differences = tacotron2.audio.differences(audio)
    if differences:
        listed = "; ".join(f"{setting} {ours} against {theirs}" for setting, ours, theirs in differences)
        raise VocoderMismatch(f"{tacotron2.path} and {source} ({name}) make different mels: {listed}. Use a "
                              f"vocoder trained with the Tacotron 2's audio settings (--vocoder griffin-lim "
                              f"follows any)")


class GriffinLimVocoder(Vocoder):
    """Log-mel -> linear magnitude by least squares through the filterbank, then Griffin-Lim, with the STFT and
    mel band of the Tacotron 2's own settings. `power` > 1 sharpens the magnitudes before the phase search (the
    least-squares inverse smears energy between harmonics; Tacotron's own recipe raised them to 1.5). `momentum` > 0
    is the fast Griffin-Lim (common/audio_processing.py)."""
    name = "griffin-lim"

    def __init__(self, audio: AudioConfig, device: torch.device, n_iters: int = GRIFFIN_LIM_ITERS, source: str = "",
                 power: float = 1.0, momentum: float = GRIFFIN_LIM_MOMENTUM) -> None:
        self.audio = audio
        self.source = source or "Griffin-Lim"
        self.n_iters = n_iters
        self.power = power
        self.momentum = momentum
        mel_fn = TacotronSTFT(**audio.stft_kwargs())
        self.pinv = torch.linalg.pinv(mel_fn.mel_basis).to(device)  # (n_freq, n_mel)
        self.stft = STFT(audio.filter_length, audio.hop_length, audio.win_length).to(device)
        self.fast_paths = {}

    @torch.no_grad()
    def __call__(self, mel: torch.Tensor, lengths: torch.Tensor) -> List[torch.Tensor]:
        hop = self.audio.hop_length
        pad_frames = self.audio.filter_length // hop + 1  # the STFT's reflect padding needs a window of frames
        waves = []
        for m, n in zip(mel.float(), lengths.tolist()):
            mag = (self.pinv @ torch.exp(m[:, :n])).clamp_min(1e-8) ** self.power
            # n frames give (n - 1) * hop samples: append silence for the last frame and the padding
            mag = torch.nn.functional.pad(mag, (0, max(1, pad_frames - n)), value=1e-8)
            wav = griffin_lim(mag[None], self.stft, n_iters=self.n_iters, seed=0, momentum=self.momentum)[0]
            waves.append(wav[:n * hop])
        return waves


class WaveGlowVocoder(Vocoder):
    """WaveGlow (weight norm folded; the plain model or a timed FastWaveGlow snapshot) and its denoiser."""
    name = "waveglow"

    def __init__(self, waveglow: WaveGlow, device: torch.device, half: bool,
                 dtypes: tuple = (None,), sigma: float = SIGMA_INFER, denoising_strength: float = 0.01,
                 chunk_frames: int = 200, overlap_frames: int = 8) -> None:
        self.audio, self.source = expected_mels(self.name, None, waveglow)
        self.sigma = sigma
        self.denoising_strength = denoising_strength
        self.defaults = {"sigma": sigma, "denoising_strength": denoising_strength}  # what a server falls back on
        self.chunk_frames = chunk_frames
        self.overlap_frames = overlap_frames
        self.half = half
        self.fast_paths = {}
        waveglow.remove_weightnorm()
        if half:
            waveglow.half()
        self.waveglow = waveglow
        self.engine: WaveGlowEngine
        if len(dtypes) > 1 or dtypes[0] is not None:  # one prepared dtype is timed too, so that reports name it
            self.engine, timings = tune_waveglow(waveglow, dtypes)
            self.fast_paths["waveglow_coupling_ms"] = {k: round(1e3 * v, 2) for k, v in timings.items()}
        else:
            self.engine = waveglow
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
        audio = torch.cat(list(self.pieces(mel)), dim=1)
        return [a[:n * self.hop_length] for a, n in zip(audio, lengths.tolist())]

    def stream(self, mel: torch.Tensor, n_frames: int) -> Iterator[torch.Tensor]:
        left = n_frames * self.hop_length
        for piece in self.pieces(mel):
            if left <= 0:
                break
            yield piece[0, :left]
            left -= piece.size(1)


class HiFiGANVocoder(Vocoder):
    """HiFi-GAN V1's generator. On a CPU on prepared weights (hifigan/fast_inference.py) in float32, with
    Winograd's convolutions where they are timed faster, or, where the CPU computes it natively and it is timed
    faster, bfloat16; on CUDA the generator itself, float16 under autocast with --fp16."""
    name = "hifigan"

    def __init__(self, device: torch.device, weights: str = "universal", dtypes: tuple = (torch.float32,)) -> None:
        self.audio = HIFIGAN_AUDIO
        self.source = hifigan_source(weights)
        self.device = device
        self.generator = load_generator(weights, device)
        self.fast_paths = {}
        engines = {dtype_name(dtype): self._engine(dtype) for dtype in dtypes}
        for engine in engines.values():
            if isinstance(engine, FastHiFiGAN) and engine.convolution_ms:
                self.fast_paths["hifigan_convs_ms_32_frames"] = {k: round(v, 1)
                                                                 for k, v in engine.convolution_ms.items()}
        if len(engines) > 1:
            probe = torch.randn(1, self.audio.n_mel_channels, 32, generator=torch.Generator().manual_seed(0))
            probe = probe.to(device)
            best, seconds = fastest({name: lambda e=e: e(probe) for name, e in engines.items()}, device)
            self.fast_paths["hifigan_ms_32_frames"] = {k: round(1e3 * v, 1) for k, v in seconds.items()}
        else:
            best = next(iter(engines))
        self.dtype = getattr(torch, best)
        self.engine = engines[best]

    def _engine(self, dtype: torch.dtype) -> Callable[[torch.Tensor], torch.Tensor]:
        """(1, n_mel, T) -> float32 (1, T * hop) in `dtype`."""
        if self.device.type == "cpu":
            return FastHiFiGAN(self.generator, dtype, winograd=dtype == torch.float32)

        @torch.no_grad()
        def autocast(mel: torch.Tensor) -> torch.Tensor:
            with torch.autocast(mel.device.type, dtype=dtype, enabled=dtype != torch.float32):
                return self.generator(mel.float())[:, 0].float()
        return autocast

    # Streaming: pieces of 64 frames (0.74 s of audio), each vocoded with 13 frames of context on either side, the
    # generator's whole receptive field (+-12.7 frames, measured by perturbing one frame), so that the joined pieces
    # equal the one-shot audio within rounding. The context costs 40 %: a vocoder at 2x real time streams at 1.4x,
    # each piece ready before the one before it has played (pieces that grow would stall where it is slower).
    STREAM_FRAMES, STREAM_CONTEXT_FRAMES = 64, 13

    def __call__(self, mel: torch.Tensor, lengths: torch.Tensor) -> List[torch.Tensor]:
        return [self.engine(m[None, :, :n])[0] for m, n in zip(mel, lengths.tolist())]

    def stream(self, mel: torch.Tensor, n_frames: int) -> Iterator[torch.Tensor]:
        hop, context = self.hop_length, self.STREAM_CONTEXT_FRAMES
        for start in range(0, n_frames, self.STREAM_FRAMES):
            stop = min(start + self.STREAM_FRAMES, n_frames)
            lo, hi = max(0, start - context), min(n_frames, stop + context)
            yield self.engine(mel[:1, :, lo:hi])[0, (start - lo) * hop:(stop - lo) * hop]


def hifigan_source(weights: str) -> str:
    return f"HiFi-GAN V1 {weights}" if weights.lower() in PUBLISHED else weights


def vocoder_dtypes(device: torch.device, amp: bool) -> tuple:
    """HiFi-GAN's candidates: float32, and with --amp-run float16 on CUDA, bfloat16 where the CPU has it."""
    if device.type == "cuda":
        return (torch.float16,) if amp else (torch.float32,)
    return (torch.float32, torch.bfloat16) if amp and bf16_native() else (torch.float32,)


def build_vocoder(name: str, tacotron2: ModelCard, device: torch.device, *, amp: bool = False,
                  waveglow: Optional[WaveGlow] = None, waveglow_dtypes: tuple = (None,), hifigan: str = "universal",
                  sigma: float = SIGMA_INFER, denoising_strength: float = 0.01,
                  griffin_lim_iters: int = GRIFFIN_LIM_ITERS, griffin_lim_power: float = 1.0,
                  griffin_lim_momentum: float = GRIFFIN_LIM_MOMENTUM) -> Vocoder:
    """The vocoder `name` (a key of VOCODERS) for a Tacotron 2 with this card, checked to fit its mels."""
    if name not in VOCODERS:
        raise VocoderUnavailable(f"unknown vocoder {name!r}; choose from {sorted(VOCODERS)}")
    if name == "waveglow" and waveglow is None:
        raise VocoderUnavailable("--vocoder waveglow needs --waveglow CKPT")
    audio, source = expected_mels(name, tacotron2, waveglow, hifigan)
    check_fits(tacotron2, name, audio, source)
    if name == "griffin-lim":
        return GriffinLimVocoder(tacotron2.audio, device, griffin_lim_iters, source, griffin_lim_power,
                                 griffin_lim_momentum)
    if name == "hifigan":
        return HiFiGANVocoder(device, hifigan, vocoder_dtypes(device, amp))
    return WaveGlowVocoder(waveglow, device, half=amp and device.type == "cuda", dtypes=waveglow_dtypes,
                           sigma=sigma, denoising_strength=denoising_strength)
