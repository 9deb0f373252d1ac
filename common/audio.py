"""Audio configuration and wav I/O with validation that names the file."""
import dataclasses
import os
from typing import List, Tuple

import numpy as np
import soundfile as sf
import torch


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """STFT and mel settings shared by both datasets and inference; field names equal argparse dests."""
    sampling_rate: int = 22050
    filter_length: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mel_channels: int = 80
    mel_fmin: float = 0.0
    mel_fmax: float = 8000.0
    max_wav_value: float = 32768.0

    @classmethod
    def from_args(cls, args) -> "AudioConfig":
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    @classmethod
    def from_train_args(cls, train_args) -> "AudioConfig":
        """The settings a checkpoint's training flags record; NVIDIA's defaults for one without (None or {}), which
        is what its published models were trained with."""
        return cls(**{f.name: (train_args or {}).get(f.name, f.default) for f in dataclasses.fields(cls)})

    def differences(self, other: "AudioConfig") -> List[Tuple[str, object, object]]:
        """(setting, ours, theirs) for each STFT or mel setting in which two models' mels differ; max_wav_value
        only scales the 16-bit files on disk."""
        return [(f.name, getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)
                if f.name != "max_wav_value" and float(getattr(self, f.name)) != float(getattr(other, f.name))]

    def stft_kwargs(self) -> dict:
        """Keyword arguments of common.layers.TacotronSTFT."""
        return {k: getattr(self, k) for k in ("filter_length", "hop_length", "win_length", "n_mel_channels",
                                              "sampling_rate", "mel_fmin", "mel_fmax")}


class AudioError(ValueError):
    """A wav that cannot be used for training, with the file named."""


_ACCEPTED_SUBTYPES = {"PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}


def check_wav_header(path: str, sampling_rate: int) -> "sf._SoundFileInfo":
    """Validate a wav's header without reading its samples; AudioError names the file and the fix."""
    if not os.path.isfile(path):
        raise AudioError(f"{path}: audio file not found")
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError for non-audio
        raise AudioError(f"{path}: not a readable audio file ({e})") from e
    if info.channels != 1:
        raise AudioError(f"{path}: {info.channels} channels; mono is needed "
                         f"(e.g. sox in.wav -c 1 out.wav)")
    if info.samplerate != sampling_rate:
        raise AudioError(f"{path}: sampled at {info.samplerate} Hz, expected {sampling_rate} Hz "
                         f"(resample, e.g. sox in.wav -r {sampling_rate} out.wav)")
    if info.subtype not in _ACCEPTED_SUBTYPES:
        raise AudioError(f"{path}: sample format {info.subtype} is not supported; use 16-bit PCM "
                         f"(e.g. sox in.wav -b 16 out.wav)")
    if info.frames == 0:
        raise AudioError(f"{path}: the file holds no samples")
    return info


def load_wav(path: str, sampling_rate: int, max_wav_value: float = 32768.0) -> torch.Tensor:
    """Read a mono wav as float32 in [-1, 1], (L,).

    16-bit files are divided by max_wav_value as in the reference; 24/32-bit and float files
    are read at full resolution. Raises AudioError (naming the file) for a missing, empty,
    non-audio, multi-channel, 8-bit or wrongly sampled file, or float samples beyond [-1, 1].
    """
    info = check_wav_header(path, sampling_rate)
    if info.subtype == "PCM_16":
        data, _ = sf.read(path, dtype="int16")
        audio = torch.from_numpy(data.astype(np.float32)) / max_wav_value
    else:
        data, _ = sf.read(path, dtype="float32")
        audio = torch.from_numpy(data)
    if not bool(torch.isfinite(audio).all()):
        bad = int((~torch.isfinite(audio)).sum())
        raise AudioError(f"{path}: {bad} NaN/inf samples; re-export the file")
    peak = float(audio.abs().max())
    if peak > 1.0:
        raise AudioError(f"{path}: samples reach {peak:.3f}, outside [-1, 1]")
    return audio


def save_wav(path: str, audio: torch.Tensor, sampling_rate: int) -> None:
    """Write (L,) float audio in [-1, 1] as 16-bit PCM, atomically (temp file + rename)."""
    data = (audio.detach().float().clamp(-1, 1).cpu().numpy() * 32767).astype(np.int16)
    tmp = path + ".tmp.wav"
    sf.write(tmp, data, sampling_rate, subtype="PCM_16")
    os.replace(tmp, path)


def snr_db(reference: torch.Tensor, test: torch.Tensor) -> float:
    """10 log10 of the reference's energy over the difference's, in float64: how far a fast path's output (a
    waveform, usually) is from the path it stands in for."""
    noise = (reference.double() - test.double()).pow(2).sum()
    return float(10 * torch.log10(reference.double().pow(2).sum() / noise.clamp_min(1e-30)))
