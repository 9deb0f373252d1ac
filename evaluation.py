"""Judging a Tacotron 2 on held-out sentences, as a library (scripts/evaluate_tacotron2.py is its command line).

`evaluate_model` synthesises each sentence of a filelist in free-running (greedy) inference and scores it:
alignment, stop and mel figures against the teacher (tacotron2/metrics.py), then one table of signals, each judged
against the teacher the same way from its wav alone: the model through each vocoder, the teacher's own mel through
each vocoder (the vocoder's floor), and with `calibrate` the teacher's recording, an averaged hum (what a model
that learnt only the mean would say) and other voices speaking the same sentences (OTHER_VOICES). Columns:
MCD-DTW and contrast of the mel (common/mel_metrics.py; our log-mel distance, not the dB mel-cepstral
distortion of the literature) and with `listen` what listeners we did not write make of it: pocketsphinx's
WER/CER against the words spoken and DNSMOS (common/listeners.py).
"""
import os
import tempfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch
from scipy.ndimage import uniform_filter

from common import listeners
from common.audio import load_wav, save_wav
from common.layers import TacotronSTFT
from common.listeners import SCORE_COLUMNS
from corpora.filelists import read_metadata
from corpora.voices import speak
from common.checkpoint import ModelCard, model_card
from synthesis import text_frontend
from tacotron2 import metrics
from tacotron2.data_function import TextMelLoader
from tacotron2.model import Tacotron2
from tacotron2.text.frontend import TextFrontend
from vocoders import GRIFFIN_LIM_ITERS, GRIFFIN_LIM_MOMENTUM, SIGMA_INFER, Vocoder, build_vocoder
from waveglow.model import WaveGlow


