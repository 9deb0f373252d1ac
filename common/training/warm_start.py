"""A warm start's model takes its shape from the checkpoint.

Fine-tuning a model means training *that* model: its widths, kernel sizes and reduction factor are the checkpoint's,
whatever this run's flags or config file say (NVIDIA's 512-wide defaults, or a config file written for another
model). Taking them from the checkpoint spares the user the "weights do not fit" error and a search for the flags it
was trained with. The run's own flags still decide everything that does not shape a weight (dropouts, the decoder's
step cap, the gate threshold), and a flag whose weights all lie under --warm-start-ignore stays the run's: that is a
deliberate new layer (e.g. an embedding for another symbol set).
"""
import argparse
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from common.checkpoint import state_dict_from_checkpoint
from common.model_package import ModelPackage


def _shapes(package: ModelPackage, flags: argparse.Namespace) -> Dict[str, Tuple[int, ...]]:
    """State-dict key -> shape of the model these flags build, on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = package.model_class(**package.config_from_args(flags))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _buildable_shapes(package: ModelPackage, flags: argparse.Namespace) -> Optional[Dict[str, Tuple[int, ...]]]:
    """`_shapes`, or None where the flags build no model (values that must agree with each other do not)."""
    try:
        return _shapes(package, flags)
    except (ValueError, TypeError, AssertionError, RuntimeError):
        return None


def _changes_weights(package: ModelPackage, flags: argparse.Namespace,
                     ours: Optional[Dict[str, Tuple[int, ...]]], ignore: Tuple[str, ...]) -> bool:
    """Whether `flags` build a model whose weights outside the `ignore` prefixes differ from `ours` (in keys or
    shapes). Where either builds no model, the flag counts as shaping: the checkpoint's values make one."""
    theirs = _buildable_shapes(package, flags)
    if theirs is None or ours is None:
        return True
    return ({k: s for k, s in theirs.items() if not k.startswith(ignore)}
            != {k: s for k, s in ours.items() if not k.startswith(ignore)})


def checkpoint_flags(package: ModelPackage, ckpt: Dict[str, Any], path: str) -> Dict[str, Any]:
    """The model flags (dest -> value) the checkpoint's model was built with: from its `config`, or read off its
    weights where it has none (NVIDIA's published checkpoints); {} where neither says."""
    config = ckpt.get("config")
    try:
        if not isinstance(config, dict):
            config = package.config_from_weights(state_dict_from_checkpoint(ckpt, path))
        return package.flags_from_config(config)
    except (KeyError, IndexError, AttributeError):
        return {}


def adopt_checkpoint_shape(package: ModelPackage, args: argparse.Namespace, ckpt: Dict[str, Any], path: str,
                           ignore: Sequence[str] = ()) -> List[str]:
    """Set in `args` each model flag that shapes a weight to the warm start checkpoint's value; one line per flag
    changed ("--encoder-embedding-dim 128 (the flags said 256)"), for the run's log."""
    ignore = tuple(ignore)
    theirs = checkpoint_flags(package, ckpt, path)
    differing = {dest: value for dest, value in theirs.items()
                 if hasattr(args, dest) and getattr(args, dest) != value}
    if not differing:
        return []
    ours = _buildable_shapes(package, args)
    shaping = [dest for dest, value in differing.items()
               if _changes_weights(package, argparse.Namespace(**{**vars(args), dest: value}), ours, ignore)]
    adopted = []
    for dest in shaping:
        adopted.append(f"--{dest.replace('_', '-')} {differing[dest]} (the flags said {getattr(args, dest)})")
        setattr(args, dest, differing[dest])
    return adopted
