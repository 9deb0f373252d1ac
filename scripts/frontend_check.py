"""Does a model read plain text as it was trained? Typed sentences against the corpus's own symbol lists.

    python -m scripts.frontend_check --tacotron2 CKPT -d HELDOUT_CORPUS \
        --filelist HELDOUT_CORPUS/filelists/slt_audio_phoneme_all_filelist.txt [--listen] [--vocoder hifigan]

For every sentence of the corpus (metadata.csv's column 1: the text as a user types it) the symbols that the
model's own front end (read off its checkpoint) makes of it, through synthesis.make_phrases as inference.py reads
a phrase file and through torch.hub's prepare_input_sequence, against the symbols of the filelist's line (what
the model was trained on: for the slt corpora, the phonemes festival spoke). Prints the share that agree and
names the others with both readings. With --listen both inputs are synthesised (prenet dropout off, Griffin-Lim
or --vocoder) and heard by the recogniser: WER and CER from plain text beside those from the list.
"""
import argparse
import json
import os
import sys
import warnings

import numpy as np
import torch

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.frontend_check ...")

import models  # noqa: E402
from common import listeners  # noqa: E402
from common.filelist import load_filelist  # noqa: E402
from corpora.filelists import read_metadata  # noqa: E402
from synthesis import build_synthesizer, make_phrases, text_frontend  # noqa: E402
from tacotron2.text import sequence_to_text, text_to_sequence  # noqa: E402
from tacotron2.text.frontend import FRONTENDS  # noqa: E402
from vocoders import VOCODERS  # noqa: E402
from common.output import check_outputs  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tacotron2", required=True)
    parser.add_argument("-d", "--dataset-path", required=True, help="the corpus (its metadata.csv: the sentences)")
    parser.add_argument("--filelist", required=True, help="the corpus's symbol list the model was trained on")
    parser.add_argument("--text-frontend", choices=sorted(FRONTENDS), default=None,
                        help="for a phoneme checkpoint written before checkpoints said it")
    parser.add_argument("--listen", action="store_true", help="synthesise both inputs and hear them (WER/CER)")
    parser.add_argument("--vocoder", choices=sorted(VOCODERS), default="griffin-lim")
    parser.add_argument("-o", "--output", default=None, help="a JSON file for the figures")
    args = parser.parse_args(argv)
    check_outputs(parser, files=[("-o", args.output)])
    cpu = torch.device("cpu")
    model, _ = models.load_model(args.tacotron2, "Tacotron2", cpu)
    frontend = text_frontend(model, args.text_frontend)
    sentences = dict(read_metadata(os.path.join(args.dataset_path, "metadata.csv"), column=1))
    words = dict(read_metadata(os.path.join(args.dataset_path, "metadata.csv"), column=2))
    entries = load_filelist(args.filelist, args.dataset_path)
    ids = [os.path.splitext(os.path.basename(e.path))[0] for e in entries]
    typed = [sentences[i] for i in ids]
    trained = [text_to_sequence(e.fields[0], list(frontend.cleaners)) for e in entries]
    phrases = make_phrases(typed, frontend, source="metadata.csv")
    # torch.hub as a user calls it (its utils sort the batch longest first, as NVIDIA's do: compared as sets)
    utils = torch.hub.load(REPO, "nvidia_tts_utils", source="local")
    hub_text, hub_lengths = utils.prepare_input_sequence(typed, model=model)
    hub = sorted(tuple(row[:n].tolist()) for row, n in zip(hub_text, hub_lengths))
    hub_agree = sum(h == s for h, s in zip(hub, sorted(tuple(p.sequence) for p in phrases)))
    agree = [p.sequence == t for p, t in zip(phrases, trained)]
    print(f"{args.tacotron2}: front end {frontend.kind}; {sum(agree)} of {len(agree)} typed sentences "
          f"({100 * np.mean(agree):.0f} %) become the symbols of {args.filelist} (inference.py's reading)")
    print(f"torch.hub's prepare_input_sequence gives inference.py's symbols for {hub_agree} of {len(phrases)}")
    for i, ok in enumerate(agree):
        if not ok:
            print(f"  {ids[i]}: typed {typed[i]!r}\n    read as   {sequence_to_text(phrases[i].sequence)}\n"
                  f"    trained   {sequence_to_text(trained[i])}")
    result = {"front_end": frontend.kind, "sentences": len(agree), "agree": int(sum(agree)),
              "hub_equals_inference": int(hub_agree)}
    if args.listen:
        model.set_modes(prenet_dropout=False)
        synth = build_synthesizer(model, None, cpu, vocoder=args.vocoder)
        scores = {"typed": [], "list": []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for phrase, sequence, i in zip(phrases, trained, ids):
                for key, seq in (("typed", phrase.sequence), ("list", sequence)):
                    wav = synth([phrase._replace(sequence=seq)])["audio"][0].numpy()
                    scores[key].append(listeners.listen(wav, synth.vocoder.audio.sampling_rate, words[i]))
        for key, label in (("typed", "from the typed text"), ("list", "from the corpus's list")):
            wer, cer = (float(np.mean([s[k] for s in scores[key]])) for k in ("wer", "cer"))
            result[f"{key}_wer"], result[f"{key}_cer"] = wer, cer
            print(f"{label}: WER {wer:.2f}, CER {cer:.2f} ({args.vocoder}, {len(ids)} sentences)")
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
