"""All checkpoint I/O: the published format, atomic writes, safe loads, key normalisation.

Format (that of NVIDIA's train.py, which published checkpoints follow): a dict with
`state_dict` (model weights, WaveGlow weight-normed convs as `weight_g`/`weight_v`),
`config` (the model's constructor dict), and for resuming `epoch`, `optimizer`, `scaler`
and RNG states. We add `model_name` and `iteration`. Loaders need only `state_dict`
(plus `config` where present) and ignore the rest, so published files load unchanged.
"""
import io
import os
import pickle
import pickletools
import tempfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import torch

from common.audio import AudioConfig

class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used, with the reason and the file named."""


@dataclass(frozen=True)
class ModelCard:
    """What a checkpoint says of its model beyond the weights, for inference to rebuild what the model expects:
    the audio settings of its mels and its training flags (a Tacotron 2's text front end and cleaners are there).
    `train_args` is None for a checkpoint without training flags (NVIDIA's): NVIDIA's defaults hold for it."""
    path: str
    audio: AudioConfig
    train_args: Optional[Dict[str, Any]] = None

    @classmethod
    def of(cls, ckpt: Dict[str, Any], path: str) -> "ModelCard":
        train_args = ckpt.get("train_args") if isinstance(ckpt.get("train_args"), dict) else None
        return cls(path, AudioConfig.from_train_args(train_args), train_args)


def model_card(model: torch.nn.Module) -> ModelCard:
    """The card `models.load_model` attached to a model; a model built in memory has NVIDIA's defaults."""
    card = getattr(model, "card", None)
    return card if isinstance(card, ModelCard) else ModelCard("(a model built in memory)", AudioConfig())


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside DistributedDataParallel or torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


PARTIAL_SUFFIX = ".tmp"  # atomic_save's temporary files: `<name>.<random>.tmp` beside the file they become


class _RecordingWriter:
    """A file for torch.save that keeps the first OSError of its writes: torch's zip writer swallows it and
    raises `RuntimeError: [enforce fail at inline_container.cc] unexpected pos ...` instead, which names neither
    the file nor the cause (a full disk, a file-size limit, a dead network mount)."""

    def __init__(self, f) -> None:
        self.f = f
        self.error: Optional[OSError] = None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.f.flush()


def _rename_into_place(tmp: str, path: str) -> None:
    """Rename the finished `tmp` over `path`, then fsync their folder so that the new name survives a crash."""
    os.replace(tmp, path)
    dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """`write(f)` into a temporary file beside `path`, fsync, then rename over it.

    A crash at any moment leaves either the old file or the new one, never a torn one (a killed process leaves
    its temporary file, which `remove_partial_writes` clears). A write that comes up short raises the OSError
    that stopped it, with its errno (ENOSPC, EFBIG, EDQUOT, EIO), after removing the temporary file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=PARTIAL_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _rename_into_place(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:  # a short write names no file: name the one meant
            raise OSError(e.errno, e.strerror, path) from e
        raise


def atomic_save(obj: Any, path: str) -> None:
    """torch.save, atomically (`atomic_write`), streamed to the file."""
    def write(f: BinaryIO) -> None:
        writer = _RecordingWriter(f)
        try:
            torch.save(obj, writer)
        except RuntimeError as e:
            if writer.error is None:
                raise
            raise writer.error from e
    atomic_write(path, write)


def atomic_save_or_exit(obj: Any, path: str) -> None:
    """atomic_save for a command line: a write that fails ends the process naming the file and why."""
    try:
        atomic_save(obj, path)
    except OSError as e:
        raise SystemExit(f"error: cannot write {path} ({e.strerror or e}); nothing was half-written") from e


def atomic_link(source: str, path: str) -> bool:
    """Make `path` a second name of the finished file `source` (a hard link, renamed into place atomically, as
    `atomic_write` does): the same bytes at no cost in disk or time. Every writer here replaces a file by renaming
    a new one over it, never by writing into it, so neither name can change what the other reads. False, with
    nothing changed, where the file system has no hard links: the caller writes the file itself."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f"{os.path.basename(path)}.{os.getpid()}{PARTIAL_SUFFIX}")
    try:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.link(source, tmp)
    except OSError:
        return False
    try:
        _rename_into_place(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return True


def atomic_save_bytes(save: Callable[[BinaryIO], None], path: str) -> None:
    """A writer that cannot be trusted with a file (TorchScript's and ONNX's end the process with `terminate
    called` when a write comes up short) writes into memory; the bytes go to `path` atomically."""
    buffer = io.BytesIO()
    save(buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def remove_partial_writes(folder: str, prefix: str = "checkpoint_") -> List[str]:
    """Delete the temporary files that killed `atomic_save`s left in `folder` (only for files named `prefix`...:
    call it while holding the folder's run lock, when no other process can be writing them); their names."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for name in sorted(names):
        if name.startswith(prefix) and name.endswith(PARTIAL_SUFFIX) and ".pt." in name:
            try:
                os.unlink(os.path.join(folder, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def average_checkpoints(paths: Sequence[str]) -> Dict[str, Any]:
    """One weights-only checkpoint whose floating tensors are the mean of these checkpoints' (of one run: same
    model, same config); everything else (config, training flags, integer counters) is the last one's. The end of
    a run wanders around a minimum; the mean of its last points lies nearer it, at no training cost."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    sums: Dict[str, torch.Tensor] = {}
    dtypes: Dict[str, torch.dtype] = {}
    last: Dict[str, Any] = {}
    for path in paths:
        last = load_checkpoint_file(path)
        state_dict = state_dict_from_checkpoint(last, path)
        if sums and set(state_dict) != set(sums):
            raise CheckpointError(f"{path}: holds other weights than {paths[0]}: average checkpoints of one run only")
        for key, value in state_dict.items():
            dtypes[key] = value.dtype
            if value.is_floating_point():
                sums[key] = sums[key] + value.double() if key in sums else value.double()
            else:
                sums[key] = value
    state_dict = {k: (v / len(paths)).to(dtypes[k]) if v.is_floating_point() else v for k, v in sums.items()}
    out = {k: last[k] for k in ("model_name", "config", "train_args", "epoch", "iteration") if k in last}
    out["state_dict"] = state_dict
    out["averaged_from"] = [os.path.basename(p) for p in paths]
    return out


def builds_objects(path: str) -> bool:
    """Whether the file is one whole pickle whose instructions import or build Python objects. The safe reader
    names no global for a file written by `pickle.dump` (it stops at the first instruction it lacks, as it does
    on garbage); disassembling the file, which runs nothing, tells the two apart."""
    try:
        with open(path, "rb") as f:
            names = {op.name for op, _, _ in pickletools.genops(f)}
    except Exception:  # not a pickle: torn, or something else entirely
        return False
    return bool(names & {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX"})


def load_checkpoint_file(path: str, map_location: str = "cpu") -> Dict[str, Any]:
    """Read a checkpoint with `weights_only=True`: tensors and plain containers, never code."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e) or "GLOBAL" in str(e) or builds_objects(path):
            raise CheckpointError(f"{path}: refused to load: it holds objects other than tensors and plain "
                                  "containers (e.g. a whole pickled model from NVIDIA's stand-alone waveglow "
                                  "repository, or a file written with pickle rather than torch.save), and "
                                  "unpickling those could run code. If you trust its origin, convert it once: "
                                  f"python -m scripts.convert_checkpoint --trust {path} CONVERTED.pt") from e
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {e}") from e
    except Exception as e:  # torch raises many types for torn files (RuntimeError, KeyError, EOFError, ...)
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(ckpt).__name__}")
    return ckpt


def _rename_weight_norm(key: str) -> str:
    """torch's parametrized weight-norm names -> the published weight_g / weight_v."""
    return (key.replace("parametrizations.weight.original0", "weight_g")
               .replace("parametrizations.weight.original1", "weight_v"))


def normalize_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Strip DDP (`module.`, also `module.1.` from hub files) and torch.compile (`_orig_mod.`) prefixes."""
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.1.", "module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[_rename_weight_norm(key)] = value
    return out


def state_dict_from_checkpoint(ckpt: Dict[str, Any], path: str) -> Dict[str, torch.Tensor]:
    """The normalised model weights of a loaded checkpoint (or of a bare state dict)."""
    if "state_dict" in ckpt:
        state_dict = ckpt["state_dict"]
    elif ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state_dict = ckpt  # a bare state dict
    else:
        raise CheckpointError(f"{path}: no 'state_dict' in checkpoint (keys: {sorted(ckpt)[:10]})")
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: 'state_dict' is a {type(state_dict).__name__}, not a dict")
    return normalize_state_dict(state_dict)


def check_model_kind(state_dict: Dict[str, torch.Tensor], expected_model: str, source: str,
                     signature_keys: Mapping[str, str]) -> None:
    """Raise when the weights clearly belong to another model: `signature_keys` maps each model's name to a
    state-dict key only its weights have (models.SIGNATURE_KEYS)."""
    found = next((name for name, key in signature_keys.items() if key in state_dict), None)
    if found is not None and found != expected_model:
        raise CheckpointError(f"{source}: this is a {found} checkpoint, but a {expected_model} was expected")


def load_model_weights(model: torch.nn.Module, state_dict: Dict[str, torch.Tensor], source: str,
                       ignore: Iterable[str] = ()) -> None:
    """Strictly load weights, with an error naming missing, unexpected and mis-shaped tensors.

    Keys starting with any prefix in `ignore` are skipped on both sides (warm starts that
    replace a layer, e.g. the embedding for a new symbol set).
    """
    model = unwrap_model(model)
    ignore = tuple(ignore)
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(ignore)} if ignore else model.state_dict()
    given = {k: v for k, v in state_dict.items() if not k.startswith(ignore)} if ignore else state_dict
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    mismatched = [f"{k}: checkpoint {tuple(given[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in given and tuple(given[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)):
            if items:
                shown = ", ".join(items[:8]) + (f" ... ({len(items)} in all)" if len(items) > 8 else "")
                parts.append(f"{label}: {shown}")
        raise CheckpointError(f"{source}: weights do not fit the model ({'; '.join(parts)}). "
                              "Is the architecture (e.g. --wn-channels, --n-frames-per-step) the one it was trained with?")
    model.load_state_dict(given, strict=not ignore)


def save_training_checkpoint(path: str, *, model: torch.nn.Module, model_name: str, config: Dict[str, Any],
                             epoch: int, iteration: int, optimizer: Optional[torch.optim.Optimizer] = None,
                             scaler: Optional[Any] = None, rng_states: Optional[Dict[str, Any]] = None,
                             train_args: Optional[Dict[str, Any]] = None) -> None:
    """Write a resumable checkpoint in the published structure, atomically."""
    payload: Dict[str, Any] = {
        "model_name": model_name,
        "epoch": epoch,
        "iteration": iteration,
        "config": config,
        "state_dict": unwrap_model(model).state_dict(),
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scaler is not None:
        payload["scaler"] = scaler.state_dict()
    if rng_states is not None:
        payload.update(rng_states)
    if train_args is not None:
        payload["train_args"] = train_args
    atomic_save(payload, path)

