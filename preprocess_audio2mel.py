"""Compute mel spectrograms of a filelist's wavs once, for `train.py --load-mel-from-disk`.

    python preprocess_audio2mel.py -d LJSpeech-1.1 --wav-files filelists/ljs_audio_text_train_filelist.txt \
        --mel-files filelists/ljs_mel_text_train_filelist.txt

Each `wavs/X.wav|text` line of --wav-files gives a torch tensor (n_mel, frames) at the path named on the
same line of --mel-files. Existing mels are kept unless --overwrite.
"""
import argparse
import os
import sys

import torch
from tqdm import tqdm

from common.audio import AudioConfig, AudioError, load_wav
from common.checkpoint import atomic_save
from common.output import OutputError, writable_folder
from common.filelist import FilelistError, load_filelist
from common.layers import TacotronSTFT
from common.flag_types import COUNT, NONNEG, POSITIVE


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", "--dataset-path", default="./")
    parser.add_argument("--wav-files", required=True, help="audio filelist")
    parser.add_argument("--mel-files", required=True, help="mel filelist (same lines, .pt paths)")
    parser.add_argument("--overwrite", action="store_true")
    d = AudioConfig()
    for name in ("sampling_rate", "filter_length", "hop_length", "win_length", "n_mel_channels"):
        parser.add_argument("--" + name.replace("_", "-"), type=COUNT, default=getattr(d, name))
    for name, kind in (("mel_fmin", NONNEG), ("mel_fmax", POSITIVE), ("max_wav_value", POSITIVE)):
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(d, name))
    args = parser.parse_args(argv)
    audio = AudioConfig.from_args(args)
    try:
        wavs = load_filelist(args.wav_files, args.dataset_path)
        mels = load_filelist(args.mel_files, args.dataset_path)
    except FilelistError as e:
        sys.exit(f"error: {e}")
    if len(wavs) != len(mels):
        sys.exit(f"error: {args.wav_files} has {len(wavs)} entries but {args.mel_files} has {len(mels)}")
    try:  # every folder the mels go to, before the first is computed
        for folder in sorted({os.path.dirname(mel.path) for mel in mels}):
            writable_folder(folder, f"--mel-files {args.mel_files}:")
    except OutputError as e:
        sys.exit(f"error: {e}")
    stft = TacotronSTFT(**audio.stft_kwargs())
    for wav, mel in tqdm(list(zip(wavs, mels)), desc="mels"):
        if os.path.exists(mel.path) and not args.overwrite:
            continue
        try:
            y = load_wav(wav.path, audio.sampling_rate, audio.max_wav_value)
        except AudioError as e:
            sys.exit(f"error: {wav.where}: {e}")
        with torch.no_grad():
            mel_spectrogram = stft.mel_spectrogram(y.unsqueeze(0)).squeeze(0).clone()
        try:
            atomic_save(mel_spectrogram, mel.path)  # makes the mel's folder
        except OSError as e:  # a disk that fills part-way: the mels written so far are whole, and kept
            sys.exit(f"error: {mel.where}: cannot write {mel.path} ({e.strerror or e}); the mels written so far "
                     "are whole: free some space and run again (existing mels are skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
