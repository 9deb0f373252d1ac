"""Grapheme-to-phoneme front ends outside Python: festival's (the slt voice's lexicon and letter-to-sound rules)
and espeak-ng's, each giving ARPAbet in the training lists' notation: `{...}` per word, commas at the pauses,
the sentence's final mark.

The corpus builder (corpora/) makes its phoneme lists with these functions and inference reads plain text with
them (tacotron2/text/frontend.py), so that a model hears at inference exactly the symbols it was trained on.
Both read text through `prepare_text` first: the symbols our transliteration table drops for the character
models ('£', '€', '—') are spoken, and everything else non-ASCII becomes ASCII (festival reads bytes).
"""
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

from .transliteration import transliterate

SLT_VOICE_DIR = "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"
APT_PACKAGES = {"espeak-ng": "espeak-ng", "festival": "festival festvox-us-slt-hts", "flite": "flite"}


def require(tool: str) -> str:
    """Path of a program; SystemExit naming the package where it (or festival's slt voice) is missing."""
    exe = shutil.which(tool)
    if exe is None or (tool == "festival" and not os.path.isdir(SLT_VOICE_DIR)):
        raise SystemExit(f"error: {tool} (or its voice) is not installed: bash scripts/setup.sh installs it "
                         f"(Debian/Ubuntu: sudo apt-get install {APT_PACKAGES[tool]})")
    return exe


# currency symbols before an amount become the word after it ("£5" -> "5 pounds", "€2.50" -> "2.50 euros");
# dashes between words become a pause
_CURRENCY = {"£": "pounds", "€": "euros", "¥": "yen"}
_CURRENCY_RE = re.compile(r"([£€¥])\s?(\d[\d,]*(?:\.\d+)?)")
_DASH_RE = re.compile(r"\s*[\u2014\u2013]\s*")


def prepare_text(text: str) -> str:
    """Text as the phonemizers are given it: currencies and dashes as words and pauses, then ASCII."""
    text = _CURRENCY_RE.sub(lambda m: f"{m.group(2)} {_CURRENCY[m.group(1)]}", text)
    text = _DASH_RE.sub(", ", text)
    for symbol, word in _CURRENCY.items():
        text = text.replace(symbol, f" {word} ")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what has no ASCII entry cannot be spoken by either phonemizer
        return re.sub(r"\s+", " ", transliterate(text)).strip()


def final_mark(text: str) -> str:
    end = text.rstrip()[-1:]
    return end if end in ".?!" else "."


# --- festival --------------------------------------------------------------------------------------------------

# Scheme run by one festival process for many sentences: `say` synthesises and saves a wav, `front` runs only
# the text front end; `report` prints each word, "," where a pause follows it, and its segments with their
# syllable's stress, one tab-separated line per word between @U and @E lines; `say` first prints every segment
# it spoke (pauses too) with its end time in seconds, one @S line each (the durations the HTS voice chose).
FESTIVAL_LIB = r"""
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
    (mapcar (lambda (s) (format t "@S\t%s\t%f\n" (item.name s) (item.feat s "end"))) (utt.relation.items u 'Segment))
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


def festival_to_arpabet(phone: str) -> str:
    """A festival phone's ARPAbet name without stress ("ax" -> "AH")."""
    if phone in _FESTIVAL_VOWELS:
        return _FESTIVAL_VOWELS[phone]
    if phone in _FESTIVAL_CONSONANTS:
        return _FESTIVAL_CONSONANTS[phone]
    raise ValueError(f"unknown festival phone {phone!r}")


def _festival_phone(token: str) -> str:
    phone, stress = token[:-1], token[-1]
    arpabet = festival_to_arpabet(phone)
    if phone in _FESTIVAL_VOWELS:
        return arpabet + ("0" if phone in ("ax", "axr") else stress)
    return arpabet


Segments = Tuple[Tuple[str, float], ...]  # (festival phone or "pau", end in seconds), in time order


class FestivalReading(NamedTuple):
    """What festival made of a sentence: the words it spoke, their ARPAbet (`{...}` per word, commas at its
    pauses, the final mark) and, where it spoke them, its segments (festival's phone name or "pau", end time in
    seconds from the start of its wav)."""
    words: str
    arpabet: str
    segments: Segments = ()


