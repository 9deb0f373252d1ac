"""Train Tacotron 2 or WaveGlow: `python train.py -m Tacotron2|WaveGlow -o OUT -lr LR --epochs N -bs B ...`.

One process, `python -m multiproc train.py ...` (one process per GPU) or `torchrun ... train.py ...`.
The loop knows no model: each model's package (models.py's registry, common/model_package.py) provides flags,
config, dataset, collate, batch-to-device and loss.

Reading order: `main` (the epochs), `build_run` (everything before the first step), `train_epoch` and
`train_step` (the steps), `finish_epoch` (validation, log, checkpoints). In common/training/: the flags in
flags.py, checkpoint writing and resuming in resume.py, collectives in dist_utils.py, AMP in amp.py, signals in
preemption.py, the learning rate in lr_schedule.py, the optimizer step and per-step figures in train_step.py, the
data checks before the first step in data_checks.py.
"""
import argparse
import math
import os
import random
import sys
import time
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
from common.checkpoint import CheckpointError, remove_partial_writes, state_dict_from_checkpoint, unwrap_model
from common.training.flags import parse_args
from common.dllog import RunLogger, log_path
from common.cpu.host_memory import keep_freed_memory
from common.model_package import ModelPackage
from common.training.preemption import Preemption
from common.training.anchor import WarmStartAnchor
from common.training.lr_scale import ScaledSteps, parameters_under
from common.training.warm_start import adopt_checkpoint_shape
from common.training.run_lock import OutputInUse, RunLock
from common.training.sampler import BucketBatchSampler, ResumableBatchSampler
from common.training.lr_schedule import LRSchedule, budget_progress
from common.training.train_step import (PendingSteps, as_log_fields, device_skip_supported, loss_scale, make_adam,
                               optimizer_step)

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
    anchor: Optional[WarmStartAnchor]  # --warm-start-pull: the weights' pull towards the warm start's
    scaled: Optional[ScaledSteps]  # --lr-scale: weights that step at a fraction of the rate


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
    health_warned: bool = False  # the model's health warning was printed (not again in this run)


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
    seed_and_set_backends(args, info)
    model_name = args.model_name
    package = models.package(model_name)
    warm_ckpt, adopted = None, []
    if args.warm_start:  # the model to fine-tune is the checkpoint's: its shape flags replace this run's
        try:
            warm_ckpt = resume.load_on_every_rank(info, args.warm_start)
        except CheckpointError as e:
            raise SystemExit(f"error: {e}")
        adopted = adopt_checkpoint_shape(package, args, warm_ckpt, args.warm_start, args.warm_start_ignore)
    model_config = package.config_from_args(args)
    model = models.get_model(model_name, model_config, device,
                             uniform_initialize_bn_weight=not args.disable_uniform_initialize_bn_weight)
    if package.prepare_training is not None:
        package.prepare_training(model, args)
    frozen = freeze(model, args.freeze)
    scaled = ScaledSteps(model, args.lr_scale) if args.lr_scale else None
    if info.is_main:
        claim_output(args, model, lock)
    # every parameter, frozen or not, so that the optimizer's layout (and a checkpoint's) does not depend on --freeze
    optimizer = make_adam(model.parameters(), args.learning_rate, args.weight_decay, device)
    amp_dtype, scaler = amp_settings(args.amp_run, device, args.amp_dtype)
    checkpoints = resume.TrainingCheckpoints(args.output, model_name, model_config, info, dict(vars(args)),
                                             models.SIGNATURE_KEYS)
    try:
        position, restored = checkpoints.restore(model, optimizer, scaler, args.checkpoint_path,
                                                 args.resume_from_last, args.warm_start, args.warm_start_ignore,
                                                 warm_ckpt)
    except CheckpointError as e:
        raise SystemExit(f"error: {e}")
    anchor = None
    if args.warm_start_pull:  # towards the checkpoint's own weights, also when this run resumes the fine-tune
        start = {k: v for k, v in state_dict_from_checkpoint(warm_ckpt, args.warm_start).items()
                 if not k.startswith(tuple(args.warm_start_ignore))}
        anchor = WarmStartAnchor(model, start, args.warm_start_pull)

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
    sampler, loader = training_loader(args, info, package, trainset, collate_fn)
    resumed = position.epoch > 0 or position.iteration > 0  # its log goes on in the same file
    logger = RunLogger(log_path(args.output, args.log_file), enabled=info.is_main, append=resumed,
                       tensorboard_dir=os.path.join(args.output, "tensorboard") if args.tensorboard else None)
    logger.parameters({**vars(args), "model_name": f"{model_name}_PyT", "world_size": info.world_size})
    logger.info(describe_amp(args.amp_run, device, amp_dtype))
    if restored:
        logger.info(restored)
    if adopted:
        logger.info(f"--warm-start {args.warm_start}: the model's shape from the checkpoint: {'; '.join(adopted)}")
    if anchor is not None:
        logger.info(f"--warm-start-pull {args.warm_start_pull:g}: {anchor.n_weights:,} weights "
                    f"pulled towards {args.warm_start}'s after every step")
    if scaled is not None:
        logger.info(f"--lr-scale: {scaled.n_weights:,} weights step at "
                    f"{', '.join(f'{factor:g}x the rate ({prefix})' for prefix, factor in args.lr_scale)}")
    if frozen:
        logger.info(f"--freeze: {frozen:,} of {sum(p.numel() for p in model.parameters()):,} weights stay as loaded")
    if info.distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    run = Run(args, info, package, model, optimizer, scaler, amp_dtype, device_skip_supported(optimizer),
              package.loss(args), trainset, valset, collate_fn, package.batch_to_device, sampler, loader, logger,
              checkpoints, Preemption(), time.perf_counter(), lr_schedule(args), anchor, scaled)
    return run, TrainState(position.epoch, position.batch, position.iteration, seconds_before=position.seconds,
                           clock=position.seconds)


