"""The text front end a Tacotron 2 was trained with, so that plain text reaches it as the symbols it learnt.

A model reads either characters (NVIDIA's models: the text through its cleaners) or ARPAbet phonemes that some
grapheme-to-phoneme front end made of the text (this repository's corpora: festival's for the slt voice,
espeak-ng's for the espeak voice). Training records which (`--text-frontend`, stored with the checkpoint's
training flags); every entry point rebuilds the same front end from the checkpoint, so plain text typed by a user
becomes exactly the symbol sequence the corpus builder wrote for the same sentence. `{...}` ARPAbet in the text
overrides the front end for those words, whatever the kind.
"""
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import text_to_sequence
from .phonemizers import espeak_read, festival_read, final_mark

FRONTENDS: Dict[str, str] = {
    "characters": "the letters of the text through its cleaners (NVIDIA's models)",
    "festival": "ARPAbet from festival's US English front end (its lexicon, letter-to-sound rules and reading of "
                "numbers; the slt corpora)",
    "espeak": "ARPAbet from espeak-ng's en-us phonemizer (the espeak corpora)",
    "arpabet": "ARPAbet from a front end the checkpoint does not name: plain text is refused, {...} groups are read",
}
DEFAULT_CLEANERS = ("english_cleaners",)
_GROUP_RE = re.compile(r"(\{[^}]*\})")
_WORD_RE = re.compile(r"[^\W_]")  # a letter or digit of any script


class FrontendError(ValueError):
    """A front end that cannot be chosen or cannot read a text, with the reason and the fix; `index`: which of the
    texts given (None: not about one text)."""

    def __init__(self, message: str, index: Optional[int] = None) -> None:
        super().__init__(message)
        self.index = index


def is_phonemes(text: str) -> bool:
    """True when a transcript is ARPAbet groups and punctuation only (a phoneme filelist's line)."""
    return "{" in text and not _WORD_RE.search(_GROUP_RE.sub("", text))


@dataclass(frozen=True)
class TextFrontend:
    kind: str = "characters"
    cleaners: Tuple[str, ...] = DEFAULT_CLEANERS

    def __post_init__(self) -> None:
        if self.kind not in FRONTENDS:
            raise FrontendError(f"unknown text front end {self.kind!r}; choose from {sorted(FRONTENDS)}")

    @property
    def reads_phonemes(self) -> bool:
        return self.kind != "characters"

    def to_symbols(self, texts: Sequence[str]) -> List[str]:
        """Each text in the notation of the training lists: itself for characters, `{...}` ARPAbet per word with
        commas at the pauses and the final mark for the phonemizers (one festival process for all texts)."""
        if not self.reads_phonemes:
            return list(texts)
        pieces = [_GROUP_RE.split(t) for t in texts]  # plain text and {...} groups, alternating
        plain = [p for parts in pieces for p in parts[::2] if _WORD_RE.search(p)]
        if plain and self.kind == "arpabet":
            index = next(i for i, parts in enumerate(pieces) if any(_WORD_RE.search(p) for p in parts[::2]))
            raise FrontendError(f"{plain[0].strip()!r}: this model reads ARPAbet phonemes and its checkpoint does "
                                "not say which front end made them; give --text-frontend festival or espeak, or "
                                "write the words as {...} ARPAbet", index)
        read = iter(festival_read(plain) if self.kind == "festival" else
                    [(None, espeak_read(p)) for p in plain])
        out = []
        for index, (text, parts) in enumerate(zip(texts, pieces)):
            if len(parts) == 1 and not _WORD_RE.search(text):
                raise FrontendError(f"{text.strip()!r} holds no word to speak", index)
            if not any(_WORD_RE.search(p) for p in parts[::2]):  # phonemes already: as they are
                out.append(text)
                continue
            if len(parts) == 1:  # plain text: exactly what the corpus builder wrote for it
                out.append(next(read)[1])
                continue
            spoken: List[str] = []
            for i, part in enumerate(parts):
                if i % 2:
                    spoken.append(part)
                elif _WORD_RE.search(part):
                    spoken.append(next(read)[1][:-1])  # without the piece's own final mark
                elif part.strip() and spoken:  # punctuation between groups stays with the group before it
                    spoken[-1] += part.strip()
            out.append(" ".join(spoken).rstrip(".?!") + final_mark(text))
        return out

    def sequences(self, texts: Sequence[str]) -> List[List[int]]:
        """Symbol ids of each text, as the model was trained on them (tacotron2.text.EmptyTextError where a text
        holds nothing speakable)."""
        return [text_to_sequence(s, list(self.cleaners)) for s in self.to_symbols(texts)]

    def describe(self) -> str:
        return f"{self.kind} ({FRONTENDS[self.kind]})"


