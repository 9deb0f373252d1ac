"""Train Tacotron 2 or WaveGlow: `python train.py -m Tacotron2|WaveGlow -o OUT -lr LR --epochs N -bs B ...`.

One process, `python -m multiproc train.py ...` (one process per GPU) or `torchrun ... train.py ...`.
The loop knows no model: each model's package (models.py's registry, common/model_package.py) provides flags,
config, dataset, collate, batch-to-device and loss.

Reading order: `main` (the epochs), `build_run` (everything before the first step), `train_epoch` and
`train_step` (the steps), `finish_epoch` (validation, log, checkpoints). In common/training/: checkpoint writing
and resuming in resume.py, collectives in dist_utils.py, AMP in amp.py, signals in preemption.py, the optimizer
step and per-step figures in train_step.py, the data checks before the first step in data_checks.py.
"""
import argparse
import importlib
import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

import models
from common.training import data_checks, dist_utils, resume
from common.training.dist_utils import check_replicas_in_sync
from common.precision import autocast
from common.training.amp import amp_settings, describe_amp
from common.audio import AudioConfig
from common.checkpoint import CheckpointError, remove_partial_writes, unwrap_model
from common.config_file import read_config_defaults
from common.dllog import RunLogger, log_path
from common.cpu.host_memory import keep_freed_memory
from common.model_package import ModelPackage
from common.training.preemption import Preemption
from common.training.run_lock import OutputInUse, RunLock
from common.training.sampler import BucketBatchSampler, ResumableBatchSampler
from common.flag_types import COUNT, COUNT0, SEED, POSITIVE, NONNEG, FRACTION
from common.training.lr_schedule import SCHEDULES, LRSchedule, budget_progress
from common.training.train_step import (PendingSteps, as_log_fields, device_skip_supported, loss_scale, make_adam,
                               optimizer_step)

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
        models.model_parser(model_name, parser, add_help=False)
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
    if args.lr_decay_minutes is None:
        args.lr_decay_minutes = args.max_minutes
    for flag in DEPRECATED_FLAGS:
        if getattr(args, flag.lstrip("-").replace("-", "_")) is not None:
            warnings.warn(f"{flag} is ignored: {DEPRECATED_FLAGS[flag]}")
    return args


class Run(NamedTuple):
    """What a training run is made of, built once by `build_run`."""
    args: argparse.Namespace
    info: dist_utils.DistInfo
    package: ModelPackage  # what the model declares (flags, data, loss, metrics)
    model: torch.nn.Module  # wrapped in DDP under a process group
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: Optional[torch.dtype]  # None: float32
    device_skip: bool  # the optimizer skips non-finite steps on the device (common.training.train_step)
    criterion: Callable
    trainset: Dataset
    valset: Optional[Dataset]
    collate_fn: Callable
    batch_to_device: Callable
    sampler: ResumableBatchSampler
    loader: DataLoader
    logger: RunLogger
    checkpoints: resume.TrainingCheckpoints
    preemption: Preemption
    start_time: float
    schedule: LRSchedule


def lr_schedule(args: argparse.Namespace) -> LRSchedule:
    return LRSchedule(args.learning_rate, args.lr_schedule, args.anneal_steps or (), args.anneal_factor,
                      args.warmup_steps, args.lr_final_factor)


@dataclass
class TrainState:
    """Where the run is; changes every step."""
    epoch: int
    batch: int  # batches of this epoch already trained (a run resumed mid-epoch starts past them)
    iteration: int
    skipped_total: int = 0
    seconds_before: float = 0.0  # training seconds of the runs this one resumed
    clock: float = 0.0  # training seconds so far, agreed by the ranks after the last step (the schedule's clock)
    nonfinite_streak: int = 0
    last_epoch: Dict[str, float] = field(default_factory=dict)  # the last finished epoch's log fields


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    info = dist_utils.init_distributed(cpu=args.cpu, timeout_s=args.dist_timeout, force=args.force_distributed)
    keep_freed_memory(info.device)  # on a CPU: no page faults for the memory each step frees and takes again
    lock = RunLock(args.output)  # taken by the main process once the folder is known to be writable
    try:
        run, state = build_run(args, info, lock)
        stop_reason = train(run, state)
        totals = {k: state.last_epoch[k] for k in ("val_loss", "train_loss", "train_items_per_sec", "val_items_per_sec")
                  if k in state.last_epoch}
        run.logger.log((), {"run_time": time.perf_counter() - run.start_time, **totals,
                            "skipped_steps": state.skipped_total, "iterations": state.iteration})
        run.logger.close()
        # DDP's reducer holds the process group inside reference cycles: left to the interpreter's exit, gloo's
        # threads were torn down mid-finalisation and a rank now and then aborted ("terminate called without an
        # active exception", about 1 run in 20 under load). Free them while the interpreter is whole.
        del run
        dist_utils.cleanup()
    finally:
        lock.release()
    if stop_reason:
        print(f"train.py: stopped: {stop_reason}", file=sys.stderr)
        return 1 if "non-finite" in stop_reason else 0
    return 0


