"""Sentences of our own for synthetic corpora (no downloaded text): a small grammar for training, made-up words
so that a model must learn to read rather than memorise, and a grammar of other words for held-out tests.

The training grammar exercises the cleaners: numbers, money, ordinals, abbreviations and punctuation. The
held-out grammar shares no noun, verb or adjective with it (rare words and names included; "museum" of its first,
fixed sentence aside), so that a test sentence asks a model to speak words it never heard. The same seed gives
the same sentences.
"""
import random
from typing import List

_SUBJECTS = ["The old sailor", "A quiet librarian", "Dr. Jensen", "My younger brother", "The baker next door",
             "Mrs. Whitfield", "A tired engineer", "The village choir", "Our new neighbour", "Capt. Morgan",
             "The shy violinist", "A curious child", "Prof. Okafor", "The museum guard", "Her grandmother",
             "The weather reporter", "Sgt. Bailey", "A young gardener", "The night watchman", "Mr. Lindqvist"]
_VERBS = ["carried", "painted", "borrowed", "measured", "repaired", "ordered", "described", "hid", "found",
          "counted", "washed", "delivered", "photographed", "sold", "examined", "polished", "wrapped", "judged"]
_OBJECTS = ["a yellow umbrella", "the broken clock", "three wooden chairs", "a jar of honey", "the heavy parcel",
            "twelve fresh oranges", "the crooked fence", "a silver whistle", "the muddy boots", "an enormous map",
            "the thick journal", "a box of matches", "the velvet curtain", "a quartz crystal", "the zinc bucket"]
_PLACES = ["near the harbour", "behind the church", "at the railway station", "in the crowded market",
           "beside the frozen lake", "on Elm St.", "under the bridge", "inside the warehouse", "at Fort Knox",
           "across the valley", "by the judge's house", "outside the theatre"]
_TIMES = ["on Monday morning", "before sunrise", "during the storm", "in 1987", "after lunch", "at midnight",
          "in the spring of 2004", "last Thursday", "on the 3rd of June", "around 7 o'clock"]
_EXTRAS = ["for $5.50", "for 12 dollars", "with 250 others", "for the 2nd time", "while humming softly",
           "without a word", "as quickly as possible", "for about 3.5 hours", "and then vanished",
           "although nobody asked", "because it was cheap", "for the 21st year running"]
_QUESTIONS = ["Why would {s} do that?", "Did {s} really leave {p}?", "Who gave {s} {o}?",
              "Is it true that {s} {v} {o}?"]
_EXCLAIMS = ["What a strange day it was!", "Nobody expected {o}!", "{s} laughed out loud!"]


_ONSETS = ["b", "bl", "br", "c", "cl", "cr", "d", "dr", "f", "fl", "fr", "g", "gl", "gr", "h", "j", "k", "l", "m",
           "n", "p", "pl", "pr", "qu", "r", "s", "sh", "sk", "sl", "sm", "sn", "sp", "st", "str", "sw", "t", "th", "tr",
           "v", "w", "wh", "y", "z", "ch", ""]
_NUCLEI = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "oa", "oo", "ou", "y", "ie", "au"]
_CODAS = ["", "", "", "", "", "n", "m", "t", "d", "k", "s", "l", "r", "st", "nd", "ng", "ck", "sh", "th", "mp"]


def pseudo_word(rng: random.Random) -> str:
    """A made-up word of 1-3 English-like syllables: espeak-ng speaks it by its letter-to-sound rules."""
    return "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS) for _ in range(rng.choice([1, 1, 2, 2, 3])))


def pseudo_sentence(rng: random.Random) -> str:
    """A sentence of made-up words among a few real function words: nothing to learn as a whole word, so a model
    must learn to read letters (a corpus of a hundred real words lets it memorise words instead)."""
    words = []
    for i in range(rng.randint(5, 12)):
        words.append(rng.choice(["the", "a", "and", "of", "to", "in"]) if i % 3 == 1 and rng.random() < 0.6
                     else pseudo_word(rng))
    text = " ".join(words)
    if len(words) > 6 and rng.random() < 0.4:
        cut = rng.randint(3, len(words) - 3)
        text = " ".join(words[:cut]) + ", " + " ".join(words[cut:])
    return text[0].upper() + text[1:] + rng.choice([".", ".", ".", "?", "!"])