def training_frontend(flag: str, texts: Sequence[str], filelist: str) -> Tuple[str, Optional[str]]:
    """The front end a training run records: (kind, a warning or None), from `--text-frontend` and what the
    training transcripts are. `auto`: characters for plain text, `arpabet` (an unnamed phonemizer) for phonemes.
    Raises FrontendError where the flag contradicts the transcripts."""
    phonemes = sum(is_phonemes(t) for t in texts) > len(texts) / 2
    if flag == "auto":
        if not phonemes:
            return "characters", None
        return "arpabet", (f"{filelist}: the transcripts are ARPAbet phonemes, and --text-frontend does not say "
                           "which front end made them: the checkpoints will not read plain text (inference "
                           "will ask for --text-frontend). Pass --text-frontend festival (the slt corpora) or "
                           "espeak (the espeak corpora) to train a model that does")
    if phonemes != (flag != "characters"):
        what = "ARPAbet phonemes" if phonemes else "plain text"
        raise FrontendError(f"--text-frontend {flag}: the transcripts of {filelist} are {what}; "
                            + ("use the phoneme filelists, or --text-frontend characters" if not phonemes else
                               "use --text-frontend festival, espeak or arpabet, or the text filelists"))
    return flag, None


def _phoneme_evidence(train_args: Mapping[str, Any]) -> Optional[str]:
    """The training list of an older checkpoint when its name or first lines say phonemes, else None."""
    path = str(train_args.get("training_files") or "")
    if "phoneme" in os.path.basename(path):
        return path
    full = os.path.join(str(train_args.get("dataset_path") or ""), path)
    try:
        with open(full, encoding="utf-8") as f:
            lines = [line.split("|")[1] for _, line in zip(range(20), f) if "|" in line]
    except (OSError, UnicodeDecodeError):
        return None
    return path if lines and sum(map(is_phonemes, lines)) > len(lines) / 2 else None


def frontend_for(train_args: Optional[Mapping[str, Any]], source: str, flag: Optional[str] = None) -> TextFrontend:
    """The front end of a checkpoint (`source`, its training flags `train_args`; None for NVIDIA's, which read
    characters), or the one `flag` (--text-frontend) names for a checkpoint that does not say."""
    cleaners = tuple((train_args or {}).get("text_cleaners") or DEFAULT_CLEANERS)
    declared = (train_args or {}).get("text_frontend")
    declared = None if declared == "auto" else declared
    if flag is not None:
        if declared is not None and declared != flag:
            raise FrontendError(f"--text-frontend {flag}: {source} was trained with the {declared} front end; "
                                "drop the flag (the checkpoint says it)")
        return TextFrontend(flag, cleaners)
    if declared is not None:
        return TextFrontend(declared, cleaners)
    evidence = _phoneme_evidence(train_args) if train_args else None
    if evidence:
        guess = "festival" if "slt" in os.path.basename(evidence) else "espeak" if "espeak" in evidence else None
        raise FrontendError(f"{source} was trained on ARPAbet phonemes ({evidence}) and was written before "
                            "checkpoints said which front end made them: give --text-frontend festival (corpora "
                            "spoken by slt) or espeak (espeak corpora)"
                            + (f"; its training list's name says {guess}" if guess else ""))
    return TextFrontend("characters", cleaners)
