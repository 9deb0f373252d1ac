"""A training run's checkpoints: which one it starts from (decided once for all ranks, read on every rank),
and writing them.

Only global rank 0 writes checkpoints. On several machines without shared storage the other nodes
have none: rank 0's disk decides whether there is one to resume from, and when some rank cannot
read the file itself, rank 0 reads it and sends it (through the process group).
"""
import errno
import os
import shutil
import warnings
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import torch

from common.audio import AudioConfig
from common.checkpoint import (CheckpointError, atomic_link, check_model_kind, load_checkpoint_file,
                               load_model_weights, save_training_checkpoint, state_dict_from_checkpoint)
from common.output import OutputError, writable_file, writable_folder
from common.training.dist_utils import DistInfo
from common.training.rng import checkpoint_rng_states, restore_rng_states, rng_states
from common.training.train_step import restore_fused


def resume_path(info: DistInfo, checkpoint_path: str, last_path: str, resume_from_last: bool) -> str:
    """The checkpoint to resume from ('' for none): --checkpoint-path, else the last one when asked for
    and rank 0 has it. Every rank gets rank 0's answer."""
    path = checkpoint_path or (last_path if resume_from_last and os.path.exists(last_path) else "")
    return info.broadcast_object(path)


def load_on_every_rank(info: DistInfo, path: str,
                       load: Callable[[str], Dict[str, Any]] = load_checkpoint_file) -> Dict[str, Any]:
    """`load(path)` on every rank: from its own disk when every rank has the file, else rank 0's copy."""
    if all(info.all_gather_object(os.path.isfile(path))):
        return load(path)
    payload = None
    if info.is_main:
        try:
            payload = ("ok", load(path))
        except CheckpointError as e:
            payload = ("error", str(e))
    status, value = info.broadcast_object(payload)
    if status == "error":
        raise CheckpointError(value)
    return value


def load_resume_checkpoint(path: str, model_name: str) -> Dict[str, Any]:
    """A checkpoint that can resume `model_name` training (optimizer and epoch present)."""
    ckpt = load_checkpoint_file(path)
    missing = [k for k in ("optimizer", "epoch") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: cannot resume: the checkpoint holds no {' or '.join(missing)} "
                              "(published checkpoints carry weights only). Use --warm-start "
                              f"{path} to fine-tune from its weights with a fresh optimizer.")
    if ckpt.get("model_name", model_name) != model_name:
        raise CheckpointError(f"{path}: a {ckpt['model_name']} checkpoint cannot resume {model_name} training")
    return ckpt


class Position(NamedTuple):
    """Where training goes on from."""
    epoch: int  # the next epoch to train
    batch: int  # batches of that epoch already trained (mid-epoch checkpoints)
    iteration: int  # optimizer steps taken so far
    seconds: float = 0.0  # training time so far (runs resumed included): a time-budgeted schedule's clock


def audio_mismatches(ckpt: Dict[str, Any], train_args: Dict[str, Any], path: str) -> List[str]:
    """Where the audio and mel settings of a warm start's checkpoint differ from this run's: a model fine-tuned on
    mels of another sample rate, hop or band learns them from nothing again. Checkpoints without their training
    flags (NVIDIA's published ones) are taken to have the reference's defaults, which is what they were trained
    with."""
    trained = ckpt.get("train_args") or {}
    assumed = "" if trained else " (no training flags in the checkpoint: the reference's defaults assumed)"
    return [f"--warm-start {path}: trained with {name} {then}, this run has {now}{assumed}: the model will have to "
            f"learn these mels anew (resample the corpus, or pass --{name.replace('_', '-')} {then})"
            for name, then, now in AudioConfig.from_train_args(trained).differences(
                AudioConfig.from_train_args(train_args))]


EPOCH_SHAPE = ("batch_size", "training_files", "seed", "bucket_batches", "max_steps_per_epoch")  # what orders
# an epoch's batches: the batches a mid-epoch checkpoint says are done are only those same batches under these


def check_epoch_shape(ckpt: Dict[str, Any], path: str, train_args: Dict[str, Any], world_size: int,
                      position: Position) -> None:
    """A checkpoint written in the middle of an epoch resumes it past the batches already trained; under another
    batch size (or list, seed, process count) those are other batches, and the samples not yet seen cannot be
    told apart: refuse, naming the flag and both values (the epoch boundary is free to change them)."""
    then = ckpt.get("train_args") or {}
    changed = [(f"--{key.replace('_', '-')}", then[key], train_args.get(key)) for key in EPOCH_SHAPE
               if key in then and then[key] != train_args.get(key)]
    ranks = len(ckpt.get("rank_rng_states") or []) or world_size
    if ranks != world_size:
        changed.append(("the number of processes", ranks, world_size))
    if changed:
        what = "; ".join(f"{flag} was {a!r}, now {b!r}" for flag, a, b in changed)
        raise CheckpointError(f"{path}: written in the middle of epoch {position.epoch} (after {position.batch} "
                              f"batches), and this run orders that epoch's batches differently: {what}. Resume with "
                              "the same settings to finish the epoch; they can change at the next epoch boundary "
                              "(the numbered checkpoint of the last whole epoch resumes with any of them)")


