"""Voices that speak our sentences into wavs: the teachers of synthetic corpora and the calibration rows.

- `espeak`, `espeak-gb` (espeak-ng's formant voices, en-us and en-gb): fast, robotic;
- `slt`: festival's HTS voice of CMU ARCTIC's slt speaker (female US English, built from a real speaker's
  recordings, as LJSpeech is: natural pitch, breath, fricative noise), with the words and phonemes it spoke;
- `flite-slt`, `flite-kal16`, `flite-rms`, `flite-awb`: flite's voices (the same slt speaker through another
  synthesiser; male US; male US; male Scottish English).

Every voice writes 16-bit mono wavs at the requested rate, edge silence trimmed to 50 ms. `speak` returns, per
sentence, its duration and, where the voice can say (festival), the words it spoke after its own text
normalisation ("$5.50" -> "five dollars fifty") and their phonemes as `{...}` ARPAbet groups, with commas at the
pauses it made, and when each segment it spoke ended (the teacher's durations, for guided attention): the very
sounds of the recording, which a model can learn from as espeak-ng phonemes are learnt for the espeak corpus
(tacotron2/text/phonemizers.py, which every voice reads its text through). `festival_phonemes` gives the same for
text not spoken (test and demo phrases).
"""
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from tacotron2.text.phonemizers import SLT_VOICE_DIR, FestivalReading, Segments, festival_read, prepare_text, require

__all__ = ["SLT_VOICE_DIR", "Spoken", "VOICES", "festival_phonemes", "require", "speak"]


class Spoken(NamedTuple):
    seconds: float
    words: Optional[str] = None  # what the voice said, as words (None: the voice does not say)
    arpabet: Optional[str] = None  # its phonemes, `{...}` per word, commas at its pauses
    # the segments it spoke (festival's phone names and "pau") with their end times in the written wav, seconds
    segments: Optional[Segments] = None


def save_trimmed(audio: np.ndarray, source_rate: int, path: str, sampling_rate: int) -> Tuple[float, float]:
    """Resample to sampling_rate, trim edge silence to 50 ms, write 16-bit PCM; returns the seconds written and
    the seconds trimmed from the start (to move the voice's own times onto the wav's)."""
    audio = np.asarray(audio, dtype=np.float64)
    if source_rate != sampling_rate:
        g = np.gcd(source_rate, sampling_rate)
        audio = resample_poly(audio, sampling_rate // g, source_rate // g)
    voiced = np.nonzero(np.abs(audio) > 0.01)[0]
    start = 0
    if voiced.size:
        pad = int(0.05 * sampling_rate)
        start = max(voiced[0] - pad, 0)
        audio = audio[start:voiced[-1] + pad]
    sf.write(path, np.clip(audio, -1, 1).astype(np.float32), sampling_rate, subtype="PCM_16")
    return len(audio) / sampling_rate, start / sampling_rate


def _read(path: str) -> Tuple[np.ndarray, int]:
    audio, rate = sf.read(path, dtype="float32")
    return (audio if audio.ndim == 1 else audio.mean(axis=1)), rate


# --- espeak-ng ----------------------------------------------------------------------------------------------

def espeak_say(text: str, path: str, sampling_rate: int, rate: int = 175, voice: str = "en-us") -> float:
    """One sentence through espeak-ng at `rate` words a minute."""
    raw = subprocess.run([require("espeak-ng"), "-v", voice, "-s", str(rate), "--stdout", prepare_text(text)], check=True,
                         capture_output=True).stdout
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        tmp.write(raw)
        tmp.flush()
        audio, source_rate = _read(tmp.name)
    return save_trimmed(audio, source_rate, path, sampling_rate)[0]


# --- flite ----------------------------------------------------------------------------------------------------

def flite_say(text: str, path: str, sampling_rate: int, voice: str) -> float:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run([require("flite"), "-voice", voice, "-t", prepare_text(text), "-o", tmp.name], check=True,
                       capture_output=True)
        audio, source_rate = _read(tmp.name)
    return save_trimmed(audio, source_rate, path, sampling_rate)[0]


# --- festival (slt) ---------------------------------------------------------------------------------------------

def festival_phonemes(texts: Sequence[str], jobs: int = 2) -> List[FestivalReading]:
    """The words and ARPAbet of each text as festival's slt voice would speak it, without synthesising."""
    return festival_read(texts, None, jobs)


def slt_speak(texts: Sequence[str], paths: Sequence[str], sampling_rate: int, jobs: int) -> List[Spoken]:
    raw = [path + ".32k.wav" for path in paths]
    spoken = []
    for path, r, reading in zip(paths, raw, festival_read(texts, raw, jobs)):
        audio, source_rate = _read(r)
        os.remove(r)
        seconds, start = save_trimmed(audio, source_rate, path, sampling_rate)
        segments = tuple((name, round(float(min(max(end - start, 0.0), seconds)), 4)) for name, end in reading.segments)
        spoken.append(Spoken(seconds, reading.words, reading.arpabet, segments))
    return spoken


# --- the registry ---------------------------------------------------------------------------------------------

def _one_by_one(say: Callable[[str, str, int], float]):
    def speak(texts: Sequence[str], paths: Sequence[str], sampling_rate: int, jobs: int) -> List[Spoken]:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            return [Spoken(s) for s in pool.map(lambda tp: say(tp[0], tp[1], sampling_rate), zip(texts, paths))]
    return speak


VOICES: Dict[str, Callable[[Sequence[str], Sequence[str], int, int], List[Spoken]]] = {
    "espeak": _one_by_one(lambda t, p, sr: espeak_say(t, p, sr)),
    "espeak-gb": _one_by_one(lambda t, p, sr: espeak_say(t, p, sr, voice="en-gb")),
    "espeak-150wpm": _one_by_one(lambda t, p, sr: espeak_say(t, p, sr, rate=150)),
    "slt": slt_speak,
    **{f"flite-{v}": _one_by_one(lambda t, p, sr, v=v: flite_say(t, p, sr, v)) for v in ("slt", "kal16", "rms", "awb")},
}


def speak(voice: str, texts: Sequence[str], paths: Sequence[str], sampling_rate: int = 22050,
          jobs: int = 2) -> List[Spoken]:
    """Each text spoken by `voice` (a key of VOICES) into the wav at the same index of `paths`."""
    if voice not in VOICES:
        raise ValueError(f"unknown voice {voice!r}; choose from {sorted(VOICES)}")
    return VOICES[voice](list(texts), list(paths), sampling_rate, jobs)
