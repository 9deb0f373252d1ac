"""Text front end: cleaning text and mapping it to symbol ids and back."""
import re
from typing import Iterable, List, Sequence

from .cleaners import clean_text
from .symbols import PAD, symbols

__all__ = ["symbols", "text_to_sequence", "sequence_to_text", "clean_text", "EmptyTextError"]

_symbol_to_id = {s: i for i, s in enumerate(symbols)}
_id_to_symbol = {i: s for i, s in enumerate(symbols)}

# Text, then a {...} ARPAbet group, then the rest. '.' does not cross newlines, as in the reference.
_curly_re = re.compile(r"(.*?)\{(.+?)\}(.*)")


class EmptyTextError(ValueError):
    """Raised when a text maps to no symbol at all."""


def _symbols_to_sequence(chars: Iterable[str]) -> List[int]:
    # The pad symbol is never taken from text (the reference meant to drop it; on
    # Python 3.11/3.12 its identity test happened to keep it).
    return [_symbol_to_id[s] for s in chars if s in _symbol_to_id and s != PAD and s != "~"]


def _arpabet_to_sequence(text: str) -> List[int]:
    return _symbols_to_sequence(["@" + s for s in text.split()])


def text_to_sequence(text: str, cleaner_names: List[str], allow_empty: bool = False) -> List[int]:
    """Map text to symbol ids; text inside curly braces is read as ARPAbet.

    Symbols outside the set are dropped. Raises EmptyTextError when nothing is left,
    unless `allow_empty` (a published model cannot speak an empty sequence).
    """
    sequence: List[int] = []
    rest = text
    while rest:
        m = _curly_re.match(rest)
        if not m:
            sequence += _symbols_to_sequence(clean_text(rest, cleaner_names))
            break
        sequence += _symbols_to_sequence(clean_text(m.group(1), cleaner_names))
        sequence += _arpabet_to_sequence(m.group(2))
        rest = m.group(3)
    if not allow_empty and not any(_id_to_symbol[i] != " " for i in sequence):
        raise EmptyTextError(f"text {text!r} holds no speakable symbol after cleaning with {cleaner_names}")
    return sequence


def sequence_to_text(sequence: Sequence[int]) -> str:
    """Map symbol ids back to text, ARPAbet back in curly braces."""
    out = []
    for symbol_id in sequence:
        s = _id_to_symbol.get(int(symbol_id))
        if s is None:
            continue
        if len(s) > 1 and s[0] == "@":
            s = "{%s}" % s[1:]
        out.append(s)
    return "".join(out).replace("}{", " ")
