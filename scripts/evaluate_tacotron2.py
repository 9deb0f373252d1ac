"""Quality of a Tacotron 2 on held-out sentences, in free-running (greedy) inference.

    python -m scripts.evaluate_tacotron2 --tacotron2 CKPT -d data/espeak \
        --filelist data/espeak/filelists/espeak_audio_text_test_filelist.txt -o eval/ [--calibrate]

Prints a table per sentence (diagonality, focus, stop ratio, MCD-DTW and spectral contrast against the teacher
mel, teacher-forced mel error, attention granularity), writes eval/metrics.json and one alignment picture per
sentence. --calibrate (espeak-ng corpora) adds the calibration table: every row measured from wavs alone with one
definition, against the teacher's mel — the teacher's own mel through Griffin-Lim (the vocoder's floor), the same
voice at 150 instead of 175 words a minute, espeak-ng's en-gb voice (another voice), and the model + Griffin-Lim.
A model that speaks lies below the en-gb row; one that hums lies far above it with contrast near 0.7.
"""
import argparse
import json
import os
import sys
import tempfile
from typing import Dict, List

import numpy as np
import torch

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.evaluate_tacotron2 ...")

import models
from common.audio import AudioConfig, load_wav
from common.layers import TacotronSTFT
from synthesis import GriffinLimVocoder
from tacotron2 import metrics
from tacotron2.data_function import TextMelLoader


def wav_mel(wav: torch.Tensor, stft: TacotronSTFT) -> np.ndarray:
    """(n_mel, T) log-mel of a waveform; one too short for the STFT's padding (a model that stopped at once) is
    padded with silence to a frame."""
    wav = wav.float()
    n_fft = stft.stft_fn.filter_length
    if wav.numel() <= n_fft // 2:
        wav = torch.nn.functional.pad(wav, (0, n_fft // 2 + 1 - wav.numel()))
    return stft.mel_spectrogram(wav[None]).squeeze(0).numpy()


def calibration(rows: List[Dict[str, object]], dataset: TextMelLoader, model: torch.nn.Module,
                audio: AudioConfig, griffin_lim_iters: int = 60) -> Dict[str, Dict[str, float]]:
    """MCD-DTW and contrast of each calibration row, averaged over the sentences of `rows` (see the docstring)."""
    from scripts.make_espeak_corpus import ensure_espeak, speak
    exe = ensure_espeak()
    stft = TacotronSTFT(**audio.stft_kwargs())
    vocoder = GriffinLimVocoder(audio.n_mel_channels, torch.device("cpu"), audio.sampling_rate, audio.hop_length,
                                griffin_lim_iters)
    scores: Dict[str, List[List[float]]] = {k: [] for k in ("griffin_lim_floor", "same_voice_150wpm", "en_gb_voice",
                                                             "model_griffin_lim")}
    with tempfile.TemporaryDirectory() as tmp:
        for i, row in enumerate(rows):
            entry = dataset.entries[i]
            teacher = wav_mel(load_wav(entry.path, audio.sampling_rate), stft)
            spoken = {}
            for name, rate, voice in (("same_voice_150wpm", 150, "en-us"), ("en_gb_voice", 175, "en-gb")):
                path = os.path.join(tmp, f"{name}.wav")
                speak(exe, entry.fields[0], path, audio.sampling_rate, rate, voice)
                spoken[name] = load_wav(path, audio.sampling_rate)
            teacher_t = torch.from_numpy(teacher)
            spoken["griffin_lim_floor"] = vocoder(teacher_t[None], torch.tensor([teacher.shape[1]]))[0]
            spoken["model_griffin_lim"] = vocoder(row["mel"][None], torch.tensor([row["mel"].size(1)]))[0]
            for name, wav in spoken.items():
                mel = wav_mel(wav, stft)
                scores[name].append([metrics.mcd_dtw(mel, teacher), metrics.contrast_ratio(mel, teacher)])
    return {k: {"mcd_dtw": float(np.mean([v[0] for v in vals])), "contrast": float(np.mean([v[1] for v in vals]))}
            for k, vals in scores.items()}


CALIBRATION_LABELS = {"griffin_lim_floor": "the teacher's own mel through Griffin-Lim (the vocoder floor)",
                      "same_voice_150wpm": "the same voice at 150 instead of 175 words/min",
                      "en_gb_voice": "espeak-ng's en-gb voice (another voice)",
                      "model_griffin_lim": "the model + Griffin-Lim"}


def format_calibration(table: Dict[str, Dict[str, float]]) -> str:
    lines = ["| against the espeak-ng teacher | MCD-DTW | contrast |", "|---|---:|---:|"]
    for key, label in CALIBRATION_LABELS.items():
        lines.append(f"| {label} | {table[key]['mcd_dtw']:.1f} | {table[key]['contrast']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tacotron2", required=True)
    parser.add_argument("-d", "--dataset-path", required=True)
    parser.add_argument("--filelist", required=True)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N sentences only")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--deterministic", action="store_true", help="prenet dropout off")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prenet dropout draws")
    parser.add_argument("--calibrate", action="store_true", help="the calibration table (needs espeak-ng)")
    args = parser.parse_args(argv)
    model, _ = models.load_model(args.tacotron2, "Tacotron2", torch.device("cpu"))
    audio = AudioConfig()
    dataset = TextMelLoader(args.dataset_path, args.filelist, audio, ["english_cleaners"])
    os.makedirs(args.output, exist_ok=True)
    rows = metrics.evaluate(model, dataset, args.limit, None if args.no_plots else args.output,
                            prenet_dropout=not args.deterministic, seed=args.seed, keep_tensors=True)
    summary = metrics.summarize(rows)
    print(metrics.format_table(rows, summary))
    result = {"summary": summary,
              "sentences": [{k: v for k, v in r.items() if k not in ("mel", "alignment")} for r in rows]}
    if args.calibrate:
        result["calibration"] = calibration(rows, dataset, model, audio)
        print()
        print(format_calibration(result["calibration"]))
    with open(os.path.join(args.output, "metrics.json"), "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
