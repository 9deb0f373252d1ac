"""Convert checkpoints from elsewhere into this repository's safe format (tensors and plain containers only).

    python -m scripts.convert_checkpoint --trust waveglow_256channels_universal_v5.pt waveglow_converted.pt
    python -m scripts.convert_checkpoint --trust --source-dir ~/src/waveglow IN.pt OUT.pt   # also checks the audio

NVIDIA's stand-alone repositories (github.com/NVIDIA/waveglow, NVIDIA/tacotron2) publish whole pickled models:
`{"model": <glow.WaveGlow object>, ...}`. Loading such a file runs the pickle, and a pickle can run any code,
so this repository's loaders refuse it. This script is the one trusted step: run it once, on a file whose
origin you trust, with --trust; it writes `{"state_dict", "config", "model_name"}` that every entry point
loads with `weights_only=True`. The original's classes need not be importable (their objects are rebuilt as
plain containers of weights); with --source-dir pointing at a checkout of the original repository they are,
and the converted model's output is then compared with the original's on a fixed input.

Layouts mapped onto this repository's (the published NVIDIA DLE key names):
* WaveGlow with one fused conditioning convolution per flow (`WN.k.cond_layer`, 2 C L output channels, as
  NVIDIA/waveglow's code after its own conversion) -> per-layer `WN.k.cond_layers.i` (rows i*2C..(i+1)*2C,
  the weight-norm g and v per output channel, so the split is exact);
* convolutions whose weight norm was removed (`weight`) -> `weight_g` = per-channel norm, `weight_v` = weight;
* DDP `module.` and torch.compile `_orig_mod.` prefixes, torch's parametrized weight-norm names.
"""
import argparse
import os
import pickle
import re
import sys
import types
from typing import Any, Dict, Optional, Tuple

import torch

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.convert_checkpoint ...")

import models
from common.flag_types import NONNEG
from common.checkpoint import (CheckpointError, atomic_save_or_exit, load_checkpoint_file, load_model_weights,
                               normalize_state_dict)
from common.output import check_outputs


class _StandIn(torch.nn.Module):
    """Rebuilt in place of a pickled module whose class cannot be imported: holds its weights, runs nothing."""


def _lenient_pickle_module() -> types.ModuleType:
    """A pickle module whose Unpickler makes stand-ins for classes that cannot be imported."""
    module = types.ModuleType("lenient_pickle")
    module.__dict__.update({k: getattr(pickle, k) for k in ("load", "loads", "dump", "dumps", "Pickler")})

    class Unpickler(pickle.Unpickler):
        def find_class(self, mod_name: str, name: str) -> Any:
            try:
                return super().find_class(mod_name, name)
            except (ImportError, AttributeError):
                return type(name, (_StandIn,), {"__module__": f"stand_in.{mod_name}"})
    module.Unpickler = Unpickler
    return module


def load_trusted(path: str) -> Tuple[Dict[str, torch.Tensor], Optional[torch.nn.Module]]:
    """Unpickle a trusted file: (its weights, the original module where one was pickled and its class imported)."""
    obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_lenient_pickle_module())
    module = None
    if isinstance(obj, torch.nn.Module):
        module = obj
    elif isinstance(obj, dict) and isinstance(obj.get("model"), torch.nn.Module):
        module = obj["model"]
    if module is not None:
        state_dict = module.state_dict()
        runnable = not any(isinstance(m, _StandIn) for m in module.modules())
        return {k: v for k, v in state_dict.items()}, module if runnable else None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        return obj["state_dict"], None
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, None
    raise CheckpointError(f"{path}: found neither a pickled model nor a state dict (a {type(obj).__name__})")


