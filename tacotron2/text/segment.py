"""Splitting long text into pieces a Tacotron 2 can speak in one go.

Models trained on LJSpeech saw sentences of at most ~190 characters (10 s); a much longer line
makes the decoder run out of `max_decoder_steps` or lose its alignment, and the speech is cut off.
`split_text` cuts a line into pieces of at most `max_chars` characters, preferring the ends of
sentences, then clause punctuation, then spaces; a single word (or ARPAbet group) longer than `max_chars` stays whole.
"""
import re
from typing import List

# a break after these, with the punctuation kept on the left piece
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:\u2014])\s+|\s+(?=[\u2014(])")
# a word, where an ARPAbet group `{HH AH0 L OW1}` (with what touches it) counts as one
_WORD = re.compile(r"[^\s{]*\{[^}]*\}\S*|\S+")


def _pack(parts: List[str], max_chars: int) -> List[str]:
    """Join consecutive parts with spaces while the result stays within max_chars."""
    pieces: List[str] = []
    for part in parts:
        if pieces and len(pieces[-1]) + 1 + len(part) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {part}"
        else:
            pieces.append(part)
    return pieces


def split_text(text: str, max_chars: int) -> List[str]:
    """Pieces of `text` (whitespace-normalised) of at most max_chars characters where words allow."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return [text] if text else []
    pieces: List[str] = []
    for sentence in _SENTENCE_END.split(text):
        if len(sentence) <= max_chars:
            pieces.append(sentence)
            continue
        for clause in _CLAUSE_END.split(sentence):
            pieces.extend([clause] if len(clause) <= max_chars else _pack(_WORD.findall(clause), max_chars))
    return _pack(pieces, max_chars)


def split_sentences(text: str, max_chars: int) -> List[str]:
    """A text's sentences, each cut by `split_text` where it is longer than max_chars: the pieces a stream speaks
    one after the other, so that the first is heard before the last is made."""
    return [piece for sentence in _SENTENCE_END.split(text.strip()) if sentence.strip()
            for piece in split_text(sentence, max_chars)]
