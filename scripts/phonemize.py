"""Rewrite the text of a filelist or phrase file as ARPAbet from espeak-ng's own phonemizer.

    python -m scripts.phonemize IN OUT [--voice en-us]

Each word becomes a `{...}` ARPAbet group, which the text front end reads as phonemes (the seed's symbol set has
the ARPAbet symbols); clause breaks become commas and the sentence keeps its final mark, so
`The museum closes at six, so we should hurry along.` becomes
`{DH AH0} {M Y UW0 Z IY1 AH0 M} ..., {S OW2} ... .`. Lines `path|text[|...]` (filelists) have their second field
rewritten, other lines (phrase files) all of it. For an espeak-ng corpus this hands the model the very phonemes
the teacher voice spoke, so it learns sounds rather than English spelling. The phonemizer itself is
tacotron2/text/phonemizers.py, which inference uses too (`--text-frontend espeak`).
"""
import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import List

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.phonemize ...")

from common.filelist import read_text_lines  # noqa: E402
from tacotron2.text.phonemizers import PhonemizeError, espeak_read, require  # noqa: E402
from common.flag_types import COUNT  # noqa: E402
from common.output import check_outputs  # noqa: E402


def phonemize_lines(lines: List[str], voice: str = "en-us", jobs: int = 4) -> List[str]:
    """Lines of a filelist (`path|text[|...]`, the text rewritten) or of a phrase file (the whole line).
    A phoneme outside the table raises PhonemizeError with the line's number."""
    exe = require("espeak-ng")

    def one(number: int, line: str) -> str:
        if not line.strip():
            return line
        fields = line.split("|")
        try:
            if len(fields) > 1:
                return "|".join([fields[0], espeak_read(fields[1], voice, exe)] + fields[2:])
            return espeak_read(line, voice, exe)
        except PhonemizeError as e:
            raise PhonemizeError(str(e), number) from e

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, range(1, len(lines) + 1), lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="filelist or phrase file")
    parser.add_argument("output")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice whose phonemizer to use")
    parser.add_argument("--jobs", type=COUNT, default=4)
    args = parser.parse_args(argv)
    check_outputs(parser, files=[("output", args.output)])
    lines = read_text_lines(args.input, SystemExit)
    try:
        result = phonemize_lines(lines, args.voice, args.jobs)
    except PhonemizeError as e:
        raise SystemExit(f"error: {args.input}:{e.line}: {e}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in result))
    print(f"wrote {len(result)} lines to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
