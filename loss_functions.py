"""Loss dispatch by model name (the reference's function name): a look-up in the registry of models.py."""
import argparse
from typing import Optional

import torch

from models import default_flags, package


def get_loss_function(loss_function: str, args: Optional[argparse.Namespace] = None) -> torch.nn.Module:
    """The training loss of a model, configured from its flags (their defaults when `args` is None)."""
    return package(loss_function).loss(args if args is not None else default_flags(loss_function))
