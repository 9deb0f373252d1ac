"""Build an LJSpeech-format corpus by speaking generated English sentences with espeak-ng.

    python -m scripts.make_espeak_corpus -o data/espeak --n 1200 --seed 1

Writes OUT/wavs/ES-XXXXX.wav (22050 Hz, 16-bit mono), OUT/metadata.csv (`id|text|normalized text`)
and the filelists OUT/filelists/espeak_audio_text_{train,val,test}_filelist.txt (paths relative to OUT).
The sentences come from a small grammar of our own (no downloaded text): subjects, verbs, objects,
places and times, with numbers, money, ordinals, abbreviations and punctuation so that the cleaners
are exercised. The same seed gives the same corpus. The test split is held out from training.
`--sentences FILE` speaks the lines of a text file instead (the demo's phrases, so that the teacher's recording
of each can be heard and compared with the model's).
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional

import numpy as np
import soundfile as sf

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.make_espeak_corpus ...")

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


def ensure_espeak() -> str:
    """Path of espeak-ng, installing it with apt-get where possible."""
    exe = shutil.which("espeak-ng")
    if exe:
        return exe
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "espeak-ng"], check=False, stdout=subprocess.DEVNULL)
        exe = shutil.which("espeak-ng")
        if exe:
            return exe
    raise SystemExit("error: espeak-ng is not installed and could not be installed "
                     "(Debian/Ubuntu: sudo apt-get install espeak-ng)")


def speak(exe: str, text: str, path: str, sampling_rate: int, rate: int, voice: str = "en-us") -> float:
    """Speak text into a 16-bit mono wav at sampling_rate, trimmed of edge silence; returns seconds."""
    raw = subprocess.run([exe, "-v", voice, "-s", str(rate), "--stdout", text], check=True,
                         capture_output=True).stdout
    tmp = path + ".raw.wav"
    with open(tmp, "wb") as f:
        f.write(raw)
    audio, sr = sf.read(tmp, dtype="float32")
    os.remove(tmp)
    if sr != sampling_rate:
        n_out = int(round(len(audio) * sampling_rate / sr))
        audio = np.interp(np.linspace(0, len(audio) - 1, n_out), np.arange(len(audio)), audio).astype(np.float32)
    voiced = np.nonzero(np.abs(audio) > 0.01)[0]
    if voiced.size:
        pad = int(0.05 * sampling_rate)
        audio = audio[max(voiced[0] - pad, 0):voiced[-1] + pad]
    sf.write(path, audio, sampling_rate, subtype="PCM_16")
    return len(audio) / sampling_rate


def build_corpus(out_dir: str, n: int, seed: int = 1, sampling_rate: int = 22050, rate: int = 175,
                 val_fraction: float = 0.05, test_fraction: float = 0.05, jobs: int = 4,
                 pseudo_fraction: float = 0.0, sentences: Optional[List[str]] = None) -> List[str]:
    """Write the corpus and filelists; returns the sentences in id order. Given `sentences` (e.g. the demo
    phrases), speak those instead of n generated ones, into one filelist `espeak_audio_text_all_filelist.txt`."""
    from tacotron2.text.cleaners import english_cleaners

    exe = ensure_espeak()
    given = sentences is not None
    sentences = list(sentences) if given else make_sentences(n, seed, pseudo_fraction)
    n = len(sentences)
    wav_dir = os.path.join(out_dir, "wavs")
    os.makedirs(wav_dir, exist_ok=True)
    ids = [f"ES-{i:05d}" for i in range(n)]
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda a: speak(exe, a[1], os.path.join(wav_dir, a[0] + ".wav"), sampling_rate, rate),
                      zip(ids, sentences)))
    with open(os.path.join(out_dir, "metadata.csv"), "w", encoding="utf-8") as f:
        for i, s in zip(ids, sentences):
            f.write(f"{i}|{s}|{english_cleaners(s).strip()}\n")
    if given:
        os.makedirs(os.path.join(out_dir, "filelists"), exist_ok=True)
        with open(os.path.join(out_dir, "filelists", "espeak_audio_text_all_filelist.txt"), "w",
                  encoding="utf-8") as f:
            f.writelines(f"wavs/{i}.wav|{s}\n" for i, s in zip(ids, sentences))
        return sentences
    from scripts.write_filelists import write_filelists
    write_filelists(os.path.join(out_dir, "metadata.csv"), os.path.join(out_dir, "filelists"), prefix="espeak",
                    wav_dir="wavs", val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                    subsets=())
    return sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", required=True, help="corpus directory")
    parser.add_argument("--n", type=int, default=1200, help="number of sentences")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=int, default=175, help="espeak-ng words per minute")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--pseudo-words", type=float, default=0.0,
                        help="fraction of sentences made of made-up words (letter-to-sound, not memorised words)")
    parser.add_argument("--sentences", default=None,
                        help="speak the lines of this text file (e.g. phrases/demo.txt) instead of generated sentences,"
                             " all in filelists/espeak_audio_text_all_filelist.txt")
    args = parser.parse_args()
    given = None
    if args.sentences:
        from common.filelist import read_text_lines
        given = [line.strip() for line in read_text_lines(args.sentences, SystemExit) if line.strip()]
    sentences = build_corpus(args.output, args.n, args.seed, rate=args.rate, jobs=args.jobs,
                             pseudo_fraction=args.pseudo_words, sentences=given)
    print(f"wrote {len(sentences)} utterances to {args.output}")


if __name__ == "__main__":
    main()