def train(run: "Run", state: "TrainState") -> Optional[str]:
    """The epochs from `state` on; why they stopped early (a signal, the time budget, non-finite losses) or None."""
    try:
        for epoch in range(state.epoch, run.args.epochs):
            state.epoch = epoch
            summary, stop_reason = train_epoch(run, state)
            if stop_reason:
                return stop_reason
            finish_epoch(run, state, summary)
        return None
    finally:
        run.preemption.restore()


def build_run(args: argparse.Namespace, info: dist_utils.DistInfo, lock: RunLock) -> Tuple[Run, TrainState]:
    """Seeds, model, optimizer, checkpoint restore, data, logger: everything before the first step."""
    device = info.device
    torch.backends.cudnn.enabled = args.cudnn_enabled
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 on Ampere and newer
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(args.seed + info.rank)
    np.random.seed(args.seed + info.rank)
    random.seed(args.seed + info.rank)

    model_name = args.model_name
    package = models.package(model_name)
    model_config = package.config_from_args(args)
    model = models.get_model(model_name, model_config, device,
                             uniform_initialize_bn_weight=not args.disable_uniform_initialize_bn_weight)
    if package.prepare_training is not None:
        package.prepare_training(model, args)
    if info.is_main:
        resume.check_output_dir(args.output, model, log_path(args.output, args.log_file))
        try:
            lock.acquire()
        except OutputInUse as e:
            raise SystemExit(f"error: {e}")
        for name in remove_partial_writes(args.output):  # a run killed while writing a checkpoint left these
            print(f"train.py: removed {os.path.join(args.output, name)}, an unfinished checkpoint write of an "
                  "earlier run", file=sys.stderr)
    optimizer = make_adam(model.parameters(), args.learning_rate, args.weight_decay, device)
    amp_dtype, scaler = amp_settings(args.amp_run, device, args.amp_dtype)
    checkpoints = resume.TrainingCheckpoints(args.output, model_name, model_config, info, dict(vars(args)),
                                             models.SIGNATURE_KEYS)
    try:
        position, restored = checkpoints.restore(model, optimizer, scaler, args.checkpoint_path,
                                                 args.resume_from_last, args.warm_start, args.warm_start_ignore)
    except CheckpointError as e:
        raise SystemExit(f"error: {e}")

    try:
        trainset = package.dataset(args.dataset_path, args.training_files, args)
        valset = package.dataset(args.dataset_path, args.validation_files, args) if args.validation_files else None
        resolved = package.resolve_flags(trainset, args) if package.resolve_flags is not None else {}
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    vars(args).update(resolved)
    checkpoints.train_args.update(resolved)  # what the checkpoints record (e.g. the text front end)
    data_checks.check_training_data(args, info, package, [d for d in (trainset, valset) if d is not None])
    collate_fn = package.collate(args)
    if args.bucket_batches and package.item_lengths is not None:
        batches = BucketBatchSampler(package.item_lengths(trainset), args.batch_size, info.world_size, info.rank,
                                     seed=args.seed)
    else:
        batches = BatchSampler(DistributedSampler(trainset, num_replicas=info.world_size, rank=info.rank,
                                                  shuffle=True, seed=args.seed, drop_last=True),
                               args.batch_size, drop_last=True)
    sampler = ResumableBatchSampler(batches)
    loader = DataLoader(trainset, num_workers=args.num_workers, collate_fn=collate_fn, batch_sampler=sampler,
                        pin_memory=device.type == "cuda",
                        # workers live across epochs (so do their --cache-mels caches), unless the
                        # dataset takes a per-epoch seed (WaveGlow's segments) that workers would miss
                        persistent_workers=args.num_workers > 0 and not package.dataset_per_epoch,
                        generator=torch.Generator().manual_seed(args.seed))  # keeps the global RNG untouched
    if len(loader) == 0:
        raise SystemExit(f"error: {args.training_files}: {len(trainset)} items make no batch of "
                         f"{args.batch_size} on {info.world_size} process(es); lower --batch-size")

    resumed = position.epoch > 0 or position.iteration > 0  # its log goes on in the same file
    logger = RunLogger(log_path(args.output, args.log_file), enabled=info.is_main, append=resumed,
                       tensorboard_dir=os.path.join(args.output, "tensorboard") if args.tensorboard else None)
    logger.parameters({**vars(args), "model_name": f"{model_name}_PyT", "world_size": info.world_size})
    logger.info(describe_amp(args.amp_run, device, amp_dtype))
    if restored:
        logger.info(restored)
    if info.distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    run = Run(args, info, package, model, optimizer, scaler, amp_dtype, device_skip_supported(optimizer),
              package.loss(args), trainset, valset, collate_fn, package.batch_to_device, sampler, loader, logger,
              checkpoints, Preemption(), time.perf_counter(), lr_schedule(args))
    return run, TrainState(position.epoch, position.batch, position.iteration, seconds_before=position.seconds,
                           clock=position.seconds)


