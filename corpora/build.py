"""An LJSpeech-format corpus spoken by one of our voices (corpora/voices.py).

Writes OUT/wavs/<ID>.wav (16-bit mono), OUT/metadata.csv (`id|text|normalized text`: the sentence, then the words
the voice spoke where it says, else the text cleaners' reading) and the filelists
OUT/filelists/<prefix>_{audio,mel}_text_{train,val,test}_filelist.txt (paths relative to OUT). For the slt voice
also <prefix>_{audio,mel}_phoneme_* (the phonemes festival spoke) and OUT/segments.csv (each segment's end time in
the wav: tacotron2/alignment_targets.py), and its text filelists hold the words it
spoke, so that characters and audio agree ("$5.50" is "five dollars fifty" there, not the cleaners' "five
dollars, fifty cents"); flite's voices get the same from festival's front end, which flite was ported from. Given sentences (the demo phrases), one `<prefix>_audio_{text,phoneme}_all` list instead.
"""
import os
from typing import Dict, List, NamedTuple, Optional, Sequence

from corpora import voices
from corpora.filelists import split_ids, write_lists
from corpora.sentences import make_sentences
from tacotron2.alignment_targets import SEGMENTS_FILE, write_segments

ID_PREFIX = {"espeak": "ES", "slt": "SLT"}  # other voices: their name, upper-case


class Corpus(NamedTuple):
    sentences: List[str]
    ids: List[str]
    spoken: List[voices.Spoken]


def list_prefix(voice: str) -> str:
    """The filelists' name prefix of a voice's corpus: espeak_audio_text_train_filelist.txt, slt_..."""
    return voice.replace("-", "_")


def build_corpus(out_dir: str, n: int, voice: str = "espeak", seed: int = 1, sampling_rate: int = 22050,
                 val_fraction: float = 0.05, test_fraction: float = 0.05, jobs: int = 2,
                 pseudo_fraction: float = 0.0, sentences: Optional[Sequence[str]] = None) -> Corpus:
    """Speak n generated sentences (or the given ones) and write the corpus; see the module docstring."""
    from tacotron2.text.cleaners import english_cleaners

    given = sentences is not None
    sentences = list(sentences) if given else make_sentences(n, seed, pseudo_fraction)
    ids = [f"{ID_PREFIX.get(voice, voice.replace('-', '').upper())}-{i:05d}" for i in range(len(sentences))]
    os.makedirs(os.path.join(out_dir, "wavs"), exist_ok=True)
    spoken = voices.speak(voice, sentences, [os.path.join(out_dir, "wavs", f"{i}.wav") for i in ids],
                          sampling_rate, jobs)
    if voice.startswith("flite-"):  # flite is festival ported to C, lexicon and letter-to-sound rules included:
        # its words and phonemes as festival's front end reads the sentences (pauses may differ)
        spoken = [said._replace(words=reading.words, arpabet=reading.arpabet)
                  for said, reading in zip(spoken, voices.festival_phonemes(sentences, jobs))]
    with open(os.path.join(out_dir, "metadata.csv"), "w", encoding="utf-8") as f:
        for i, s, said in zip(ids, sentences, spoken):
            f.write(f"{i}|{s}|{said.words or english_cleaners(s).strip()}\n")
    if all(said.segments for said in spoken):  # the teacher's durations, for guided attention
        write_segments(os.path.join(out_dir, SEGMENTS_FILE), {i: said.segments for i, said in zip(ids, spoken)})
    texts: Dict[str, Dict[str, str]] = {"text": {i: said.words or s for i, s, said in zip(ids, sentences, spoken)}}
    if all(said.arpabet for said in spoken):
        texts["phoneme"] = {i: said.arpabet for i, said in zip(ids, spoken)}
    if given:
        splits = {"all": ids}
    else:
        splits = split_ids(ids, val_fraction, test_fraction, seed, subsets=())
    for kind, by_id in texts.items():
        write_lists(os.path.join(out_dir, "filelists"), list_prefix(voice), splits, by_id, kind)
    return Corpus(sentences, ids, spoken)