def split_fused_conditioning(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """`WN.k.cond_layer.{weight_g,weight_v,bias}` (2 C L rows) -> `WN.k.cond_layers.i.*` (2 C rows each)."""
    out = {}
    for key, value in state_dict.items():
        m = re.fullmatch(r"(WN\.\d+)\.cond_layer\.(weight_g|weight_v|weight|bias)", key)
        if not m:
            out[key] = value
            continue
        wn, param = m.groups()
        n_layers = len({k.split(".")[3] for k in state_dict if k.startswith(f"{wn}.in_layers.")})
        rows = value.shape[0] // n_layers
        for i in range(n_layers):
            out[f"{wn}.cond_layers.{i}.{param}"] = value[i * rows:(i + 1) * rows].clone()
    return out


def restore_weight_norm(state_dict: Dict[str, torch.Tensor], expected: Dict[str, torch.Tensor]
                        ) -> Dict[str, torch.Tensor]:
    """Where `expected` (our model's keys) wants `X.weight_g`/`X.weight_v` and the file has `X.weight`:
    g = the per-output-channel norm, v = the weight (the same effective weight)."""
    out = dict(state_dict)
    for key in expected:
        if key.endswith(".weight_v"):
            base = key[:-len(".weight_v")]
            if key not in out and f"{base}.weight" in out:
                w = out.pop(f"{base}.weight")
                out[key] = w.clone()
                out[f"{base}.weight_g"] = w.norm(dim=tuple(range(1, w.dim())), keepdim=True)
    return out


def convert(state_dict: Dict[str, torch.Tensor], source: str) -> Tuple[str, Dict[str, Any], torch.nn.Module]:
    """(model name, config, our model holding the weights) from a foreign state dict."""
    sd = split_fused_conditioning(normalize_state_dict(state_dict))
    name = next((n for n, key in models.SIGNATURE_KEYS.items() if key in sd or key.replace("weight", "weight_v") in sd),
                None)
    if name is None:
        raise CheckpointError(f"{source}: neither a Tacotron 2 nor a WaveGlow (keys: {sorted(sd)[:6]} ...)")
    try:
        config = models.package(name).config_from_weights(sd)
    except KeyError as e:
        raise CheckpointError(f"{source}: not a complete {name} (no {e.args[0]!r} tensor)") from e
    model = models.get_model(name, config)
    sd = restore_weight_norm(sd, model.state_dict())
    load_model_weights(model, sd, source)
    return name, config, model.eval()


@torch.no_grad()
def compare_waveglow(original: torch.nn.Module, ours: torch.nn.Module, n_mel: int) -> float:
    """Max |audio difference| on a fixed mel with the same latent draws (the reference's draw order)."""
    mel = torch.randn(1, n_mel, 16, generator=torch.Generator().manual_seed(0)) - 4
    torch.manual_seed(1)
    a = original.infer(mel, sigma=0.6)
    torch.manual_seed(1)
    b = ours.infer(mel, sigma=0.6)
    return float((a.float() - b.float()).abs().max() / a.float().abs().max().clamp_min(1e-8))


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--trust", action="store_true",
                        help="unpickle the input, which can run code: only for files whose origin you trust")
    parser.add_argument("--source-dir", default=None,
                        help="a checkout of the repository the file comes from: its classes are imported and "
                             "the converted model's output is checked against the original's")
    parser.add_argument("--tolerance", type=NONNEG, default=1e-4, help="largest relative audio difference accepted")
    args = parser.parse_args(argv)
    check_outputs(parser, files=[("output", args.output)])
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        sys.exit("error: write the converted checkpoint to another file")
    original = None
    try:
        try:
            ckpt = load_checkpoint_file(args.input)
            state_dict = ckpt.get("state_dict", ckpt)
        except CheckpointError as e:
            if "refused" not in str(e):
                raise
            if not args.trust:
                sys.exit(f"error: {e}\nIf you trust where {args.input} comes from, convert it with --trust.")
            if args.source_dir:
                sys.path.insert(0, os.path.abspath(args.source_dir))
            state_dict, original = load_trusted(args.input)
        name, config, model = convert(state_dict, args.input)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    if name == "WaveGlow" and original is not None and hasattr(original, "infer"):
        diff = compare_waveglow(original, model, config["n_mel_channels"])
        print(f"output check: converted vs original audio, max relative difference {diff:.2e}")
        if not diff <= args.tolerance:
            sys.exit(f"error: the converted model's audio differs from the original's by {diff:.2e} "
                     f"(> --tolerance {args.tolerance}); nothing written")
    elif original is None:
        print("output check skipped: the original's code is not importable (give --source-dir to check)")
    atomic_save_or_exit({"state_dict": model.state_dict(), "config": config, "model_name": name}, args.output)
    print(f"wrote {args.output}: {name} {config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
