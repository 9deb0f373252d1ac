"""Quality of a Tacotron 2 on held-out sentences, in free-running (greedy) inference.

    python -m scripts.evaluate_tacotron2 --tacotron2 CKPT -d data/espeak \
        --filelist data/espeak/filelists/espeak_audio_text_test_filelist.txt -o eval/ [--calibrate]

Prints a table per sentence (diagonality, focus, stop ratio, MCD-DTW and spectral contrast against the teacher
mel, teacher-forced mel error, attention granularity), writes eval/metrics.json and one picture per sentence
(the teacher's mel, the model's, the attention); --audio writes the wavs (teacher, model + Griffin-Lim, and with
--waveglow model + WaveGlow). --calibrate (espeak-ng corpora) adds the calibration table: every row measured from wavs alone with one
definition, against the teacher's mel — the teacher's own mel through Griffin-Lim (the vocoder's floor), the same
voice at 150 instead of 175 words a minute, espeak-ng's en-gb voice (another voice), and the model + Griffin-Lim
(with --waveglow also the teacher's mel and the model's through WaveGlow).
A model that speaks lies below the en-gb row; one that hums lies far above it with contrast near 0.7.
"""
import argparse
import json
import os
import sys
import tempfile
from typing import Dict, List, NamedTuple, Optional

import numpy as np
import torch

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.evaluate_tacotron2 ...")

import models
from common.audio import AudioConfig, load_wav, save_wav
from common.layers import TacotronSTFT
from synthesis import GriffinLimVocoder, Vocoder, WaveGlowVocoder, precision_policy
from tacotron2 import metrics
from tacotron2.data_function import TextMelLoader
from tacotron2.fast_inference import FastDecoder

DECODER_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "qint8": torch.qint8}


