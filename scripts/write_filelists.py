"""Write train/val/test filelists (and train subsets) from an LJSpeech-format metadata.csv.

    python -m scripts.write_filelists --metadata CORPUS/metadata.csv -o filelists --prefix NAME
    python -m scripts.write_filelists --metadata LJSpeech-1.1/metadata.csv --split filelists/ljspeech_split

Lines of metadata.csv are `id|text|normalized text`. Without --split, filelist lines are `wavs/<id>.wav|<text>`
(audio) and `mels/<id>.pt|<text>` (mel), and the split is a deterministic function of the ids and the seed.
With --split DIR (one `<name>.ids` file per list, as in filelists/ljspeech_split: NVIDIA's LJSpeech split),
the seed's filelists are written byte for byte in its layout: `LJSpeech-1.1/wavs/<id>.wav|<normalized text>`
in the ids' order, used with `-d ./`.

    python -m scripts.write_filelists --minutes 5 --filelist IN -d CORPUS -o OUT

writes the first lines of a filelist that add up to 5 minutes of audio (a small-data subset for fine-tuning).
"""
import argparse
import sys

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.write_filelists ...")

from common.filelist import read_text_lines  # noqa: E402
from common.flag_types import SEED, POSITIVE, FRACTION  # noqa: E402
from corpora.filelists import first_minutes, write_filelists, write_seed_filelists  # noqa: E402
from common.output import check_outputs  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metadata", default=None)
    parser.add_argument("-o", "--output", default="filelists", help="folder (a file with --minutes)")
    parser.add_argument("--prefix", default="ljs")
    parser.add_argument("--seed", type=SEED, default=1234)
    parser.add_argument("--val-fraction", type=FRACTION, default=0.01)
    parser.add_argument("--test-fraction", type=FRACTION, default=0.0382)
    parser.add_argument("--split", default=None, help="folder of <name>.ids lists: write the seed's filelists")
    parser.add_argument("--root", default="LJSpeech-1.1", help="with --split: the corpus folder in each path")
    parser.add_argument("--minutes", type=POSITIVE, default=None,
                        help="write the first lines of --filelist that add up to this many minutes of audio")
    parser.add_argument("--filelist", default=None, help="with --minutes: the filelist to take them from")
    parser.add_argument("-d", "--dataset-path", default=".", help="with --minutes: the folder its paths start in")
    args = parser.parse_args(argv)
    if args.minutes is None:
        check_outputs(parser, folders=[("-o", args.output)])
    else:
        check_outputs(parser, files=[("-o", args.output)])
    if (args.minutes is None) == (args.metadata is None) or (args.minutes is not None) != bool(args.filelist):
        parser.error("give --metadata (filelists of a corpus) or --minutes with --filelist (a subset of one)")
    try:
        if args.minutes is not None:
            lines = first_minutes(read_text_lines(args.filelist), args.dataset_path, args.minutes)
            with open(args.output, "w", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in lines)
            print(f"wrote {len(lines)} lines ({args.minutes} minutes) to {args.output}")
        elif args.split:
            write_seed_filelists(args.metadata, args.split, args.output, args.root)
        else:
            write_filelists(args.metadata, args.output, args.prefix, val_fraction=args.val_fraction,
                            test_fraction=args.test_fraction, seed=args.seed)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
