"""Rewrite the text of a filelist or phrase file as ARPAbet from espeak-ng's own phonemizer.

    python -m scripts.phonemize IN OUT [--voice en-us]

Each word becomes a `{...}` ARPAbet group, which the text front end reads as phonemes (the seed's symbol set has
the ARPAbet symbols); clause breaks become commas and the sentence keeps its final mark, so
`The museum closes at six, so we should hurry along.` becomes
`{DH AH0} {M Y UW0 Z IY1 AH0 M} ..., {S OW2} ... .`. Lines `path|text[|...]` (filelists) have their second field
rewritten, other lines (phrase files) all of it. For an espeak-ng corpus this hands the model the very phonemes
the teacher voice spoke, so it learns sounds rather than English spelling.
"""
import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import List

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.phonemize ...")

from common.filelist import read_text_lines  # noqa: E402
from corpora.voices import require  # noqa: E402

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
    """espeak-ng gave a phoneme this table does not know (`line`: where, in phonemize_lines' input, 1-based)."""

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


def phonemize(text: str, voice: str = "en-us", exe: str = "espeak-ng") -> str:
    """Text as espeak-ng reads it: `{...}` per word, commas between its clauses, the sentence's final mark kept."""
    out = subprocess.run([exe, "-q", "--ipa", "--sep=_", "-v", voice, text], check=True, capture_output=True,
                         text=True).stdout
    clauses = []
    for line in out.splitlines():
        words = [ipa_word_to_arpabet(w) for w in line.split()]
        words = [w for w in words if w]
        if words:
            clauses.append(" ".join("{" + " ".join(w) + "}" for w in words))
    end = text.rstrip()[-1:] if text.rstrip()[-1:] in ".?!" else "."
    return ", ".join(clauses) + end


def phonemize_lines(lines: List[str], voice: str = "en-us", jobs: int = 4) -> List[str]:
    """Lines of a filelist (`path|text[|...]`, the text rewritten) or of a phrase file (the whole line).
    A phoneme outside the table raises PhonemizeError with the line's number."""
    exe = require("espeak-ng")

    def one(number: int, line: str) -> str:
        if not line.strip():
            return line
        fields = line.split("|")
        try:
            if len(fields) > 1:
                return "|".join([fields[0], phonemize(fields[1], voice, exe)] + fields[2:])
            return phonemize(line, voice, exe)
        except PhonemizeError as e:
            raise PhonemizeError(str(e), number) from e

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, range(1, len(lines) + 1), lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="filelist or phrase file")
    parser.add_argument("output")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice whose phonemizer to use")
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args(argv)
    lines = read_text_lines(args.input, SystemExit)
    try:
        result = phonemize_lines(lines, args.voice, args.jobs)
    except PhonemizeError as e:
        raise SystemExit(f"error: {args.input}:{e.line}: {e}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in result))
    print(f"wrote {len(result)} lines to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
