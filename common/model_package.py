"""What a model package declares, once: everything training, inference and checkpoint code need to know of a
model, so that none of them names a model or probes an object for what it can do.

Each package fills one `ModelPackage` in its `package.py` (tacotron2/package.py, waveglow/package.py);
models.py registers them.
"""
import argparse
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch

Flags = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


class Batch(NamedTuple):
    """What train.py feeds a model: inputs, loss targets and the item count for throughput."""
    x: tuple
    y: tuple
    n_items: torch.Tensor  # mel frames (Tacotron 2) or samples (WaveGlow), real ones only


@dataclass(frozen=True)
class ModelPackage:
    name: str  # as on the command line (-m) and in checkpoints (model_name)
    model_class: type  # built from its config dict: model_class(**config)
    add_flags: Flags  # parser -> the parser with the model's own flags added
    config_from_args: Callable[[argparse.Namespace], Dict[str, Any]]
    flags_from_config: Callable[[Dict[str, Any]], Dict[str, Any]]  # a config -> the flags (dests) that build it
    config_from_weights: Callable[[Dict[str, torch.Tensor]], Dict[str, Any]]  # for checkpoints without a config
    signature_key: str  # a state-dict key that only this model's weights have
    loss: Callable[[argparse.Namespace], torch.nn.Module]  # from the training flags
    dataset: Callable[[str, str, argparse.Namespace], torch.utils.data.Dataset]  # (root, filelist, flags)
    collate: Callable[[argparse.Namespace], Callable]
    batch_to_device: Callable  # (collated batch, device) -> Batch
    # optional abilities, declared rather than probed
    item_lengths: Optional[Callable[[torch.utils.data.Dataset], Sequence[int]]] = None  # for length buckets
    dataset_per_epoch: bool = False  # the dataset draws per epoch: call dataset.set_epoch(epoch)
    loss_per_iteration: bool = False  # the loss has a schedule: call loss.set_iteration(iteration)
    quality_metrics: Optional[Callable] = None  # (model, dataset, n) -> ({name: value}, {name: figure})
    # a cheap check of the model after each epoch: (model, validation set) -> ({name: value}, [warnings])
    health: Optional[Callable[[torch.nn.Module, torch.utils.data.Dataset], Tuple[Dict[str, float], List[str]]]] = None
    # training-only settings of the model from the flags, applied before training: (model, flags) -> None
    prepare_training: Optional[Callable[[torch.nn.Module, argparse.Namespace], None]] = None
    # flag values that depend on the training data, resolved once before the first step and stored with the
    # checkpoints' training flags: (training set, flags) -> {dest: value}; raises ValueError to refuse the run
    resolve_flags: Optional[Callable[[torch.utils.data.Dataset, argparse.Namespace], Dict[str, Any]]] = None
    # what common/training/data_checks.py checks of a dataset's audio: (dataset, flags) -> ContentItems, None: nothing
    content_items: Optional[Callable[[torch.utils.data.Dataset, argparse.Namespace], Optional["ContentItems"]]] = None


class ContentItems(NamedTuple):
    """A dataset's clips for the content checks."""
    entries: Sequence[Any]  # common.filelist.FilelistEntry of each wav
    text_lengths: Optional[Sequence[int]]  # cleaned transcript lengths (characters per second), None: no text
    min_samples: int  # shorter clips get a warning (a training segment's length), 0: none