class TrainingCheckpoints:
    """A run's checkpoints: `checkpoint_<Model>_last.pt` (and `_<epoch>.pt`) in the output folder, written by
    global rank 0 with every rank's RNG states, and read back on every rank to resume or warm-start."""

    def __init__(self, output: str, model_name: str, config: Dict[str, Any], info: DistInfo,
                 train_args: Dict[str, Any], signature_keys: Mapping[str, str]) -> None:
        self.signature_keys = signature_keys  # model name -> a key only its weights have (models.SIGNATURE_KEYS)
        self.output = output
        self.model_name = model_name
        self.config = config
        self.info = info
        self.train_args = train_args

    @property
    def last_path(self) -> str:
        return os.path.join(self.output, f"checkpoint_{self.model_name}_last.pt")

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                checkpoint_path: str, resume_from_last: bool, warm_start: str = "",
                warm_start_ignore: Sequence[str] = (), warm_ckpt: Optional[Dict[str, Any]] = None
                ) -> Tuple[Position, str]:
        """Load a resume checkpoint (model, optimizer, scaler, RNG) or warm-start weights (`warm_ckpt`: the file
        `warm_start` as train.py loaded it to read its shape); (position, what was done, '' for a fresh start).
        Raises CheckpointError."""
        path = resume_path(self.info, checkpoint_path, self.last_path, resume_from_last)
        device = self.info.device
        if path:
            ckpt = load_on_every_rank(self.info, path, lambda p: load_resume_checkpoint(p, self.model_name))
            if ckpt.get("config") and ckpt["config"] != self.config:
                raise CheckpointError(f"{path}: model config differs from the flags: checkpoint "
                                      f"{ckpt['config']} vs flags {self.config}")
            self._load_weights(model, ckpt, path)
            optimizer.load_state_dict(ckpt["optimizer"])
            restore_fused(optimizer, device)
            if ckpt.get("scaler") and scaler.is_enabled():  # an fp32 run saves an empty scaler state
                scaler.load_state_dict(ckpt["scaler"])
            restore_rng_states(ckpt, self.info.rank, device)
            position = Position(ckpt.get("resume_epoch", ckpt["epoch"] + 1), ckpt.get("resume_batch", 0),
                                ckpt.get("iteration", 0), float(ckpt.get("trained_seconds", 0.0)))
            if position.batch > 0:
                check_epoch_shape(ckpt, path, self.train_args, self.info.world_size, position)
            return position, f"resumed from {path}: epoch {position.epoch}, batch {position.batch}"
        if warm_ckpt is not None:
            self._load_weights(model, warm_ckpt, warm_start, ignore=warm_start_ignore)
            for message in audio_mismatches(warm_ckpt, self.train_args, warm_start):
                warnings.warn(message)
            return Position(0, 0, 0), f"warm start from {warm_start}"
        return Position(0, 0, 0), ""

    def _load_weights(self, model: torch.nn.Module, ckpt: Dict[str, Any], path: str, ignore: Sequence[str] = ()):
        state_dict = state_dict_from_checkpoint(ckpt, path)
        check_model_kind(state_dict, self.model_name, path, self.signature_keys)
        load_model_weights(model, state_dict, path, ignore=ignore)

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, *,
             completed_epoch: int, resume_at: Position, numbered: bool) -> None:
        """Rank 0 writes the last checkpoint (and the numbered one); every rank gives its RNG states."""
        states = checkpoint_rng_states(self.info.all_gather_object(rng_states(self.info.device)))
        states.update({"resume_epoch": resume_at.epoch, "resume_batch": resume_at.batch,
                       "trained_seconds": resume_at.seconds})
        if not self.info.is_main:
            return
        kwargs = dict(model=model, model_name=self.model_name, config=self.config, epoch=completed_epoch,
                      iteration=resume_at.iteration, optimizer=optimizer, scaler=scaler, rng_states=states,
                      train_args=self.train_args)
        if numbered:
            numbered_path = os.path.join(self.output, f"checkpoint_{self.model_name}_{completed_epoch}.pt")
            self._write(numbered_path, lambda: save_training_checkpoint(numbered_path, **kwargs))
            if self._write(self.last_path, lambda: atomic_link(numbered_path, self.last_path)):
                return  # the last checkpoint is the numbered one's second name (NVIDIA's is a symlink to it)
        self._write(self.last_path, lambda: save_training_checkpoint(self.last_path, **kwargs))

    def _write(self, path: str, write: Callable[[], Any]) -> Any:
        try:
            return write()
        except OSError as e:
            raise SystemExit(write_failure(path, e, self.last_path)) from e


WRITE_FAILURES = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                  errno.EFBIG: "the file is larger than this system allows (a file-size limit?)",
                  errno.EROFS: "the file system became read-only", errno.EIO: "the disk reported an I/O error"}


def write_failure(path: str, error: OSError, last_path: str) -> str:
    """The message for a checkpoint write that failed part-way: what happened, and that nothing is lost."""
    why = WRITE_FAILURES.get(error.errno, "the write failed")
    kept = last_path if os.path.exists(last_path) else None
    return (f"error: {why} (writing {path}: {error.strerror or error}); nothing was half-written: "
            + (f"the last good checkpoint, {kept}, is intact: free some space (or fix the cause) and resume with "
               "--resume-from-last" if kept else "no checkpoint of this run exists yet"))


def check_output_dir(output: str, model: torch.nn.Module, log_file: str = "") -> None:
    """Fail before training when the output directory (or the log file) cannot be written, or cannot hold
    checkpoints."""
    try:
        writable_folder(output, "-o", make=True)
        if log_file:
            writable_file(log_file, "--log-file")
    except OutputError as e:
        raise SystemExit(f"error: {e}")
    # model + Adam moments, for a numbered checkpoint and the temporary copy of the next one
    need = 2 * 3 * sum(p.numel() * p.element_size() for p in model.parameters())
    free = shutil.disk_usage(output).free
    if free < need:
        raise SystemExit(f"error: {output!r} has {free / 2**20:.0f} MiB free; checkpoints need about "
                         f"{need / 2**20:.0f} MiB")