def freeze(model: torch.nn.Module, prefixes: Sequence[str]) -> int:
    """Stop the gradients of the parameters whose state-dict names start with one of `prefixes`; returns how many
    weights that froze. A prefix that names no parameter is refused, listing the model's top-level modules."""
    count = 0
    for prefix in prefixes:
        for p in parameters_under(model, prefix, f"--freeze {prefix}"):
            count += p.numel() * p.requires_grad
            p.requires_grad_(False)
    return count


def seed_and_set_backends(args: argparse.Namespace, info: dist_utils.DistInfo) -> None:
    """Each rank's seeds, and cuDNN's and TF32's switches."""
    torch.backends.cudnn.enabled = args.cudnn_enabled
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if info.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 on Ampere and newer
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(args.seed + info.rank)
    np.random.seed(args.seed + info.rank)
    random.seed(args.seed + info.rank)


def claim_output(args: argparse.Namespace, model: torch.nn.Module, lock: RunLock) -> None:
    """The main process's hold on the output folder: writable and roomy enough, locked against a second run,
    cleared of the temporary files a run killed while writing a checkpoint left."""
    resume.check_output_dir(args.output, model, log_path(args.output, args.log_file))
    try:
        lock.acquire()
    except OutputInUse as e:
        raise SystemExit(f"error: {e}")
    for name in remove_partial_writes(args.output):
        print(f"train.py: removed {os.path.join(args.output, name)}, an unfinished checkpoint write of an "
              "earlier run", file=sys.stderr)


def training_loader(args: argparse.Namespace, info: dist_utils.DistInfo, package: ModelPackage, trainset: Dataset,
                    collate_fn: Callable) -> Tuple[ResumableBatchSampler, DataLoader]:
    """This rank's batches of the training set (shuffled per epoch, or length-bucketed), resumable mid-epoch."""
    if args.bucket_batches and package.item_lengths is not None:
        batches = BucketBatchSampler(package.item_lengths(trainset), args.batch_size, info.world_size, info.rank,
                                     seed=args.seed)
    else:
        batches = BatchSampler(DistributedSampler(trainset, num_replicas=info.world_size, rank=info.rank,
                                                  shuffle=True, seed=args.seed, drop_last=True),
                               args.batch_size, drop_last=True)
    sampler = ResumableBatchSampler(batches)
    loader = DataLoader(trainset, num_workers=args.num_workers, collate_fn=collate_fn, batch_sampler=sampler,
                        pin_memory=info.device.type == "cuda",
                        # workers live across epochs (so do their --cache-mels caches), unless the
                        # dataset takes a per-epoch seed (WaveGlow's segments) that workers would miss
                        persistent_workers=args.num_workers > 0 and not package.dataset_per_epoch,
                        generator=torch.Generator().manual_seed(args.seed))  # keeps the global RNG untouched
    if len(loader) == 0:
        raise SystemExit(f"error: {args.training_files}: {len(trainset)} items make no batch of "
                         f"{args.batch_size} on {info.world_size} process(es); lower --batch-size")
    return sampler, loader


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
    if run.scaled is not None:
        run.scaled.before()
    optimizer_step(run.optimizer, run.scaler, bad, run.device_skip)
    if run.scaled is not None:
        run.scaled.after()
    if run.anchor is not None:
        run.anchor.pull(run.optimizer.param_groups[0]["lr"], bad)
    return loss, grad_norm, bad