def _parse_reports(out: str, n: int) -> List[FestivalReading]:
    """festival's printout -> a reading per sentence, without the sentence's final mark."""
    utterances: List[List[List[str]]] = []
    segments: List[List[Tuple[str, float]]] = []
    for line in out.splitlines():
        if line.startswith("@U"):
            utterances.append([])
            segments.append([])
        elif line.startswith("@W") and utterances:
            utterances[-1].append(line.split("\t")[1:])
        elif line.startswith("@S") and utterances:
            _, name, end = line.split("\t")
            segments[-1].append((name, float(end)))
    if len(utterances) != n:
        raise RuntimeError(f"festival reported {len(utterances)} of {n} sentences:\n{out[-2000:]}")
    result = []
    for words, spoken_segments in zip(utterances, segments):
        spoken, groups = [], []
        for i, (word, pause, *phones) in enumerate(words):
            comma = "," if pause == "," and i < len(words) - 1 else ""
            if word.startswith("'") and spoken:  # a clitic festival made a word of its own: everyone 's
                spoken[-1] = spoken[-1] + word.lower() + comma
            else:
                spoken.append(word.lower() + comma)
            if phones:  # a word festival gave no segments of its own (it is spoken with its neighbour)
                groups.append("{" + " ".join(_festival_phone(p) for p in phones) + "}" + comma)
        result.append(FestivalReading(" ".join(spoken), " ".join(groups), tuple(spoken_segments)))
    return result


def _festival_batch(texts: Sequence[str], wav_paths: Optional[Sequence[str]]) -> List[FestivalReading]:
    """One festival process over prepared texts (synthesising into wav_paths, or the front end only)."""
    exe = require("festival")
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "batch.scm")
        with open(script, "w", encoding="ascii") as f:
            f.write(FESTIVAL_LIB)
            for i, text in enumerate(texts):
                utterance = (f"(say {_scheme_string(text)} {_scheme_string(wav_paths[i])})" if wav_paths
                             else f"(front {_scheme_string(text)})")
                f.write(f'(format t "@U\\n")\n(report {utterance})\n(format t "@E\\n")\n')
        proc = subprocess.run([exe, "-b", script], capture_output=True)
    stdout, stderr = (s.decode("latin-1") for s in (proc.stdout, proc.stderr))  # festival writes bytes
    if proc.returncode != 0:
        raise RuntimeError(f"festival failed: {stderr[-2000:]}")
    return _parse_reports(stdout, len(texts))


def in_parallel(n: int, jobs: int, run: Callable[[List[int]], List]) -> List:
    """run(indices) over `jobs` interleaved shares of range(n) in parallel threads, results back in order."""
    shares = [list(range(j, n, jobs)) for j in range(max(1, min(jobs, n)))]
    out: List = [None] * n
    with ThreadPoolExecutor(len(shares)) as pool:
        for share, results in zip(shares, pool.map(run, shares)):
            for i, r in zip(share, results):
                out[i] = r
    return out


def festival_read(texts: Sequence[str], wav_paths: Optional[Sequence[str]] = None,
                  jobs: int = 2) -> List[FestivalReading]:
    """How festival's slt voice reads each text (words and ARPAbet each with the text's final mark); with
    `wav_paths` it also speaks each text into the wav at the same index (32 kHz), and says its segments."""
    prepared = [prepare_text(t) for t in texts]

    def run(share: List[int]) -> List[FestivalReading]:
        return _festival_batch([prepared[i] for i in share], [wav_paths[i] for i in share] if wav_paths else None)
    reports = in_parallel(len(texts), jobs, run) if texts else []
    return [r._replace(words=r.words + final_mark(t), arpabet=r.arpabet + final_mark(t))
            for t, r in zip(prepared, reports)]


# --- espeak-ng -------------------------------------------------------------------------------------------------

