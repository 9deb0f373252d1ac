"""Write the benchmark phrase files phrases/phrase_<batch>_<chars>.txt (and phrases/phrase.txt).

Each line is a sentence of our own grammar (corpora/sentences.py), joined with the next
ones and cut at a word boundary to exactly <chars> characters, ending with a full stop.
"""
import os
import sys

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.make_phrases ...")

from corpora.sentences import make_sentences


_FILLERS = {1: "a", 2: "so", 3: "and", 4: "then", 5: "there", 6: "indeed", 7: "however", 8: "probably",
            9: "certainly", 10: "absolutely"}


def _fill(gap: int) -> str:
    """Words with their leading spaces that take exactly `gap` characters (gap != 1)."""
    out = ""
    while gap > 0:
        n = gap - 1 if gap - 1 <= 10 else (10 if gap - 11 != 1 else 9)
        out += " " + _FILLERS[n]
        gap -= n + 1
    return out


def phrase_of_length(sentences, start: int, chars: int) -> str:
    """Sentences from `start` on, cut at a word boundary and topped up to exactly `chars` characters."""
    words = " ".join(sentences[(start + i) % len(sentences)] for i in range(20)).split()
    text = words[0]
    for word in words[1:]:
        if len(text) + 1 + len(word) > chars - 1:
            break
        text += " " + word
    text = text.rstrip(".,;:!?")
    while chars - 1 - len(text) == 1:  # one character cannot be filled by a word: drop the last word
        text = text.rsplit(" ", 1)[0].rstrip(".,;:!?")
    return text + _fill(chars - 1 - len(text)) + "."


def main(out_dir: str = "phrases") -> None:
    sentences = make_sentences(400, seed=11)
    os.makedirs(out_dir, exist_ok=True)
    k = 0
    for batch in (1, 4, 8):
        for chars in (64, 128, 256):
            lines = []
            for _ in range(batch):
                lines.append(phrase_of_length(sentences, k, chars))
                k += 3
            assert all(len(line) == chars for line in lines)
            with open(os.path.join(out_dir, f"phrase_{batch}_{chars}.txt"), "w") as f:
                f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
