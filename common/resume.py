"""Which checkpoint a training run starts from, decided once for all ranks, and read on every rank.

Only global rank 0 writes checkpoints. On several machines without shared storage the other nodes
have none: rank 0's disk decides whether there is one to resume from, and when some rank cannot
read the file itself, rank 0 reads it and sends it (through the process group).
"""
import os
from typing import Any, Callable, Dict

from common.checkpoint import CheckpointError, load_checkpoint_file
from common.dist_utils import DistInfo


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