def wav_mel(wav: torch.Tensor, stft: TacotronSTFT) -> np.ndarray:
    """(n_mel, T) log-mel of a waveform; one too short for the STFT's padding (a model that stopped at once) is
    padded with silence to a frame."""
    wav = wav.float()
    n_fft = stft.stft_fn.filter_length
    if wav.numel() <= n_fft // 2:
        wav = torch.nn.functional.pad(wav, (0, n_fft // 2 + 1 - wav.numel()))
    return stft.mel_spectrogram(wav[None]).squeeze(0).numpy()


def spoken_texts(dataset_path: str, column: int = 1) -> Dict[str, str]:
    """id -> column 1 (the sentence the voice was given) or 2 (the words it spoke, for the recogniser) of
    DATASET/metadata.csv; a phonemized filelist holds ARPAbet, so these come from the metadata."""
    path = os.path.join(dataset_path, "metadata.csv")
    if not os.path.exists(path):
        return {}
    return dict(read_metadata(path, column=column))


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


# Other voices speaking the same sentences, per teacher voice: where a model that speaks should lie below
OTHER_VOICES = {"espeak": (("same_voice_150wpm", "espeak-150wpm", "the same voice at 150 instead of 175 words/min"),
                           ("en_gb_voice", "espeak-gb", "espeak-ng's en-gb voice (another voice)")),
                "slt": (("flite_slt", "flite-slt", "flite's slt: the same speaker, another synthesiser"),
                        ("flite_kal16", "flite-kal16", "flite's kal16 (another voice, male)")),
                "flite-kal16": (("slt", "slt", "festival's slt (another voice, female)"),
                                ("flite_rms", "flite-rms", "flite's rms (another male voice)"))}
HUM = "an averaged hum: the teacher's mel blurred over 9 bands x 15 frames, through Griffin-Lim"


def signal_labels(vocoders: Sequence[str], voice: str, calibrate: bool, floor: bool = True) -> Dict[str, str]:
    """key -> description of every signal judged against the teacher, in table order."""
    names = {"griffin_lim": "Griffin-Lim", "waveglow": "WaveGlow",
             "hifigan": "HiFi-GAN V1 (the published universal generator, not a WaveGlow)"}
    labels = {"teacher": "the teacher's recording"} if calibrate else {}
    if floor:
        labels.update({f"teacher_{v}": f"the teacher's own mel through {names[v]}" for v in vocoders})
    if calibrate:
        labels["hum"] = HUM
        labels.update({key: label for key, _, label in OTHER_VOICES.get(voice, ())})
    labels.update({f"model_{v}": f"the model + {names[v]}" for v in vocoders})
    return labels


class Judging(NamedTuple):
    """What `evaluate_model` measures beyond the mel figures, and how."""
    voice: str = "espeak"  # the corpus's teacher voice: which other voices calibrate against it
    calibrate: bool = False  # the teacher's recording, a hum and other voices as rows
    listen: bool = False  # the recogniser and DNSMOS on every row
    audio_dir: Optional[str] = None  # where the teacher's and the model's wavs go
    griffin_lim_iters: int = GRIFFIN_LIM_ITERS  # these three apply to the teacher's rows too: one floor, one way
    griffin_lim_momentum: float = GRIFFIN_LIM_MOMENTUM
    griffin_lim_power: float = 1.0  # applied to the teacher's mel too, so the floor is measured the same way
    sigma: float = SIGMA_INFER  # WaveGlow's
    denoising_strength: float = 0.01
    waveglow_dtype: Optional[torch.dtype] = None  # WaveGlow's coupling networks on a FastWaveGlow; None: the model
    hifigan: Optional[str] = None  # HiFi-GAN's weights (vocoders.py): a column of its own; None: none
    jobs: int = 0  # processes judging the sentences side by side, each with its share of the threads; 0: auto_jobs
    floor: bool = True  # the teacher's own mel through each vocoder as rows (False: a model's rows only)


def auto_jobs(n_sentences: int, per_job: int = 8) -> int:
    """One judging process a core, each with at least `per_job` sentences: a process costs a few seconds to start
    (torch, the vocoders), which a handful of sentences does not repay."""
    return max(1, min(len(os.sched_getaffinity(0)), n_sentences // per_job))


def sentence_signals(row: Dict[str, object], teacher: Teacher, text: str, vocoders: Dict[str, Vocoder],
                     judging: Judging, sampling_rate: int, tmp: str, seed: int = 0) -> Dict[str, torch.Tensor]:
    """The wavs of one held-out sentence, keyed as `signal_labels` names them (each as written to a wav file:
    clipped to [-1, 1]). A vocoder's random draws (WaveGlow's noise) are seeded by `seed` and the signal's key:
    a signal sounds the same whichever process judges it and whichever other rows are judged."""
    def vocode(key: str, vocoder: Vocoder, mel: torch.Tensor) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 2 ** 32 + zlib.crc32(key.encode()))
            return vocoder(mel[None], torch.tensor([mel.size(1)]))[0].float().clamp(-1, 1)
    wavs: Dict[str, torch.Tensor] = {"teacher": teacher.recording} if judging.calibrate else {}
    for name, vocoder in vocoders.items() if judging.floor else ():
        wavs[f"teacher_{name}"] = vocode(f"teacher_{name}", vocoder, torch.from_numpy(teacher.mel))
    if judging.calibrate:
        blurred = uniform_filter(teacher.mel, size=(9, 15), mode="nearest")
        wavs["hum"] = vocode("hum", vocoders["griffin_lim"], torch.from_numpy(blurred))
        for key, other, _ in OTHER_VOICES.get(judging.voice, ()):
            path = os.path.join(tmp, f"{key}.wav")
            speak(other, [text], [path], sampling_rate, jobs=1)
            wavs[key] = load_wav(path, sampling_rate)
    for name, vocoder in vocoders.items():
        wavs[f"model_{name}"] = vocode(f"model_{name}", vocoder, row["mel"])
    return wavs


def judging_vocoders(card: ModelCard, judging: Judging, waveglow: Optional[WaveGlow] = None) -> Dict[str, Vocoder]:
    """Griffin-Lim, and WaveGlow and HiFi-GAN where given, set as `judging` says, for a model with this card."""
    cpu = torch.device("cpu")
    vocoders: Dict[str, Vocoder] = {"griffin_lim": build_vocoder("griffin-lim", card, cpu,
                                                                 griffin_lim_iters=judging.griffin_lim_iters,
                                                                 griffin_lim_power=judging.griffin_lim_power,
                                                                 griffin_lim_momentum=judging.griffin_lim_momentum)}
    if waveglow is not None:
        vocoders["waveglow"] = build_vocoder("waveglow", card, cpu, waveglow=waveglow, sigma=judging.sigma,
                                             denoising_strength=judging.denoising_strength,
                                             waveglow_dtypes=(judging.waveglow_dtype,))
    if judging.hifigan:
        vocoders["hifigan"] = build_vocoder("hifigan", card, cpu, hifigan=judging.hifigan)
    return vocoders


def judge_signals(rows: List[Dict[str, object]], teachers: List[Teacher], texts: List[str], said: List[str],
                  vocoders: Dict[str, Vocoder], judging: Judging, stft: TacotronSTFT,
                  sampling_rate: int, first: int = 0) -> Dict[str, List[Dict[str, object]]]:
    """Every signal of every sentence scored against its teacher: MCD-DTW and contrast of its mel against the
    teacher's, and with `judging.listen` what the recogniser heard, its WER/CER against the words spoken and
    DNSMOS. The teacher's recording and the model's wavs go to judging.audio_dir as `<id>_teacher.wav`,
    `<id>_<vocoder>.wav` when given. A sentence's index (`first` + its place in `rows`) seeds its vocoders'
    random draws (sentence_signals)."""
    audio_dir = judging.audio_dir
    scores: Dict[str, List[Dict[str, object]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (row, teacher, text, words) in enumerate(zip(rows, teachers, texts, said)):
            wavs = sentence_signals(row, teacher, text, vocoders, judging, sampling_rate, tmp, seed=first + i)
            for key, wav in wavs.items():
                got = wav_mel(wav, stft)
                score: Dict[str, object] = {"mcd_dtw": metrics.mcd_dtw(got, teacher.mel),
                                            "contrast": metrics.contrast_ratio(got, teacher.mel)}
                if judging.listen:
                    score.update(listeners.listen(wav.numpy(), sampling_rate, words))
                scores.setdefault(key, []).append(score)
            if audio_dir:
                save_wav(os.path.join(audio_dir, f"{row['id']}_teacher.wav"), teacher.recording, sampling_rate)
                for name in vocoders:
                    save_wav(os.path.join(audio_dir, f"{row['id']}_{name}.wav"), wavs[f"model_{name}"], sampling_rate)
    return scores


def _judge_shard(rows: List[Dict[str, object]], teachers: List[Teacher], texts: List[str], said: List[str],
                 card: ModelCard, judging: Judging, waveglow: Optional[WaveGlow], first: int,
                 threads: int) -> Dict[str, List[Dict[str, object]]]:
    """judge_signals with its vocoders built where it runs (in a judging process of its own: `threads` threads)."""
    torch.set_num_threads(threads)
    return judge_signals(rows, teachers, texts, said, judging_vocoders(card, judging, waveglow), judging,
                         TacotronSTFT(**card.audio.stft_kwargs()), card.audio.sampling_rate, first)


def judge_sentences(rows: List[Dict[str, object]], teachers: List[Teacher], texts: List[str], said: List[str],
                    card: ModelCard, judging: Judging,
                    waveglow: Optional[WaveGlow] = None) -> Dict[str, List[Dict[str, object]]]:
    """judge_signals over `judging.jobs` processes, each a contiguous share of the sentences and of this process's
    threads: the recogniser runs on one core and holds the interpreter's lock (threads would wait for it), so a
    second process is what keeps a second core busy while it listens. The scores are those of one process, sentence
    for sentence."""
    slim = [{"id": row["id"], "mel": row["mel"]} for row in rows]  # what the signals need of a row
    jobs = max(1, min(judging.jobs or auto_jobs(len(rows)), len(rows)))
    if jobs == 1:
        return _judge_shard(slim, teachers, texts, said, card, judging, waveglow, 0, torch.get_num_threads())
    bounds = [round(k * len(rows) / jobs) for k in range(jobs + 1)]
    threads = max(1, torch.get_num_threads() // jobs)
    with ProcessPoolExecutor(jobs, mp_context=torch.multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_judge_shard, slim[a:b], teachers[a:b], texts[a:b], said[a:b], card, judging,
                               waveglow, a, threads) for a, b in zip(bounds, bounds[1:])]
        parts = [future.result() for future in futures]
    return {key: [score for part in parts for score in part[key]] for key in parts[0]}


def mean_scores(scores: Dict[str, List[Dict[str, object]]], labels: Dict[str, str]) -> Dict[str, Dict[str, object]]:
    """key -> {"label", and the mean of every numeric score over the sentences}, in the labels' order."""
    table = {}
    for key, label in labels.items():
        if key in scores:
            table[key] = {"label": label, **{k: float(np.mean([s[k] for s in scores[key]]))
                                             for k, _, _ in SCORE_COLUMNS if k in scores[key][0]}}
    return table


def format_calibration(table: Dict[str, Dict[str, object]], teacher: str = "the teacher") -> str:
    """A markdown table of `mean_scores`' rows, with the columns that were measured."""
    columns = [(k, name, fmt) for k, name, fmt in SCORE_COLUMNS if any(k in row for row in table.values())]
    lines = [f"| against {teacher} | " + " | ".join(name for _, name, _ in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for row in table.values():
        lines.append(f"| {row['label']} | " + " | ".join(fmt.format(row[k]) if k in row else "" for k, _, fmt in columns)
                     + " |")
    return "\n".join(lines)


def evaluate_model(model: Tacotron2, dataset_path: str, filelist: str, judging: Judging,
                   waveglow: Optional[WaveGlow] = None, limit: Optional[int] = None, plot_dir: Optional[str] = None,
                   prenet_dropout: bool = True, seed: int = 0, decode: Optional[Callable] = None,
                   frontend: Optional[TextFrontend] = None) -> Dict[str, object]:
    """{"summary", "sentences" (each with its "signals" where judged) and "calibration" (mean scores of each
    signal, labelled)} of the model on the filelist's first `limit` sentences; see the module docstring. Plain-text
    lines reach the model through its front end (`frontend`, by default the one its checkpoint names), and its
    mels are judged with its checkpoint's audio settings."""
    card = model_card(model)
    audio = card.audio
    frontend = frontend or text_frontend(model)
    dataset = TextMelLoader(dataset_path, filelist, audio, list(frontend.cleaners), frontend=frontend)
    rows = metrics.evaluate(model, dataset, limit, plot_dir, prenet_dropout=prenet_dropout, seed=seed,
                            keep_tensors=True, decode=decode)
    texts = spoken_texts(dataset_path)
    for row in rows:
        row["sentence"] = texts.get(row["id"], row["text"])
    result: Dict[str, object] = {
        "summary": metrics.summarize(rows),
        "sentences": [{k: v for k, v in r.items() if k not in ("mel", "alignment")} for r in rows]}
    if not (judging.calibrate or judging.audio_dir or judging.listen):
        return result
    stft = TacotronSTFT(**audio.stft_kwargs())
    said = spoken_texts(dataset_path, column=2)
    for row, entry in zip(rows, dataset.entries):
        if "{" in row["sentence"] and (judging.calibrate or judging.listen):
            raise ValueError(f"{entry.filelist}:{entry.line}: the other voices and the recogniser need the "
                             f"sentence's words, and this filelist holds ARPAbet with no metadata.csv beside it")
    # every row a judging can have, in table order: those of vocoders not judged have no scores and are skipped
    labels = signal_labels(("griffin_lim", "waveglow", "hifigan"), judging.voice, judging.calibrate, judging.floor)
    scores = judge_sentences(rows, read_teachers(rows, dataset, stft, audio.sampling_rate),
                             [r["sentence"] for r in rows], [said.get(r["id"], r["sentence"]) for r in rows],
                             card, judging, waveglow)
    for i, row in enumerate(result["sentences"]):
        row["signals"] = {key: scores[key][i] for key in labels if key in scores}
    result["calibration"] = mean_scores(scores, labels)
    return result
