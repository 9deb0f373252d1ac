"""The registry of model packages, and the reference's model-dispatch function names as one-line look-ups.

Each package declares itself once in its package.py (common/model_package.py says what it declares).
`load_model` is the one way every entry point (inference, latency test, export, evaluation) loads a checkpoint.
"""
import argparse
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

from common.checkpoint import (CheckpointError, ModelCard, check_model_kind, load_checkpoint_file,
                               load_model_weights, state_dict_from_checkpoint)
from common.model_package import ModelPackage
from tacotron2.package import PACKAGE as TACOTRON2
from waveglow.package import PACKAGE as WAVEGLOW

MODELS: Mapping[str, ModelPackage] = {p.name: p for p in (TACOTRON2, WAVEGLOW)}
SIGNATURE_KEYS: Mapping[str, str] = {p.name: p.signature_key for p in MODELS.values()}


def package(model_name: str) -> ModelPackage:
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose from {sorted(MODELS)}")
    return MODELS[model_name]


def model_parser(model_name: str, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the model's own flags to `parser`."""
    return package(model_name).add_flags(parser)


def default_flags(model_name: str) -> argparse.Namespace:
    """The model's own flags at their defaults."""
    return model_parser(model_name, argparse.ArgumentParser(add_help=False)).parse_args([])


def get_model_config(model_name: str, args: argparse.Namespace) -> Dict[str, Any]:
    """Constructor dict of the model, built from parsed flags."""
    return package(model_name).config_from_args(args)


def get_model(model_name: str, model_config: Dict[str, Any], device: torch.device = torch.device("cpu"),
              uniform_initialize_bn_weight: bool = False) -> torch.nn.Module:
    """Build a model from its constructor dict.

    With `uniform_initialize_bn_weight`, BatchNorm weights are drawn from U[0, 1) as the
    reference's training does.
    """
    model = package(model_name).model_class(**model_config)
    if uniform_initialize_bn_weight:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine:
                torch.nn.init.uniform_(m.weight)
    return model.to(device)


def random_waveglow(n_channels: int = 256, seed: int = 0, end_std: float = 0.02) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """An eval-mode WaveGlow (8 WN layers of kernel 3, `n_channels` wide) with seeded random weights, and its
    config. A new WaveGlow's WN end layers are zero, which makes every affine coupling the identity: speed or
    precision measured on it would miss the coupling's effect, so they are drawn too (std `end_std`). The model
    the benchmark times and the round trip listens to, where no trained WaveGlow can be had."""
    torch.manual_seed(seed)
    config = {**get_model_config("WaveGlow", default_flags("WaveGlow")),
              "WN_config": {"n_layers": 8, "kernel_size": 3, "n_channels": n_channels}}
    model = get_model("WaveGlow", config).eval()
    for wn in model.WN:
        torch.nn.init.normal_(wn.end.weight, std=end_std)
    return model, config


def load_model(path: str, model_name: str, device: torch.device,
               overrides: Optional[Mapping[str, Any]] = None) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """An eval-mode model and its config from a checkpoint of this repository or NVIDIA's.

    The architecture comes from the checkpoint's `config`, or is read off its weights when it has none
    (never from defaults). `overrides` replace config entries that do not change the weights, such as
    the decoder's `max_decoder_steps` and `gate_threshold`. The model carries the checkpoint's `card`
    (common.checkpoint.ModelCard: its audio settings and training flags), from which inference rebuilds the text
    front end and the vocoder's settings.
    """
    ckpt = load_checkpoint_file(path)
    state_dict = state_dict_from_checkpoint(ckpt, path)
    check_model_kind(state_dict, model_name, path, SIGNATURE_KEYS)
    config = ckpt.get("config")
    if not isinstance(config, dict):
        try:
            config = package(model_name).config_from_weights(state_dict)
        except KeyError as e:
            raise CheckpointError(f"{path}: not a {model_name} checkpoint (no {e.args[0]!r} tensor)") from e
    config = {**config, **(overrides or {})}
    try:
        model = get_model(model_name, config)
    except TypeError as e:
        raise CheckpointError(f"{path}: its config does not describe a {model_name}: {e}") from e
    load_model_weights(model, state_dict, path)
    model.card = ModelCard.of(ckpt, path)
    return model.to(device).eval(), config
