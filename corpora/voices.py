"""Voices that speak our sentences into wavs: the teachers of synthetic corpora and the calibration rows.

- `espeak`, `espeak-gb` (espeak-ng's formant voices, en-us and en-gb): fast, robotic;
- `slt`: festival's HTS voice of CMU ARCTIC's slt speaker (female US English, built from a real speaker's
  recordings, as LJSpeech is: natural pitch, breath, fricative noise), with the words and phonemes it spoke;
- `flite-slt`, `flite-kal16`, `flite-rms`, `flite-awb`: flite's voices (the same slt speaker through another
  synthesiser; male US; male US; male Scottish English).

Every voice writes 16-bit mono wavs at the requested rate, edge silence trimmed to 50 ms. `speak` returns, per
sentence, its duration and, where the voice can say (festival), the words it spoke after its own text
normalisation ("$5.50" -> "five dollars fifty") and their phonemes as `{...}` ARPAbet groups, with commas at the
pauses it made: the very sounds of the recording, which a model can learn from as espeak-ng phonemes are learnt
for the espeak corpus (scripts/phonemize.py). `festival_phonemes` gives the same for text not spoken (test and
demo phrases).
"""
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SLT_VOICE_DIR = "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"
APT_PACKAGES = {"espeak-ng": "espeak-ng", "festival": "festival festvox-us-slt-hts", "flite": "flite"}


class Spoken(NamedTuple):
    seconds: float
    words: Optional[str] = None  # what the voice said, as words (None: the voice does not say)
    arpabet: Optional[str] = None  # its phonemes, `{...}` per word, commas at its pauses


def require(tool: str) -> str:
    """Path of a voice's program; SystemExit naming the package where it is missing."""
    exe = shutil.which(tool)
    if exe is None or (tool == "festival" and not os.path.isdir(SLT_VOICE_DIR)):
        raise SystemExit(f"error: {tool} (or its voice) is not installed: bash scripts/setup.sh installs it "
                         f"(Debian/Ubuntu: sudo apt-get install {APT_PACKAGES[tool]})")
    return exe


