"""Model dispatch by name: one table of model packages, the reference's function names."""
import argparse
import importlib
from typing import Any, Dict

import torch

MODEL_PACKAGES = {"Tacotron2": "tacotron2", "WaveGlow": "waveglow"}


def _package(model_name: str, module: str):
    if model_name not in MODEL_PACKAGES:
        raise ValueError(f"unknown model {model_name!r}; choose from {sorted(MODEL_PACKAGES)}")
    return importlib.import_module(f"{MODEL_PACKAGES[model_name]}.{module}")


def model_parser(model_name: str, parser: argparse.ArgumentParser, add_help: bool = False) -> argparse.ArgumentParser:
    """Add the model's own flags to `parser`."""
    mod = _package(model_name, "arg_parser")
    return getattr(mod, f"parse_{MODEL_PACKAGES[model_name]}_args")(parser, add_help)


def get_model_config(model_name: str, args: argparse.Namespace) -> Dict[str, Any]:
    """Constructor dict of the model, built from parsed flags."""
    return _package(model_name, "arg_parser").config_from_args(args)


def get_model(model_name: str, model_config: Dict[str, Any], device: torch.device = torch.device("cpu"),
              uniform_initialize_bn_weight: bool = False) -> torch.nn.Module:
    """Build a model from its constructor dict.

    With `uniform_initialize_bn_weight`, BatchNorm weights are drawn from U[0, 1) as the
    reference's training does.
    """
    cls = getattr(_package(model_name, "model"), model_name)
    model = cls(**model_config)
    if uniform_initialize_bn_weight:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine:
                torch.nn.init.uniform_(m.weight)
    return model.to(device)


def get_quality_metrics(model_name: str):
    """The model's `score(model, dataset, n) -> {metric: value}` for validation, or None."""
    try:
        return getattr(_package(model_name, "metrics"), "score", None)
    except ModuleNotFoundError:
        return None