@dataclass
class EpochTally:
    """The epoch's steps as read on the host: what its log line reports."""
    loss_sum: float = 0.0
    steps: int = 0  # with a finite loss
    skipped: int = 0
    items: int = 0

    def add(self, step, state: TrainState) -> None:
        self.loss_sum += step.loss if step.finite else 0.0
        self.steps += step.finite
        self.skipped += not step.finite
        self.items += step.items
        state.skipped_total += not step.finite
        state.nonfinite_streak = 0 if step.finite else state.nonfinite_streak + 1

    def summary(self, seconds: float) -> Dict[str, float]:
        """NVIDIA's per-epoch names (the step [epoch] tells them from the per-iteration ones). An epoch resumed
        after its last batch trained nothing here: it logs no loss rather than a 0 that was never computed."""
        trained = {"train_loss": self.loss_sum / self.steps, "train_items_per_sec": self.items / seconds} \
            if self.steps else {}
        return {**trained, "train_epoch_time": seconds, "skipped_steps": self.skipped}


def train_epoch(run: Run, state: TrainState) -> Tuple[Dict[str, float], Optional[str]]:
    """The epoch's steps from `state.batch` on; (epoch summary, reason to stop or None)."""
    args, epoch = run.args, state.epoch
    run.sampler.set_epoch(epoch)
    run.loader.generator.manual_seed(args.seed + epoch)
    if run.package.dataset_per_epoch:
        run.trainset.set_epoch(epoch)
    run.model.train()
    start = time.perf_counter()
    tally = EpochTally()
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
            tally.add(step, state)
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
    return tally.summary(time.perf_counter() - start), stop_reason


def trained_seconds(run: Run, state: TrainState) -> float:
    """Training time so far, the runs this one resumed included."""
    return state.seconds_before + time.perf_counter() - run.start_time


def set_lr(run: Run, state: TrainState, epoch: int, batches_per_epoch: int) -> float:
    """Set and return the rate of the next step, from the clock the ranks last agreed on (at the last read of the
    steps' figures, every --log-interval steps: their own clocks differ by milliseconds, and replicas must take
    the same rate)."""
    args = run.args
    progress = budget_progress(state.clock, args.lr_decay_minutes, state.iteration, args.epochs * batches_per_epoch)
    lr = run.schedule.at(epoch, state.iteration, progress)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    return lr


def warn_loudly(epoch: int, message: str) -> None:
    """A warning between rows of '!' on stderr, where the progress bars do not bury it; training goes on."""
    print(f"\n{'!' * 78}\nWARNING: epoch {epoch}: {message}\n{'!' * 78}", file=sys.stderr, flush=True)


def finish_epoch(run: Run, state: TrainState, summary: Dict[str, float]) -> None:
    """Validation (loss, and with --val-metrics the model's quality metrics), the epoch's log line, checkpoints."""
    args, epoch = run.args, state.epoch
    if run.valset is not None:
        summary["val_loss"], summary["val_items_per_sec"] = validate(run, epoch, state.iteration)
        if not math.isfinite(summary["val_loss"]) and run.info.is_main:
            warn_loudly(epoch, f"the validation loss is {summary['val_loss']}: the model produces non-finite "
                               f"outputs on {args.validation_files}.\nTraining goes on, but check the data "
                               f"(python -m scripts.check_dataset) and the learning rate.")
        if run.package.health is not None and run.info.is_main:
            values, problems = run.package.health(unwrap_model(run.model), run.valset)
            summary.update(values)
            for problem in problems if not state.health_warned else ():  # once a run: the log keeps the figure
                warn_loudly(epoch, problem)
            state.health_warned = state.health_warned or bool(problems)
        scorer = run.package.quality_metrics
        if args.val_metrics and scorer is not None and run.info.is_main and epoch % args.epochs_per_val_metrics == 0:
            values, figures = scorer(unwrap_model(run.model), run.valset, args.val_metrics)
            summary.update(values)
            run.logger.figures(figures)
            run.model.train()
    if run.anchor is not None:
        summary["warm_start_distance"] = run.anchor.distance()
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