def make_sentences(n: int, seed: int, pseudo_fraction: float = 0.0) -> List[str]:
    """n distinct sentences, deterministic for a seed: from the grammar, and `pseudo_fraction` of them of
    made-up words (`pseudo_sentence`)."""
    rng = random.Random(seed)
    out, seen = [], set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 200 * n:
            raise RuntimeError(f"grammar cannot produce {n} distinct sentences")
        if pseudo_fraction and rng.random() < pseudo_fraction:
            text = pseudo_sentence(rng)
            if text not in seen:
                seen.add(text)
                out.append(text)
            continue
        s, v, o = rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)
        kind = rng.random()
        if kind < 0.12:
            subject = s[0].lower() + s[1:] if s.split()[0] in ("The", "A", "My", "Our", "Her") else s
            text = rng.choice(_QUESTIONS).format(s=subject, v=v, o=o, p=rng.choice(_PLACES))
        elif kind < 0.18:
            text = rng.choice(_EXCLAIMS).format(s=s, o=o)
        else:
            parts = [s, v, o]
            if rng.random() < 0.7:
                parts.append(rng.choice(_PLACES))
            if rng.random() < 0.5:
                parts.append(rng.choice(_TIMES))
            if rng.random() < 0.35:
                parts.append(rng.choice(_EXTRAS))
            text = " ".join(parts)
            if len(parts) > 3 and rng.random() < 0.25:
                text = text.replace(" " + parts[-1], ", " + parts[-1], 1)
            text += rng.choice([".", ".", ".", ";", "!"]) if not text.endswith(".") else ""
            if text.endswith(";"):
                text = text[:-1] + "."
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


# Held-out vocabulary: no noun, verb or adjective of the training grammar above
_T_SUBJECTS = ["The retired pilot", "A nervous dentist", "Aunt Beatrice", "The hotel manager", "Two firefighters",
               "The philosopher", "A stubborn goat", "Governor Alvarez", "The orchestra", "Uncle Thaddeus",
               "A famous astronomer", "The school nurse", "Kowalski", "The lighthouse keeper", "A clumsy waiter"]
_T_VERBS = ["noticed", "forgot", "cleaned", "followed", "recommended", "rescued", "dropped", "balanced",
            "invented", "collected", "abandoned", "translated", "swallowed", "inspected", "decorated"]
_T_OBJECTS = ["a purple kite", "the marble statue", "seven glass bottles", "a basket of plums", "the leather saddle",
              "an antique typewriter", "the copper kettle", "a bundle of letters", "the rusty bicycle", "a jigsaw puzzle",
              "the chemistry textbook", "a pair of binoculars", "the mahogany wardrobe", "a cheese sandwich"]
_T_PLACES = ["near the lighthouse", "at the airport", "inside the greenhouse", "beside the fountain",
             "on the mountain path", "in the cathedral", "behind the pharmacy", "at the circus"]
_T_TIMES = ["on Saturday evening", "before dinner", "at noon", "during the winter", "in nineteen sixty two",
            "yesterday afternoon", "every other week"]
_T_EXTRAS = ["with great care", "while it rained", "for forty minutes", "without any help", "to everyone's surprise"]
_T_FIXED = ["The museum closes at six, so we should hurry along before the guards lock the doors."]


def held_out_sentences(n: int, seed: int = 0) -> List[str]:
    """n distinct sentences of the held-out grammar (none of the training grammar's content words), the first
    being the museum sentence the listeners were first calibrated on."""
    rng = random.Random(seed)
    out, seen = list(_T_FIXED[:n]), set(_T_FIXED)
    while len(out) < n:
        parts = [rng.choice(_T_SUBJECTS), rng.choice(_T_VERBS), rng.choice(_T_OBJECTS)]
        for extra, p in ((_T_PLACES, 0.7), (_T_TIMES, 0.5), (_T_EXTRAS, 0.3)):
            if rng.random() < p:
                parts.append(rng.choice(extra))
        text = " ".join(parts)
        if len(parts) > 3 and rng.random() < 0.3:
            text = text.replace(" " + parts[-1], ", " + parts[-1], 1)
        text += rng.choice([".", ".", ".", "!"])
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out
