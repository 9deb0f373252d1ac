"""Text cleaners, selected by name with `--text-cleaners`.

english_cleaners: transliterate, lowercase, spell out numbers, expand abbreviations,
collapse whitespace. Leading and trailing spaces are kept (collapsed to one), as in the
reference, because the published models were trained on exactly those sequences.
"""
import re
from typing import Callable, Dict, List

from .numbers import normalize_numbers
from .transliteration import transliterate

_whitespace_re = re.compile(r"\s+")

_abbreviations = [
    (re.compile(r"\b%s\." % abbr, re.IGNORECASE), full)
    for abbr, full in [
        ("mrs", "misess"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"),
        ("co", "company"), ("jr", "junior"), ("maj", "major"), ("gen", "general"),
        ("drs", "doctors"), ("rev", "reverend"), ("lt", "lieutenant"), ("hon", "honorable"),
        ("sgt", "sergeant"), ("capt", "captain"), ("esq", "esquire"), ("ltd", "limited"),
        ("col", "colonel"), ("ft", "fort"),
    ]
]


def expand_abbreviations(text: str) -> str:
    for regex, replacement in _abbreviations:
        text = re.sub(regex, replacement, text)
    return text


def collapse_whitespace(text: str) -> str:
    return re.sub(_whitespace_re, " ", text)


def basic_cleaners(text: str) -> str:
    """Lowercase and collapse whitespace; no transliteration."""
    return collapse_whitespace(text.lower())


def transliteration_cleaners(text: str) -> str:
    """For non-English text: transliterate to ASCII, lowercase, collapse whitespace."""
    return collapse_whitespace(transliterate(text).lower())


def english_cleaners(text: str) -> str:
    """For English text: transliterate, lowercase, expand numbers and abbreviations."""
    text = transliterate(text).lower()
    text = normalize_numbers(text)
    text = expand_abbreviations(text)
    return collapse_whitespace(text)


CLEANERS: Dict[str, Callable[[str], str]] = {
    "basic_cleaners": basic_cleaners,
    "transliteration_cleaners": transliteration_cleaners,
    "english_cleaners": english_cleaners,
}


def clean_text(text: str, cleaner_names: List[str]) -> str:
    """Apply the named cleaners in order."""
    for name in cleaner_names:
        if name not in CLEANERS:
            raise ValueError(f"unknown text cleaner {name!r}; choose from {sorted(CLEANERS)}")
        text = CLEANERS[name](text)
    return text
