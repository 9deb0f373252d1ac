"""Tacotron 2 data: (text ids, mel) pairs from a filelist, and the padding collate."""
import argparse
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from common.audio import AudioConfig, AudioError, check_wav_header, load_wav
from common.filelist import FilelistError, load_filelist
from common.layers import TacotronSTFT
from common.model_package import Batch
from .alignment_targets import SEGMENTS_FILE, Segments, SegmentsError, frame_positions, read_segments, symbol_spans
from .text import EmptyTextError, text_to_sequence
from .text.frontend import TextFrontend, is_phonemes
from .text.symbols import symbols as SYMBOLS


class TextMelLoader(torch.utils.data.Dataset):
    """Items (text ids (T_in,), mel (n_mel, T_out), T_in) from `path|text` lines; given the corpus's `segments`
    (alignment_targets.py), a fourth: each frame's position in the symbols (T_out,), the guided attention's path.

    Every line is checked when the dataset is built, so that bad data stops training before the
    first step with the file and line named: the wav header (exists, mono, sample rate, bit depth)
    or, with load_mel_from_disk, the mel tensor's shape and dtype; the text (not empty after
    cleaning); and its segments (there, and the same phones as the text).
    """

    def __init__(self, dataset_path: str, filelist: str, audio: AudioConfig, text_cleaners: List[str],
                 load_mel_from_disk: bool = False, check: bool = True, cache_mels: bool = False,
                 frontend: Optional[TextFrontend] = None, segments: Optional[Dict[str, Segments]] = None) -> None:
        self.entries = load_filelist(filelist, dataset_path)
        self.audio = audio
        self.text_cleaners = text_cleaners
        if frontend is not None and frontend.reads_phonemes:  # plain-text lines read as the model reads text
            plain = [i for i, e in enumerate(self.entries) if not is_phonemes(e.fields[0])]
            for i, symbols in zip(plain, frontend.to_symbols([self.entries[i].fields[0] for i in plain])):
                self.entries[i] = self.entries[i]._replace(fields=[symbols, *self.entries[i].fields[1:]])
        self.load_mel_from_disk = load_mel_from_disk
        self.stft = TacotronSTFT(**audio.stft_kwargs())
        # mels kept in memory after their first computation (per worker process); ~2 MB per 10 s clip
        self.cache = {} if cache_mels else None
        self.texts = [self._text(e) for e in self.entries]
        # each symbol's (start, end) in seconds, read once: the guided attention's path
        self.spans = None if segments is None else [self._spans(e, t, segments)
                                                     for e, t in zip(self.entries, self.texts)]
        # a length per item for bucketing: audio frames from the wav headers, else the text length
        self.lengths = [len(t) for t in self.texts]
        if check:
            for i, entry in enumerate(tqdm(self.entries, desc=f"checking {os.path.basename(filelist)}", leave=False,
                                           disable=len(self.entries) < 500)):
                n_samples = self._check_audio(entry)
                if n_samples:
                    self.lengths[i] = n_samples // audio.hop_length

    def _text(self, entry) -> torch.Tensor:
        try:
            return torch.IntTensor(text_to_sequence(entry.fields[0], self.text_cleaners))
        except EmptyTextError as e:
            raise FilelistError(f"{entry.where}: {e}") from e

    def _spans(self, entry, text: torch.Tensor, segments: Dict[str, Segments]) -> np.ndarray:
        utt_id = os.path.splitext(os.path.basename(entry.path))[0]
        if utt_id not in segments:
            raise FilelistError(f"{entry.where}: {utt_id} has no line in the corpus's {SEGMENTS_FILE}")
        try:  # the phones must match: a mismatch would guide the attention to the wrong symbols
            return symbol_spans([SYMBOLS[int(i)] for i in text], segments[utt_id], 0.0)
        except ValueError as e:  # SegmentsError, or a phone festival's table does not know
            raise FilelistError(f"{entry.where}: {e}") from e

    def _positions(self, index: int, n_frames: int) -> torch.Tensor:
        hop_seconds = self.audio.hop_length / self.audio.sampling_rate
        spans = self.spans[index].copy()
        spans[-1, 1] = max(spans[-1, 1], n_frames * hop_seconds)  # the last symbol lasts to the last frame
        return frame_positions(spans, n_frames, hop_seconds)

    def _check_audio(self, entry) -> int:
        """Validate an entry's audio or mel; returns its number of samples (0 for mels)."""
        try:
            if self.load_mel_from_disk:
                self._load_mel(entry)
                return 0
            return check_wav_header(entry.path, self.audio.sampling_rate).frames
        except (AudioError, FilelistError) as e:
            raise FilelistError(f"{entry.where}: {e}") from e

    def _load_mel(self, entry) -> torch.Tensor:
        if not os.path.isfile(entry.path):
            raise FilelistError(f"{entry.path}: mel file not found")
        try:
            mel = torch.load(entry.path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise FilelistError(f"{entry.path}: not a readable mel tensor ({type(e).__name__})") from e
        if not isinstance(mel, torch.Tensor) or mel.dim() != 2 or mel.size(0) != self.audio.n_mel_channels \
                or not mel.is_floating_point() or mel.size(1) == 0:
            desc = f"{tuple(mel.shape)} {mel.dtype}" if isinstance(mel, torch.Tensor) else type(mel).__name__
            raise FilelistError(f"{entry.path}: expected a float mel of shape ({self.audio.n_mel_channels}, frames), "
                                f"got {desc}")
        bad = int((~torch.isfinite(mel)).sum())
        if bad:  # one NaN in one clip makes every later loss and weight NaN
            raise FilelistError(f"{entry.path}: mel has {bad} non-finite values (NaN or Inf) in "
                                f"{mel.size(1)} frames; recompute it (scripts/prepare_mels.sh)")
        return mel.float()

    def get_mel(self, entry) -> torch.Tensor:
        """(n_mel, T_out) log-mel of an entry, computed from the wav or read from disk."""
        if self.load_mel_from_disk:
            return self._load_mel(entry)
        audio = load_wav(entry.path, self.audio.sampling_rate, self.audio.max_wav_value)
        return self.stft.mel_spectrogram(audio.unsqueeze(0)).squeeze(0)

    def __getitem__(self, index: int) -> Tuple:
        entry = self.entries[index]
        if self.cache is not None and index in self.cache:
            mel = self.cache[index]
        else:
            try:
                mel = self.get_mel(entry)
            except (AudioError, FilelistError) as e:
                raise FilelistError(f"{entry.where}: {e}") from e
            if self.cache is not None:
                self.cache[index] = mel
        text = self.texts[index]
        if self.spans is None:
            return text, mel, len(text)
        return text, mel, len(text), self._positions(index, mel.size(1))

    def __len__(self) -> int:
        return len(self.entries)


class TextMelCollate:
    """Pads a list of items; sorts by decreasing text length; pads frames to a multiple of r."""

    def __init__(self, n_frames_per_step: int = 1) -> None:
        self.n_frames_per_step = n_frames_per_step

    def __call__(self, batch: Sequence[Tuple]):
        """Returns text_padded (B, T_in), input_lengths (B,), mel_padded (B, n_mel, T_out),
        gate_padded (B, T_out), output_lengths (B,), and where the items have them, their frame positions
        positions_padded (B, T_out) (padding: each item's last position)."""
        input_lengths, order = torch.sort(torch.LongTensor([len(x[0]) for x in batch]), dim=0, descending=True)
        text_padded = torch.zeros(len(batch), int(input_lengths[0]), dtype=torch.long)
        num_mels = batch[0][1].size(0)
        max_target_len = max(x[1].size(1) for x in batch)
        max_target_len += (-max_target_len) % self.n_frames_per_step
        mel_padded = torch.zeros(len(batch), num_mels, max_target_len)
        gate_padded = torch.zeros(len(batch), max_target_len)
        output_lengths = torch.zeros(len(batch), dtype=torch.long)
        positions_padded = torch.zeros(len(batch), max_target_len) if len(batch[0]) > 3 else None
        for i, j in enumerate(order.tolist()):
            text, mel = batch[j][0], batch[j][1]
            text_padded[i, :text.size(0)] = text
            mel_padded[i, :, :mel.size(1)] = mel
            gate_padded[i, mel.size(1) - 1:] = 1
            output_lengths[i] = mel.size(1)
            if positions_padded is not None:
                positions_padded[i, :mel.size(1)] = batch[j][3]
                positions_padded[i, mel.size(1):] = batch[j][3][-1]
        if positions_padded is None:
            return text_padded, input_lengths, mel_padded, gate_padded, output_lengths
        return text_padded, input_lengths, mel_padded, gate_padded, output_lengths, positions_padded


def pad_ids(sequences: Sequence[Sequence[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Symbol-id sequences -> (text (B, T_in) zero-padded, lengths (B,)), in the given order."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    text = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.long)
    for b, s in enumerate(sequences):
        text[b, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return text, lengths


def batch_to_device(batch, device: torch.device) -> Batch:
    """Collated tuple -> Batch(x, y, n_items) on `device` (n_items = real mel frames)."""
    text_padded, input_lengths, mel_padded, gate_padded, output_lengths = batch[:5]
    nb = device.type == "cuda"
    text_padded = text_padded.to(device, non_blocking=nb)
    input_lengths = input_lengths.to(device, non_blocking=nb)
    mel_padded = mel_padded.to(device, non_blocking=nb)
    gate_padded = gate_padded.to(device, non_blocking=nb)
    output_lengths = output_lengths.to(device, non_blocking=nb)
    x = (text_padded, input_lengths, mel_padded, int(text_padded.size(1)), output_lengths)
    y = (mel_padded, gate_padded, input_lengths, output_lengths) + tuple(t.to(device, non_blocking=nb)
                                                                         for t in batch[5:])
    return Batch(x, y, output_lengths.sum())


def get_data_loader(dataset_path: str, filelist: str, args: argparse.Namespace) -> TextMelLoader:
    segments = None
    if getattr(args, "guided_attention_durations", False):
        path = os.path.join(dataset_path, SEGMENTS_FILE)
        if os.path.isfile(path):
            try:
                segments = read_segments(path)
            except SegmentsError as e:
                raise FilelistError(str(e)) from e
        else:  # LJSpeech, flite's voices, an slt corpus built before 2026-12-07: training goes on, as it did
            warnings.warn(f"--guided-attention-durations: {path} not found, so the guided attention follows the "
                          f"diagonal, {args.guided_attention_sigma} wide (--guided-attention-sigma); "
                          f"scripts/make_corpus.py writes one for the slt voice")
    return TextMelLoader(dataset_path, filelist, AudioConfig.from_args(args), args.text_cleaners,
                         args.load_mel_from_disk, cache_mels=getattr(args, "cache_mels", False), segments=segments)


def get_collate_function(args: argparse.Namespace) -> TextMelCollate:
    return TextMelCollate(args.n_frames_per_step)