def save_trimmed(audio: np.ndarray, source_rate: int, path: str, sampling_rate: int) -> float:
    """Resample to sampling_rate, trim edge silence to 50 ms, write 16-bit PCM; returns seconds."""
    audio = np.asarray(audio, dtype=np.float64)
    if source_rate != sampling_rate:
        g = np.gcd(source_rate, sampling_rate)
        audio = resample_poly(audio, sampling_rate // g, source_rate // g)
    voiced = np.nonzero(np.abs(audio) > 0.01)[0]
    if voiced.size:
        pad = int(0.05 * sampling_rate)
        audio = audio[max(voiced[0] - pad, 0):voiced[-1] + pad]
    sf.write(path, np.clip(audio, -1, 1).astype(np.float32), sampling_rate, subtype="PCM_16")
    return len(audio) / sampling_rate


def _read(path: str) -> Tuple[np.ndarray, int]:
    audio, rate = sf.read(path, dtype="float32")
    return (audio if audio.ndim == 1 else audio.mean(axis=1)), rate


# --- espeak-ng ----------------------------------------------------------------------------------------------

def espeak_say(text: str, path: str, sampling_rate: int, rate: int = 175, voice: str = "en-us") -> float:
    """One sentence through espeak-ng at `rate` words a minute."""
    raw = subprocess.run([require("espeak-ng"), "-v", voice, "-s", str(rate), "--stdout", text], check=True,
                         capture_output=True).stdout
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        tmp.write(raw)
        tmp.flush()
        audio, source_rate = _read(tmp.name)
    return save_trimmed(audio, source_rate, path, sampling_rate)


# --- flite ----------------------------------------------------------------------------------------------------

def flite_say(text: str, path: str, sampling_rate: int, voice: str) -> float:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run([require("flite"), "-voice", voice, "-t", text, "-o", tmp.name], check=True,
                       capture_output=True)
        audio, source_rate = _read(tmp.name)
    return save_trimmed(audio, source_rate, path, sampling_rate)


# --- festival (slt) ---------------------------------------------------------------------------------------------

# Scheme run by one festival process for many sentences: `say` synthesises and saves a wav, `front` runs only
# the text front end; `report` prints each word, "," where a pause follows it, and its segments with their
# syllable's stress, one tab-separated line per word between @U and @E lines.
_FESTIVAL_LIB = r"""
(voice_cmu_us_slt_arctic_hts)
(define (seg_list w)
  (apply append (mapcar (lambda (syl) (mapcar (lambda (seg) (list seg (item.feat syl "stress")))
                                              (item.daughters syl)))
                        (item.relation.daughters w 'SylStructure))))
(define (report u)
  (mapcar (lambda (w)
            (let ((segs (seg_list w)) (next nil))
              (if segs (set! next (item.next (item.relation (car (car (last segs))) 'Segment))))
              (format t "@W\t%s\t%s" (item.name w) (if (and next (string-equal (item.name next) "pau")) "," "-"))
              (mapcar (lambda (s) (format t "\t%s%s" (item.name (car s)) (cadr s))) segs)
              (format t "\n")))
          (utt.relation.items u 'Word))
  t)
(define (front text)
  (let ((u (eval (list 'Utterance 'Text text))))
    (Initialize u) (Text u) (Token_POS u) (Token u) (POS u) (Phrasify u) (Word u) (Pauses u) (PostLex u)
    u))
(define (say text path)
  (let ((u (SynthText text)))
    (utt.save.wave u path 'riff)
    u))
"""
# festival's US phone set (radio) -> ARPAbet; vowels take the syllable's stress digit
_FESTIVAL_VOWELS = {"aa": "AA", "ae": "AE", "ah": "AH", "ao": "AO", "aw": "AW", "ax": "AH", "axr": "ER", "ay": "AY",
                    "eh": "EH", "er": "ER", "ey": "EY", "ih": "IH", "iy": "IY", "ow": "OW", "oy": "OY", "uh": "UH",
                    "uw": "UW"}
_FESTIVAL_CONSONANTS = {p: p.upper() for p in ("b", "ch", "d", "dh", "f", "g", "hh", "jh", "k", "l", "m", "n", "ng",
                                               "p", "r", "s", "sh", "t", "th", "v", "w", "y", "z", "zh")}


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_phone(token: str) -> str:
    phone, stress = token[:-1], token[-1]
    if phone in _FESTIVAL_VOWELS:
        return _FESTIVAL_VOWELS[phone] + ("0" if phone in ("ax", "axr") else stress)
    if phone in _FESTIVAL_CONSONANTS:
        return _FESTIVAL_CONSONANTS[phone]
    raise ValueError(f"unknown festival phone {phone!r}")


def _parse_reports(out: str, n: int, texts: Sequence[str]) -> List[Tuple[str, str]]:
    """festival's printout -> (words, arpabet) per sentence; the sentence's final mark closes both."""
    utterances: List[List[List[str]]] = []
    for line in out.splitlines():
        if line.startswith("@U"):
            utterances.append([])
        elif line.startswith("@W") and utterances:
            utterances[-1].append(line.split("\t")[1:])
    if len(utterances) != n:
        raise RuntimeError(f"festival reported {len(utterances)} of {n} sentences:\n{out[-2000:]}")
    result = []
    for words, text in zip(utterances, texts):
        end = text.rstrip()[-1:] if text.rstrip()[-1:] in ".?!" else "."
        spoken, groups = [], []
        for i, (word, pause, *phones) in enumerate(words):
            comma = "," if pause == "," and i < len(words) - 1 else ""
            if word.startswith("'") and spoken:  # a clitic festival made a word of its own: everyone 's
                spoken[-1] = spoken[-1] + word.lower() + comma
            else:
                spoken.append(word.lower() + comma)
            if phones:  # a word festival gave no segments of its own (it is spoken with its neighbour)
                groups.append("{" + " ".join(_festival_phone(p) for p in phones) + "}" + comma)
        result.append((" ".join(spoken) + end, " ".join(groups) + end))
    return result


def _festival_batch(texts: Sequence[str], paths: Optional[Sequence[str]]) -> str:
    """Run one festival process over the texts (synthesising into paths, or the front end only)."""
    exe = require("festival")
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "batch.scm")
        with open(script, "w", encoding="utf-8") as f:
            f.write(_FESTIVAL_LIB)
            for i, text in enumerate(texts):
                utterance = (f"(say {_scheme_string(text)} {_scheme_string(paths[i])})" if paths
                             else f"(front {_scheme_string(text)})")
                f.write(f'(format t "@U\\n")\n(report {utterance})\n(format t "@E\\n")\n')
        proc = subprocess.run([exe, "-b", script], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"festival failed: {proc.stderr[-2000:]}")
    return proc.stdout


def _in_batches(texts: Sequence[str], jobs: int, run: Callable[[List[int]], List]) -> List:
    """run(indices) over `jobs` interleaved shares of the texts in parallel, results back in order."""
    shares = [list(range(j, len(texts), jobs)) for j in range(max(1, min(jobs, len(texts))))]
    out: List = [None] * len(texts)
    with ThreadPoolExecutor(len(shares)) as pool:
        for share, results in zip(shares, pool.map(run, shares)):
            for i, r in zip(share, results):
                out[i] = r
    return out


def festival_phonemes(texts: Sequence[str], jobs: int = 2) -> List[Tuple[str, str]]:
    """(words, arpabet) of each text as festival's slt voice would speak it, without synthesising."""
    def run(share: List[int]) -> List[Tuple[str, str]]:
        sub = [texts[i] for i in share]
        return _parse_reports(_festival_batch(sub, None), len(sub), sub)
    return _in_batches(texts, jobs, run)


def slt_speak(texts: Sequence[str], paths: Sequence[str], sampling_rate: int, jobs: int) -> List[Spoken]:
    def run(share: List[int]) -> List[Spoken]:
        sub = [texts[i] for i in share]
        raw = [paths[i] + ".32k.wav" for i in share]
        reports = _parse_reports(_festival_batch(sub, raw), len(sub), sub)
        spoken = []
        for i, r, (words, arpabet) in zip(share, raw, reports):
            audio, source_rate = _read(r)
            os.remove(r)
            spoken.append(Spoken(save_trimmed(audio, source_rate, paths[i], sampling_rate), words, arpabet))
        return spoken
    return _in_batches(texts, jobs, run)


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
