"""Quality of a Tacotron 2 on held-out sentences, in free-running (greedy) inference (evaluation.py).

    python -m scripts.evaluate_tacotron2 --tacotron2 CKPT -d data/slt --voice slt \
        --filelist data/slt/filelists/slt_audio_phoneme_test_filelist.txt -o eval/ [--calibrate] [--listen]

Prints a table per sentence (diagonality, focus, stop ratio, MCD-DTW and spectral contrast against the teacher
mel, teacher-forced mel error, attention granularity), writes eval/metrics.json and one picture per sentence
(the teacher's mel, the model's, the attention); --audio writes the wavs (teacher, model + Griffin-Lim, and with
--waveglow model + WaveGlow, with --hifigan model + HiFi-GAN). Then the table of signals judged against the teacher (the model and the teacher's
mel through each vocoder; with --calibrate the teacher's recording, a hum, other voices; with --listen the
recogniser's WER/CER and DNSMOS for each). A model that speaks lies near the teacher's vocoder row and below the
other voices; a hum is not understood at all.
"""
import argparse
import json
import os
import sys

import torch

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.evaluate_tacotron2 ...")

import models  # noqa: E402
from corpora.voices import VOICES  # noqa: E402
from evaluation import Judging, evaluate_model, format_calibration  # noqa: E402
from tacotron2 import metrics  # noqa: E402
from synthesis import add_griffin_lim_flags, text_frontend  # noqa: E402
from vocoders import SIGMA_INFER  # noqa: E402
from tacotron2.fast_inference import FastDecoder  # noqa: E402
from tacotron2.text.frontend import FRONTENDS  # noqa: E402
from common.flag_types import COUNT, COUNT0, SEED, POSITIVE, NONNEG, FRACTION  # noqa: E402
from common.output import check_outputs  # noqa: E402

FAST_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "qint8": torch.qint8}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tacotron2", required=True)
    parser.add_argument("-d", "--dataset-path", required=True)
    parser.add_argument("--filelist", required=True)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--limit", type=COUNT, default=None, help="first N sentences only")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--deterministic", action="store_true", help="prenet dropout off")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the prenet dropout draws")
    parser.add_argument("--calibrate", action="store_true",
                        help="the calibration rows: the teacher's recording, a hum, other voices speaking the sentences")
    parser.add_argument("--listen", action="store_true",
                        help="judge every row by ear too: pocketsphinx's WER/CER and DNSMOS (common/listeners.py)")
    parser.add_argument("--voice", default="espeak", choices=sorted(VOICES),
                        help="the corpus's teacher voice (which other voices calibrate against it)")
    parser.add_argument("--audio", action="store_true",
                        help="write OUTPUT/<id>_teacher.wav and the model's <id>_griffin_lim.wav (and _waveglow.wav)")
    parser.add_argument("--waveglow", default=None, help="a WaveGlow checkpoint: adds its rows and wavs")
    parser.add_argument("--sigma-infer", type=NONNEG, default=SIGMA_INFER, help="WaveGlow's sigma")
    parser.add_argument("--denoising-strength", type=FRACTION, default=0.01)
    add_griffin_lim_flags(parser)  # the teacher's rows too: one floor, measured the same way
    parser.add_argument("--griffin-lim-power", type=POSITIVE, default=1.0,
                        help="magnitudes raised to this power before Griffin-Lim, the teacher's rows too")
    parser.add_argument("--hifigan", default=None, metavar="WEIGHTS",
                        help="adds HiFi-GAN V1's rows and wavs: universal or ljspeech (the published generators) or a "
                             "generator checkpoint")
    parser.add_argument("--text-frontend", choices=sorted(FRONTENDS), default=None,
                        help="the front end of a phoneme checkpoint written before checkpoints said it")
    parser.add_argument("--decoder", choices=["plain", *FAST_DTYPES], default="plain",
                        help="decode with the fused fast decoder in this precision (qint8: int8 LSTM matrices) "
                             "instead of the model's own step, to measure what a fast path costs in quality")
    parser.add_argument("--waveglow-dtype", choices=["plain", *FAST_DTYPES], default="plain",
                        help="vocode with WaveGlow's coupling networks prepared in this precision (qint8: int8 "
                             "products) instead of the model itself; the listeners then judge that fast path")
    parser.add_argument("--jobs", type=COUNT0, default=0,
                        help="processes judging the sentences side by side (0: one a core, 8 sentences or more each)")
    args = parser.parse_args(argv)
    check_outputs(parser, folders=[("-o", args.output)])
    model, _ = models.load_model(args.tacotron2, "Tacotron2", torch.device("cpu"))
    waveglow = models.load_model(args.waveglow, "WaveGlow", torch.device("cpu"))[0] if args.waveglow else None
    decode = None if args.decoder == "plain" else FastDecoder(model.decoder, FAST_DTYPES[args.decoder]).infer
    os.makedirs(args.output, exist_ok=True)
    judging = Judging(voice=args.voice, calibrate=args.calibrate, listen=args.listen,
                      audio_dir=args.output if args.audio else None,
                      griffin_lim_iters=args.griffin_lim_iters, griffin_lim_power=args.griffin_lim_power,
                      griffin_lim_momentum=args.griffin_lim_momentum,
                      sigma=args.sigma_infer, denoising_strength=args.denoising_strength, hifigan=args.hifigan,
                      waveglow_dtype=FAST_DTYPES.get(args.waveglow_dtype), jobs=args.jobs)
    try:
        result = evaluate_model(model, args.dataset_path, args.filelist, judging, waveglow, args.limit,
                                None if args.no_plots else args.output, not args.deterministic, args.seed, decode,
                                text_frontend(model, args.text_frontend))
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    print(metrics.format_table(result["sentences"], result["summary"]))
    if "calibration" in result:
        print()
        print(format_calibration(result["calibration"], f"the {args.voice} teacher"))
    with open(os.path.join(args.output, "metrics.json"), "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