def train_step(run: Run, batch, iteration: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimizer step; (loss, gradient norm, non-finite flag), all 0-d tensors left on the device."""
    run.optimizer.zero_grad(set_to_none=True)
    if run.package.loss_per_iteration:  # a loss with a schedule (guided attention)
        run.criterion.set_iteration(iteration)
    with autocast(run.info.device, run.amp_dtype):
        loss = run.criterion(run.model(batch.x), batch.y)
    run.scaler.scale(loss).backward()
    run.scaler.unscale_(run.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.args.grad_clip_thresh)
    # 1 on every rank when any rank's loss or gradient is not finite (0 or 1: fused Adam subtracts the
    # flag from its step counts)
    bad = run.info.all_reduce_max((~(torch.isfinite(grad_norm) & torch.isfinite(loss.detach())))
                                  .float().reshape(1))[0]
    optimizer_step(run.optimizer, run.scaler, bad, run.device_skip)
    return loss, grad_norm, bad


def train_epoch(run: Run, state: TrainState) -> Tuple[Dict[str, float], Optional[str]]:
    """The epoch's steps from `state.batch` on; (epoch summary, reason to stop or None)."""
    args, epoch = run.args, state.epoch
    run.sampler.set_epoch(epoch)
    run.loader.generator.manual_seed(args.seed + epoch)
    if run.package.dataset_per_epoch:
        run.trainset.set_epoch(epoch)
    run.model.train()
    start = time.perf_counter()
    loss_sum, items, steps, skipped = 0.0, 0, 0, 0
    n_batches = min(len(run.loader), args.max_steps_per_epoch or len(run.loader))
    progress = tqdm(total=n_batches, initial=state.batch, desc=f"epoch {epoch}", disable=not run.info.is_main,
                    leave=False, file=sys.stdout)
    pending = PendingSteps()
    run.sampler.skip = state.batch  # batches trained before an interruption: the loader does not even load them
    stop_reason = None
    for i, raw in enumerate(run.loader, start=state.batch):
        if i >= n_batches:
            break
        batch = run.batch_to_device(raw, run.info.device)
        lr = set_lr(run, state, epoch, n_batches)
        loss, grad_norm, bad = train_step(run, batch, state.iteration)
        state.iteration += 1
        if args.check_replicas:
            check_replicas_in_sync(run.model, run.info, state.iteration)
        pending.add(epoch, i, lr, loss, grad_norm, bad, batch.n_items, loss_scale(run.scaler, run.info.device))
        progress.update(1)
        due_checkpoint = bool(args.iters_per_checkpoint) and state.iteration % args.iters_per_checkpoint == 0
        if not (len(pending) >= args.log_interval or due_checkpoint or i + 1 == n_batches):
            continue
        for step in pending.flush(run.info):  # the one host read of these steps' figures
            finite = step.finite
            loss_sum, steps = loss_sum + (step.loss if finite else 0.0), steps + finite
            skipped, state.skipped_total = skipped + (not finite), state.skipped_total + (not finite)
            state.nonfinite_streak = 0 if finite else state.nonfinite_streak + 1
            items += step.items
            run.logger.log((step.epoch, step.batch), as_log_fields(step, state.skipped_total))
            progress.set_postfix(loss=f"{step.loss:.4f}", refresh=False)
        if state.nonfinite_streak >= args.max_nonfinite_steps:
            stop_reason = (f"{state.nonfinite_streak} consecutive steps with a non-finite loss or gradient: "
                           "stopping instead of training on garbage (try without --amp-run, a lower "
                           "learning rate, or check the data)")
            break
        time_up = bool(args.max_minutes) and time.perf_counter() - run.start_time > 60 * args.max_minutes
        preempted, state.clock = run.preemption.requested(run.info, time_up, trained_seconds(run, state))
        if preempted or due_checkpoint:
            run.checkpoints.save(run.model, run.optimizer, run.scaler, completed_epoch=epoch - 1,
                                 resume_at=resume.Position(epoch, i + 1, state.iteration, state.clock),
                                 numbered=False)
            pending.restart_clock()
        if preempted:
            why = (f"signal {run.preemption.signal}" if run.preemption.signal is not None
                   else f"--max-minutes {args.max_minutes} reached")
            stop_reason = f"{why}: saved {run.checkpoints.last_path}; resume with --resume-from-last"
            break
    progress.close()
    seconds = time.perf_counter() - start
    # NVIDIA's per-epoch names: the step [epoch] tells these from the per-iteration ones. An epoch resumed after
    # its last batch trained nothing here: it logs no loss rather than a 0 that was never computed
    trained = {"train_loss": loss_sum / steps, "train_items_per_sec": items / seconds} if steps else {}
    return {**trained, "train_epoch_time": seconds, "skipped_steps": skipped}, stop_reason


def trained_seconds(run: Run, state: TrainState) -> float:
    """Training time so far, the runs this one resumed included."""
    return state.seconds_before + time.perf_counter() - run.start_time


def set_lr(run: Run, state: TrainState, epoch: int, batches_per_epoch: int) -> float:
    """Set and return the rate of the next step, from the clock the ranks agreed on after the previous one (their
    own clocks differ by milliseconds; replicas must take the same rate)."""
    args = run.args
    progress = budget_progress(state.clock, args.lr_decay_minutes, state.iteration, args.epochs * batches_per_epoch)
    lr = run.schedule.at(epoch, state.iteration, progress)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    return lr


def finish_epoch(run: Run, state: TrainState, summary: Dict[str, float]) -> None:
    """Validation (loss, and with --val-metrics the model's quality metrics), the epoch's log line, checkpoints."""
    args, epoch = run.args, state.epoch
    if run.valset is not None:
        summary["val_loss"], summary["val_items_per_sec"] = validate(run, epoch, state.iteration)
        if not math.isfinite(summary["val_loss"]) and run.info.is_main:
            print(f"\n{'!' * 78}\nWARNING: epoch {epoch}: the validation loss is {summary['val_loss']}: the model "
                  f"produces non-finite outputs on {args.validation_files}.\nTraining goes on, but check the data "
                  f"(python -m scripts.check_dataset) and the learning rate.\n{'!' * 78}", file=sys.stderr, flush=True)
        scorer = run.package.quality_metrics
        if args.val_metrics and scorer is not None and run.info.is_main:
            values, figures = scorer(unwrap_model(run.model), run.valset, args.val_metrics)
            summary.update(values)
            run.logger.figures(figures)
            run.model.train()
    run.logger.log((epoch,), summary, echo=True)
    state.last_epoch = summary
    state.batch = 0
    run.checkpoints.save(run.model, run.optimizer, run.scaler, completed_epoch=epoch,
                         resume_at=resume.Position(epoch + 1, 0, state.iteration, trained_seconds(run, state)),
                         numbered=epoch % args.epochs_per_checkpoint == 0 or epoch == args.epochs - 1)


@torch.no_grad()
def validate(run: Run, epoch: int, iteration: int) -> Tuple[float, float]:
    """(mean validation loss over the whole validation set, averaged over ranks; validation items per second).

    The items per second are NVIDIA's: each batch's real items (mel frames or samples, summed over ranks) over its
    wall time, logged per batch at step (epoch, iteration, batch), and their mean over the batches."""
    model, info = run.model, run.info
    was_training = model.training
    model.eval()
    sampler = DistributedSampler(run.valset, num_replicas=info.world_size, rank=info.rank, shuffle=False)
    loader = DataLoader(run.valset, batch_size=run.args.batch_size, sampler=sampler, collate_fn=run.collate_fn,
                        num_workers=run.args.num_workers)
    total = torch.zeros(2, device=info.device)  # (sum of batch losses, batches), summed on the device
    rates = []
    for i, raw in enumerate(loader):
        start = time.perf_counter()
        batch = run.batch_to_device(raw, info.device)
        with autocast(info.device, run.amp_dtype):
            loss = run.criterion(model(batch.x), batch.y)
        total[0] += loss.detach().float()
        total[1] += 1
        items = info.all_reduce_sum(batch.n_items.detach().float().reshape(1)).item()  # waits for the batch
        rates.append(items / (time.perf_counter() - start))
        run.logger.log((epoch, iteration, i), {"val_items_per_sec": rates[-1]})
    total = info.all_reduce_sum(total)
    model.train(was_training)
    return (total[0] / total[1].clamp_min(1)).item(), sum(rates) / max(len(rates), 1)


if __name__ == "__main__":
    sys.exit(main())