def wav_mel(wav: torch.Tensor, stft: TacotronSTFT) -> np.ndarray:
    """(n_mel, T) log-mel of a waveform; one too short for the STFT's padding (a model that stopped at once) is
    padded with silence to a frame."""
    wav = wav.float()
    n_fft = stft.stft_fn.filter_length
    if wav.numel() <= n_fft // 2:
        wav = torch.nn.functional.pad(wav, (0, n_fft // 2 + 1 - wav.numel()))
    return stft.mel_spectrogram(wav[None]).squeeze(0).numpy()


def spoken_texts(dataset_path: str) -> Dict[str, str]:
    """id -> the transcript espeak-ng spoke, from DATASET/metadata.csv (a phonemized filelist holds ARPAbet)."""
    path = os.path.join(dataset_path, "metadata.csv")
    if not os.path.exists(path):
        return {}
    from scripts.write_filelists import read_metadata
    return dict(read_metadata(path, column=1))


def clip_id(entry) -> str:
    return os.path.splitext(os.path.basename(entry.path))[0]


class Teacher(NamedTuple):
    """A held-out sentence's recording (L,) and its log-mel (n_mel, T), read once for every row that needs them."""
    recording: torch.Tensor
    mel: np.ndarray


def read_teachers(rows: List[Dict[str, object]], dataset: TextMelLoader, stft: TacotronSTFT,
                  sampling_rate: int) -> List[Teacher]:
    teachers = []
    for i in range(len(rows)):
        recording = load_wav(dataset.entries[i].path, sampling_rate)
        teachers.append(Teacher(recording, wav_mel(recording, stft)))
    return teachers


def vocode_rows(rows: List[Dict[str, object]], teachers: List[Teacher], vocoders: Dict[str, Vocoder],
                stft: TacotronSTFT, sampling_rate: int, audio_dir: Optional[str] = None) -> Dict[str, List[List[float]]]:
    """For every vocoder, the teacher's own mel and the model's mel of each row through it: [MCD-DTW, contrast]
    per sentence against the teacher's mel, keyed `teacher_<vocoder>` and `model_<vocoder>`; the wavs (and the
    teacher's recording) are written to audio_dir as `<id>_<key>.wav` when given."""
    scores: Dict[str, List[List[float]]] = {}
    for row, teacher in zip(rows, teachers):
        if audio_dir:
            save_wav(os.path.join(audio_dir, f"{row['id']}_teacher.wav"), teacher.recording, sampling_rate)
        for name, vocoder in vocoders.items():
            for source, mel in (("teacher", torch.from_numpy(teacher.mel)), ("model", row["mel"])):
                # as written to a wav file: clipped to [-1, 1]
                wav = vocoder(mel[None], torch.tensor([mel.size(1)]))[0].float().clamp(-1, 1)
                got = wav_mel(wav, stft)
                scores.setdefault(f"{source}_{name}", []).append(
                    [metrics.mcd_dtw(got, teacher.mel), metrics.contrast_ratio(got, teacher.mel)])
                if audio_dir and source == "model":
                    save_wav(os.path.join(audio_dir, f"{row['id']}_{name}.wav"), wav, sampling_rate)
    return scores


def calibration(dataset: TextMelLoader, teachers: List[Teacher],
                vocoded: Dict[str, List[List[float]]], stft: TacotronSTFT, sampling_rate: int,
                texts: Dict[str, str]) -> Dict[str, Dict[str, float]]:
    """MCD-DTW and contrast of each calibration row, averaged over the sentences of `teachers` (see the docstring):
    the vocoder rows of `vocoded` plus the same voice at 150 words a minute and the en-gb voice."""
    from scripts.make_espeak_corpus import ensure_espeak, speak
    exe = ensure_espeak()
    scores: Dict[str, List[List[float]]] = {"same_voice_150wpm": [], "en_gb_voice": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i, teacher in enumerate(teachers):
            entry = dataset.entries[i]
            text = texts.get(clip_id(entry), entry.fields[0])
            if "{" in text:
                raise SystemExit(f"error: {entry.filelist}:{entry.line}: the calibration needs the sentence espeak-ng "
                                 f"spoke, and this filelist holds ARPAbet with no metadata.csv beside the corpus")
            for name, rate, voice in (("same_voice_150wpm", 150, "en-us"), ("en_gb_voice", 175, "en-gb")):
                path = os.path.join(tmp, f"{name}.wav")
                speak(exe, text, path, sampling_rate, rate, voice)
                mel = wav_mel(load_wav(path, sampling_rate), stft)
                scores[name].append([metrics.mcd_dtw(mel, teacher.mel), metrics.contrast_ratio(mel, teacher.mel)])
    scores.update(vocoded)
    return {k: {"mcd_dtw": float(np.mean([v[0] for v in vals])), "contrast": float(np.mean([v[1] for v in vals]))}
            for k, vals in scores.items()}


CALIBRATION_LABELS = {"teacher_griffin_lim": "the teacher's own mel through Griffin-Lim (the vocoder floor)",
                      "teacher_waveglow": "the teacher's own mel through WaveGlow",
                      "same_voice_150wpm": "the same voice at 150 instead of 175 words/min",
                      "en_gb_voice": "espeak-ng's en-gb voice (another voice)",
                      "model_griffin_lim": "the model + Griffin-Lim",
                      "model_waveglow": "the model + WaveGlow"}


def format_calibration(table: Dict[str, Dict[str, float]]) -> str:
    lines = ["| against the espeak-ng teacher | MCD-DTW | contrast |", "|---|---:|---:|"]
    for key, label in CALIBRATION_LABELS.items():
        if key in table:
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
    parser.add_argument("--audio", action="store_true",
                        help="write OUTPUT/<id>_teacher.wav and the model's <id>_griffin_lim.wav (and _waveglow.wav)")
    parser.add_argument("--waveglow", default=None, help="a WaveGlow checkpoint: adds its rows and wavs")
    parser.add_argument("--sigma-infer", type=float, default=0.6, help="WaveGlow's sigma")
    parser.add_argument("--denoising-strength", type=float, default=0.01)
    parser.add_argument("--griffin-lim-iters", type=int, default=60)
    parser.add_argument("--decoder", choices=["plain", *DECODER_DTYPES], default="plain",
                        help="decode with the fused fast decoder in this precision (qint8: int8 LSTM matrices) "
                             "instead of the model's own step, to measure what a fast path costs in quality")
    args = parser.parse_args(argv)
    model, _ = models.load_model(args.tacotron2, "Tacotron2", torch.device("cpu"))
    decode = None if args.decoder == "plain" else FastDecoder(model.decoder, DECODER_DTYPES[args.decoder]).infer
    audio = AudioConfig()
    dataset = TextMelLoader(args.dataset_path, args.filelist, audio, ["english_cleaners"])
    os.makedirs(args.output, exist_ok=True)
    rows = metrics.evaluate(model, dataset, args.limit, None if args.no_plots else args.output,
                            prenet_dropout=not args.deterministic, seed=args.seed, keep_tensors=True, decode=decode)
    texts = spoken_texts(args.dataset_path)
    for row in rows:
        row["sentence"] = texts.get(row["id"], row["text"])
    summary = metrics.summarize(rows)
    print(metrics.format_table(rows, summary))
    result = {"summary": summary,
              "sentences": [{k: v for k, v in r.items() if k not in ("mel", "alignment")} for r in rows]}
    if args.calibrate or args.audio:
        cpu = torch.device("cpu")
        vocoders: Dict[str, Vocoder] = {"griffin_lim": GriffinLimVocoder(
            audio.n_mel_channels, cpu, audio.sampling_rate, audio.hop_length, args.griffin_lim_iters)}
        if args.waveglow:
            waveglow, _ = models.load_model(args.waveglow, "WaveGlow", cpu)
            vocoders["waveglow"] = WaveGlowVocoder(waveglow, cpu, precision_policy(cpu, amp=False), args.sigma_infer,
                                                   args.denoising_strength, audio.hop_length)
        stft = TacotronSTFT(**audio.stft_kwargs())
        teachers = read_teachers(rows, dataset, stft, audio.sampling_rate)
        vocoded = vocode_rows(rows, teachers, vocoders, stft, audio.sampling_rate, args.output if args.audio else None)
        result["vocoded"] = {k: [{"mcd_dtw": v[0], "contrast": v[1]} for v in vals] for k, vals in vocoded.items()}
    if args.calibrate:
        result["calibration"] = calibration(dataset, teachers, vocoded, stft, audio.sampling_rate, texts)
        print()
        print(format_calibration(result["calibration"]))
    with open(os.path.join(args.output, "metrics.json"), "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
