"""train.py's flags: NVIDIA's, the model's own (from its package), and a config file's defaults under them.

Two phases: -m (and --config-file) first, then the whole parser strictly, so that a misspelt flag fails and a
config file's values meet the same types and ranges as the command line's.
"""
import argparse
import importlib
import os
import warnings
from typing import Optional, Sequence

import torch

import models
from common.audio import AudioConfig
from common.config_file import read_config_defaults
from common.flag_types import COUNT, COUNT0, FRACTION, NONNEG, POSITIVE, SEED
from common.training.lr_schedule import SCHEDULES
from common.training.lr_scale import parse_scale


DEPRECATED_FLAGS = {  # reference flags that do nothing here: accepted, with one warning
    "--rank": "use torchrun / multiproc (RANK env var)", "--world-size": "use torchrun / multiproc",
    "--dist-url": "use MASTER_ADDR/MASTER_PORT", "--group-name": "not needed", "--dist-backend": "chosen automatically",
    "--bench-class": "not used", "--grad-clip": "use --grad-clip-thresh",
    "--dynamic-loss-scaling": "loss scaling is always dynamic with --amp-run",
    "--use-saved-learning-rate": "the learning rate comes from -lr and the anneal schedule",
}


def build_parser(model_name: Optional[str]) -> argparse.ArgumentParser:
    """All flags: shared training/audio flags, then the model's own."""
    parser = argparse.ArgumentParser(description="PyTorch Tacotron 2 / WaveGlow training", allow_abbrev=False,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-o", "--output", "--output_directory", dest="output", type=str, required=True,
                        help="directory for checkpoints and logs")
    parser.add_argument("-d", "--dataset-path", type=str, default="./", help="root of the dataset's files")
    parser.add_argument("-m", "--model-name", type=str, required=True, choices=sorted(models.MODELS),
                        help="model to train")
    parser.add_argument("--log-file", type=str, default="nvlog.json",
                        help="DLLogger JSON-stream log: a bare name goes inside --output, a path as given")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also log to OUTPUT/tensorboard (scalars; with --val-metrics alignment pictures)")
    parser.add_argument("--anneal-steps", nargs="*", type=COUNT0, default=None, help="epochs after which the lr anneals")
    parser.add_argument("--anneal-factor", type=float, choices=[0.1, 0.3], default=0.1,
                        help="lr annealing factor (0.3 alternates 0.3 and 0.1 steps, as in the reference)")
    parser.add_argument("--lr-schedule", choices=SCHEDULES, default="anneal",
                        help="anneal: NVIDIA's (--anneal-steps); cosine, linear: from -lr down to "
                             "--lr-final-factor of it over --lr-decay-minutes of training, else over --epochs")
    parser.add_argument("--lr-decay-minutes", type=NONNEG, default=None,
                        help="the decay's length in minutes of training, counted across resumes (default: "
                             "--max-minutes; 0: the decay spans --epochs instead)")
    parser.add_argument("--warmup-steps", type=COUNT0, default=0,
                        help="optimizer steps over which the rate rises linearly to -lr (any schedule)")
    parser.add_argument("--lr-final-factor", type=FRACTION, default=0.01,
                        help="where cosine and linear end, as a fraction of -lr")
    parser.add_argument("--config-file", type=str, default=None,
                        help="JSON file of flag defaults ({'dest': value}); the command line overrides it")
    parser.add_argument("--seed", type=SEED, default=1234, help="random seed")
    for flag, why in DEPRECATED_FLAGS.items():
        parser.add_argument(flag, type=str, default=None, help=argparse.SUPPRESS)

    training = parser.add_argument_group("training setup")
    training.add_argument("--epochs", type=COUNT, required=True, help="number of total epochs to run")
    training.add_argument("--epochs-per-checkpoint", type=COUNT, default=50, help="epochs between numbered checkpoints")
    training.add_argument("--iters-per-checkpoint", type=COUNT0, default=0,
                          help="also write checkpoint_<Model>_last.pt every N iterations (0: only at epoch ends)")
    training.add_argument("--checkpoint-path", type=str, default="", help="checkpoint to resume from")
    training.add_argument("--resume-from-last", action="store_true",
                          help="resume from checkpoint_<Model>_last.pt in --output when it exists")
    training.add_argument("--warm-start", type=str, default="",
                          help="initialise the model weights from a checkpoint (e.g. a published one); "
                               "fresh optimizer, epoch 0")
    training.add_argument("--warm-start-ignore", nargs="*", default=[],
                          help="state-dict key prefixes to leave at their initial values with --warm-start")
    training.add_argument("--warm-start-pull", type=NONNEG, default=0.0, metavar="RATE",
                          help="with --warm-start: after every step each weight moves RATE x the learning rate of "
                               "its distance back towards the checkpoint's (L2-SP, decoupled as AdamW's decay): a "
                               "fine-tune on a few minutes of a new voice keeps more of what the base model said "
                               "well. 0: off")
    training.add_argument("--freeze", nargs="*", default=[], metavar="PREFIX",
                          help="state-dict key prefixes whose weights stay as loaded (e.g. embedding encoder: a "
                               "fine-tune that keeps the base model's reading of text); batch-norm statistics "
                               "still follow the data")
    training.add_argument("--lr-scale", nargs="*", default=[], type=parse_scale, metavar="PREFIX=FACTOR",
                          help="the weights whose state-dict names start with PREFIX step at FACTOR x the learning "
                               "rate (e.g. decoder.prenet=0.1: a prenet whose ReLU units Adam's full steps would "
                               "silence for good); default: none, every weight at the rate")
    training.add_argument("--amp-run", "--amp", dest="amp_run", action="store_true",
                          help="mixed precision: fp16 + dynamic loss scaling on CUDA, bf16 autocast on CPU")
    training.add_argument("--amp-dtype", choices=["auto", "fp16", "bf16"], default="auto",
                          help="autocast type with --amp-run: auto = fp16 (with loss scaling) on CUDA, bf16 on CPU")
    training.add_argument("--cudnn-enabled", action="store_true", help="enable cudnn")
    training.add_argument("--cudnn-benchmark", action="store_true", help="run cudnn benchmark")
    training.add_argument("--disable-uniform-initialize-bn-weight", action="store_true",
                          help="do not re-initialise BatchNorm weights uniform in [0, 1)")
    training.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    training.add_argument("--val-metrics", type=COUNT0, default=0,
                          help="each epoch, score free-running synthesis of this many validation items with the "
                               "model's quality metrics (Tacotron 2: attention diagonality, focus, stop ratio, MCD)")
    training.add_argument("--epochs-per-val-metrics", type=COUNT, default=1,
                          help="with --val-metrics, score them every N epochs (from epoch 0) instead of every epoch: "
                               "free-running synthesis is most of a small model's validation time")
    training.add_argument("--max-minutes", type=NONNEG, default=0,
                          help="stop (with a checkpoint) after this many minutes of training (0: no limit)")
    training.add_argument("--num-workers", type=COUNT0, default=None,
                          help="DataLoader worker processes (default: 1 on a GPU, as NVIDIA's train.py loads data, "
                               "so that loading overlaps the step; 0 on a CPU, whose cores the step uses)")
    training.add_argument("--max-nonfinite-steps", type=COUNT, default=20,
                          help="stop when this many consecutive steps have a non-finite loss")
    training.add_argument("--log-interval", type=COUNT, default=10,
                          help="read the steps' loss and gradient norm on the host every this many steps (one "
                               "line per step is still logged; fewer reads keep the GPU busy)")
    training.add_argument("--max-steps-per-epoch", type=COUNT0, default=0, help="cut epochs short (benchmarks, tests)")
    training.add_argument("--check-replicas", action="store_true",
                          help="after every step verify that all ranks hold identical weights (debugging)")
    training.add_argument("--force-distributed", action="store_true",
                          help="make a process group and DDP even for one process (runs the multi-GPU code path, "
                               "NCCL collectives included, on one GPU)")
    training.add_argument("--dist-timeout", type=POSITIVE, default=600.0,
                          help="seconds a rank waits for the others before failing")

    optimization = parser.add_argument_group("optimization setup")
    optimization.add_argument("-lr", "--learning-rate", type=POSITIVE, required=True, help="learning rate")
    optimization.add_argument("--weight-decay", type=NONNEG, default=1e-6, help="weight decay")
    optimization.add_argument("--grad-clip-thresh", type=POSITIVE, default=1.0, help="gradient norm clipping threshold")
    optimization.add_argument("-bs", "--batch-size", type=COUNT, required=True, help="batch size per process")

    dataset = parser.add_argument_group("dataset parameters")
    dataset.add_argument("--load-mel-from-disk", action="store_true",
                         help="read mels (torch tensors) from the paths in the filelists instead of wavs")
    dataset.add_argument("--bucket-batches", action="store_true",
                         help="batch items of similar length together (less padding; Tacotron 2)")
    dataset.add_argument("--data-checks", choices=["lenient", "strict", "off"], default="lenient",
                         help="content checks of every clip before training (silence, NaN samples, clipping, DC "
                              "offset, edge silence, transcript length): lenient refuses only what cannot train, "
                              "strict refuses every warning too")
    dataset.add_argument("--cache-mels", action="store_true",
                         help="keep computed mels in memory after the first epoch (small corpora)")
    dataset.add_argument("--training-files", default="filelists/ljs_audio_text_train_filelist.txt",
                         type=str, help="training filelist")
    dataset.add_argument("--validation-files", default="filelists/ljs_audio_text_val_filelist.txt",
                         type=str, help="validation filelist ('' for none)")
    dataset.add_argument("--text-cleaners", nargs="*", default=["english_cleaners"], type=str,
                         help="cleaners applied to the transcripts")

    audio = parser.add_argument_group("audio parameters")
    d = AudioConfig()
    audio.add_argument("--max-wav-value", default=d.max_wav_value, type=POSITIVE, help="maximum audio value")
    audio.add_argument("--sampling-rate", default=d.sampling_rate, type=COUNT, help="sampling rate")
    audio.add_argument("--filter-length", default=d.filter_length, type=COUNT, help="filter length")
    audio.add_argument("--hop-length", default=d.hop_length, type=COUNT, help="hop (stride) length")
    audio.add_argument("--win-length", default=d.win_length, type=COUNT, help="window length")
    audio.add_argument("--mel-fmin", default=d.mel_fmin, type=NONNEG, help="minimum mel frequency")
    audio.add_argument("--mel-fmax", default=d.mel_fmax, type=POSITIVE, help="maximum mel frequency")

    if model_name is not None:
        models.model_parser(model_name, parser)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Two phases: find -m (and --config-file), then parse strictly so that a misspelt flag fails."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("-m", "--model-name", default=None)
    pre.add_argument("--config-file", default=None)
    known, _ = pre.parse_known_args(argv)
    model_name = known.model_name if known.model_name in models.MODELS else None
    parser = build_parser(model_name)
    if known.config_file:
        if not os.path.isfile(known.config_file):
            parser.error(f"--config-file {known.config_file}: no such file")
        try:
            defaults = read_config_defaults(known.config_file, parser)
        except ValueError as e:  # not UTF-8, not JSON, unknown keys, values of the wrong kind
            parser.error(str(e))
        parser.set_defaults(**defaults)
        for action in parser._actions:  # values from the config file satisfy required flags
            if action.dest in defaults:
                action.required = False
    args = parser.parse_args(argv)
    if args.num_workers is None:
        args.num_workers = 1 if torch.cuda.is_available() and not args.cpu else 0
    if args.tensorboard:
        try:
            importlib.import_module("torch.utils.tensorboard")
        except ImportError:
            parser.error("--tensorboard needs the tensorboard package, which is not installed: pip install tensorboard")
    if args.warm_start_pull and not args.warm_start:
        parser.error("--warm-start-pull pulls the weights towards the --warm-start checkpoint: give that too "
                     "(also when resuming the fine-tune)")
    if args.lr_decay_minutes is None:
        args.lr_decay_minutes = args.max_minutes
    for flag in DEPRECATED_FLAGS:
        if getattr(args, flag.lstrip("-").replace("-", "_")) is not None:
            warnings.warn(f"{flag} is ignored: {DEPRECATED_FLAGS[flag]}")
    return args
