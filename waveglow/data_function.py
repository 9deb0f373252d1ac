"""WaveGlow data: random fixed-length audio segments and their mels."""
import argparse
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from common.audio import AudioConfig, AudioError, check_wav_header, load_wav
from common.filelist import FilelistError, load_filelist
from common.layers import TacotronSTFT
from common.model_package import Batch


class MelAudioLoader(torch.utils.data.Dataset):
    """Items (mel (n_mel, segment_length // hop + 1), audio (segment_length,)).

    The segment's start is drawn from a generator seeded by (seed, epoch, index), so a resumed
    run draws the same segments as an uninterrupted one. Short clips are zero-padded.
    """

    def __init__(self, dataset_path: str, filelist: str, audio: AudioConfig, segment_length: int,
                 seed: int = 1234, check: bool = True) -> None:
        self.entries = load_filelist(filelist, dataset_path)
        self.audio = audio
        self.segment_length = segment_length
        self.seed = seed
        self.epoch = 0
        self.stft = TacotronSTFT(**audio.stft_kwargs())
        if check:
            for e in self.entries:
                try:
                    check_wav_header(e.path, audio.sampling_rate)
                except AudioError as err:
                    raise FilelistError(f"{e.where}: {err}") from err

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        entry = self.entries[index]
        try:
            audio = load_wav(entry.path, self.audio.sampling_rate, self.audio.max_wav_value)
        except AudioError as e:
            raise FilelistError(f"{entry.where}: {e}") from e
        if audio.size(0) >= self.segment_length:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            start = int(rng.integers(0, audio.size(0) - self.segment_length + 1))
            audio = audio[start:start + self.segment_length]
        else:
            audio = F.pad(audio, (0, self.segment_length - audio.size(0)))
        mel = self.stft.mel_spectrogram(audio.unsqueeze(0)).squeeze(0)
        return mel, audio

    def __len__(self) -> int:
        return len(self.entries)


def batch_to_device(batch, device: torch.device) -> Batch:
    """Collated (mel (B, n_mel, F), audio (B, L)) -> Batch on `device` (n_items = samples)."""
    mel, audio = batch
    nb = device.type == "cuda"
    mel, audio = mel.to(device, non_blocking=nb), audio.to(device, non_blocking=nb)
    return Batch((mel, audio), audio, torch.tensor(audio.numel(), device=device))


def get_data_loader(dataset_path: str, filelist: str, args: argparse.Namespace) -> MelAudioLoader:
    return MelAudioLoader(dataset_path, filelist, AudioConfig.from_args(args), args.segment_length, args.seed)


def get_collate_function(args: argparse.Namespace):
    return torch.utils.data.default_collate
