"""Build an LJSpeech-format corpus by speaking generated English sentences with one of our voices.

    python -m scripts.make_corpus -o data/slt --voice slt --n 1200 --seed 1
    python -m scripts.make_corpus -o data/espeak --n 1200 --seed 1          # espeak-ng: fast, robotic

Writes OUT/wavs/*.wav (22050 Hz, 16-bit mono), OUT/metadata.csv and OUT/filelists/<voice>_audio_text_{train,val,
test}_filelist.txt (for slt also ..._phoneme_...: the phonemes festival spoke); see corpora/build.py. The
sentences come from a small grammar of our own (corpora/sentences.py, no downloaded text), with numbers, money,
ordinals, abbreviations and punctuation; `--pseudo-words F` makes a fraction F of them of made-up words. The same
seed gives the same corpus; the test split is held out from training. `--sentences FILE` speaks the lines of a
text file instead (the demo's phrases, so that the teacher's recording of each can be heard beside the model's);
`--held-out N` speaks N sentences of the held-out grammar (other vocabulary) into one `..._all` filelist.
"""
import argparse
import sys

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.make_corpus ...")

from common.filelist import read_text_lines  # noqa: E402
from common.flag_types import COUNT, SEED, FRACTION  # noqa: E402
from corpora.build import build_corpus  # noqa: E402
from corpora.sentences import held_out_sentences  # noqa: E402
from corpora.voices import VOICES  # noqa: E402
from common.output import check_outputs  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", required=True, help="corpus directory")
    parser.add_argument("--voice", default="espeak", choices=sorted(VOICES))
    parser.add_argument("--n", type=COUNT, default=1200, help="number of sentences")
    parser.add_argument("--seed", type=SEED, default=1)
    parser.add_argument("--jobs", type=COUNT, default=2, help="voice processes in parallel")
    parser.add_argument("--pseudo-words", type=FRACTION, default=0.0,
                        help="fraction of sentences made of made-up words (letter-to-sound, not memorised words)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--sentences", default=None,
                        help="speak the lines of this text file (e.g. phrases/demo.txt) instead of generated sentences")
    source.add_argument("--held-out", type=COUNT, default=None, metavar="N",
                        help="speak N sentences of the held-out grammar (other vocabulary) instead")
    args = parser.parse_args(argv)
    check_outputs(parser, folders=[("-o", args.output)])
    given = None
    if args.sentences:
        given = [line.strip() for line in read_text_lines(args.sentences, SystemExit) if line.strip()]
    elif args.held_out:
        given = held_out_sentences(args.held_out, args.seed)
    corpus = build_corpus(args.output, args.n, args.voice, args.seed, jobs=args.jobs,
                          pseudo_fraction=args.pseudo_words, sentences=given)
    minutes = sum(s.seconds for s in corpus.spoken) / 60
    print(f"wrote {len(corpus.ids)} utterances ({minutes:.1f} minutes) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
