"""Transliteration of non-ASCII text to ASCII with a table of our own.

Why not the `unidecode` package: it is GPL-licensed, and its output differs from
what NVIDIA's published models were trained on. NVIDIA's newer code replaced it
with a private table whose behaviour the text goldens pin: characters without an
entry are *dropped* (with one warning per string), German umlauts become two
letters (ü -> ue), and dashes, quotes and ellipses are handled individually.

Our table is built from `unicodedata` (strip combining accents from Latin
letters) plus explicit entries for letters that do not decompose and for
punctuation; everything else is dropped, as in the reference.
"""
import unicodedata
import warnings
from typing import Dict, Optional

# Letters that NFKD does not reduce to ASCII, or that the reference spells out.
_EXPLICIT: Dict[str, str] = {
    "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ä": "ae", "ö": "oe", "ü": "ue",
    "ß": "ss", "ẞ": "SS", "Æ": "AE", "æ": "ae", "Ø": "O", "ø": "o",
    "Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Þ": "Th", "þ": "th",
    "Ł": "L", "ł": "l", "Ħ": "H", "ħ": "h", "ı": "i", "ĸ": "k",
    "Ŋ": "N", "ŋ": "n", "Ŧ": "T", "ŧ": "t", "ſ": "s",
    # punctuation and spaces
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2212": "-",
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00b4": "'", "\u02bc": "'", "\u00ab": None, "\u00bb": None,
    "\u00d7": "x", "\u00f7": "/", "\u00b7": ".", "\u00a1": "!", "\u00bf": "?",
    "\u00b2": "2", "\u00b3": "3", "\u00b9": "1",
    # the reference has no entry for these: dropped (None)
    "\u2014": None, "\u2026": None, "\u00a3": None, "\u0152": None, "\u0153": None,
    "\u20ac": None, "\u00a7": None, "\u00b0": None,
}

# Greek and Cyrillic capitals that look like Latin ones (homoglyphs).
_HOMOGLYPHS: Dict[str, str] = {
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "а": "a", "е": "e", "о": "o", "р": "p", "с": "c",
    "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
}


def _lookup(char: str) -> Optional[str]:
    """ASCII replacement of one character at or above U+007F, or None to drop it."""
    if char in _EXPLICIT:
        return _EXPLICIT[char]
    if char in _HOMOGLYPHS:
        return _HOMOGLYPHS[char]
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    # Only accept decompositions into Latin letters (é -> e, ﬁ -> fi, Ǆ -> DZ).
    if base and base.isascii() and base.isalpha():
        return base
    return None


def transliterate(text: str) -> str:
    """Replace every character at or above U+007F by ASCII, dropping unknown ones.

    Warns once per call when a character is dropped, naming it.
    """
    out = []
    dropped = []
    for char in text:
        if ord(char) < 127:
            out.append(char)
            continue
        rep = _lookup(char)
        if rep is None:
            dropped.append(char)
        else:
            out.append(rep)
    if dropped:
        warnings.warn(f"transliteration dropped characters without an ASCII entry: {''.join(dropped)!r}",
                      stacklevel=2)
    return "".join(out)