# espeak-ng's IPA (en-us) -> ARPAbet. A vowel takes the stress digit of the mark before it (ˈ 1, ˌ 2, none 0).
_VOWELS = {"ə": ["AH"], "ʌ": ["AH"], "ɐ": ["AH"], "æ": ["AE"], "a": ["AE"], "ɑ": ["AA"], "ɑː": ["AA"], "ɒ": ["AA"],
           "ɔ": ["AO"], "ɔː": ["AO"], "ɛ": ["EH"], "e": ["EH"], "ɜ": ["ER"], "ɜː": ["ER"], "ɝ": ["ER"], "ɚ": ["ER"],
           "ɪ": ["IH"], "ᵻ": ["IH"], "i": ["IY"], "iː": ["IY"], "ʊ": ["UH"], "u": ["UW"], "uː": ["UW"],
           "eɪ": ["EY"], "aɪ": ["AY"], "ɔɪ": ["OY"], "aʊ": ["AW"], "oʊ": ["OW"], "o": ["OW"], "oː": ["OW"],
           "əʊ": ["OW"], "ɛɹ": ["EH", "R"], "ɪɹ": ["IH", "R"], "ʊɹ": ["UH", "R"], "ɑːɹ": ["AA", "R"],
           "ɑɹ": ["AA", "R"], "ɔːɹ": ["AO", "R"], "ɔɹ": ["AO", "R"], "oːɹ": ["AO", "R"], "oɹ": ["AO", "R"],
           "aɪɚ": ["AY", "ER"], "aɪə": ["AY", "ER"], "aʊɚ": ["AW", "ER"], "aʊə": ["AW", "ER"], "iə": ["IY", "AH"],
           "ɪə": ["IH", "AH"], "eə": ["EH", "AH"], "ʊə": ["UH", "AH"], "əl": ["AH", "L"]}
_SYLLABIC = {"n̩": ["AH0", "N"], "l̩": ["AH0", "L"], "m̩": ["AH0", "M"]}
_CONSONANTS = {"b": "B", "d": "D", "f": "F", "h": "HH", "k": "K", "l": "L", "m": "M", "n": "N", "p": "P", "s": "S",
               "t": "T", "v": "V", "w": "W", "z": "Z", "ɡ": "G", "g": "G", "ŋ": "NG", "ʃ": "SH", "ʒ": "ZH",
               "θ": "TH", "ð": "DH", "tʃ": "CH", "dʒ": "JH", "ɹ": "R", "r": "R", "j": "Y", "ɾ": "D", "ʔ": "T",
               "x": "HH", "ç": "HH", "ʍ": "W", "ɬ": "L", "ɫ": "L"}
_STRESS = {"ˈ": "1", "ˌ": "2"}


class PhonemizeError(ValueError):
    """espeak-ng gave a phoneme this table does not know (`line`: where, in a list of lines, 1-based)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


def ipa_word_to_arpabet(word: str) -> List[str]:
    """One word of espeak-ng's `--ipa --sep=_` output (phonemes joined by '_') as ARPAbet symbols."""
    out: List[str] = []
    for token in word.split("_"):
        stress = "0"
        while token and token[0] in _STRESS:
            stress, token = _STRESS[token[0]], token[1:]
        if not token:
            continue
        if token in _VOWELS:
            phones = _VOWELS[token]
            out += [phones[0] + stress] + [p + ("0" if p in ("AH", "ER") else "") for p in phones[1:]]
        elif token in _SYLLABIC:
            out += _SYLLABIC[token]
        elif token in _CONSONANTS:
            out.append(_CONSONANTS[token])
        else:
            raise PhonemizeError(f"unknown espeak-ng phoneme {token!r} in {word!r}")
    return out


def espeak_read(text: str, voice: str = "en-us", exe: Optional[str] = None) -> str:
    """Text as espeak-ng reads it: `{...}` per word, commas between its clauses, the sentence's final mark."""
    text = prepare_text(text)
    out = subprocess.run([exe or require("espeak-ng"), "-q", "--ipa", "--sep=_", "-v", voice, text], check=True,
                         capture_output=True, text=True).stdout
    clauses = []
    for line in out.splitlines():
        words = [w for w in (ipa_word_to_arpabet(w) for w in line.split()) if w]
        if words:
            clauses.append(" ".join("{" + " ".join(w) + "}" for w in words))
    return ", ".join(clauses) + final_mark(text)
