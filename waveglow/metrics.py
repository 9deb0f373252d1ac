"""How well a WaveGlow resynthesises held-out audio from its mel: the MCD-DTW and spectral contrast of
the resynthesis' mel against the recording's (the definitions of common/mel_metrics.py, so they compare with
Griffin-Lim's figures from scripts/evaluate_tacotron2.py). The log-likelihood is the validation loss itself."""
from typing import Dict, List, Tuple

import numpy as np
import torch

from common.audio import load_wav
from common.mel_metrics import contrast_ratio, mcd_dtw
from waveglow.data_function import MelAudioLoader


@torch.no_grad()
def resynthesize(model: torch.nn.Module, dataset: MelAudioLoader, n: int, sigma: float = 0.6,
                 max_seconds: float = 3.0) -> List[Dict[str, object]]:
    """The first n clips of the dataset (at most max_seconds of each) through mel -> WaveGlow -> mel."""
    model.eval()
    audio_cfg = dataset.audio
    device = next(model.parameters()).device
    rows = []
    # a fixed latent (drawn on the model's device): the figures of two epochs differ by the weights only; the global
    # generators, the CPU's and the model's GPU's, are left as they were, so that training continues unchanged
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        for entry in dataset.entries[:n]:
            audio = load_wav(entry.path, audio_cfg.sampling_rate, audio_cfg.max_wav_value)
            audio = audio[:int(max_seconds * audio_cfg.sampling_rate)]
            teacher = dataset.stft.mel_spectrogram(audio[None])  # (1, n_mel, T)
            wav = model.infer(teacher.to(device), sigma=sigma)[0].float().cpu().clamp(-1, 1)  # (T * hop,)
            got = dataset.stft.mel_spectrogram(wav[None])[0].numpy()
            rows.append({"mcd_dtw": mcd_dtw(got, teacher[0].numpy()), "contrast": contrast_ratio(got, teacher[0].numpy()),
                         "teacher": teacher[0], "mel": torch.from_numpy(got)})
    return rows


def score(model: torch.nn.Module, dataset: MelAudioLoader, n: int) -> Tuple[Dict[str, float], Dict[str, object]]:
    """Validation quality metrics ({name: value}, {name: figure}): resynthesis MCD-DTW and contrast, and a picture
    of the first clip's recording and resynthesis mels."""
    from common.plotting import mel_pair_figure
    rows = resynthesize(model, dataset, n)
    values = {"val_mcd_dtw": float(np.mean([r["mcd_dtw"] for r in rows])),
              "val_contrast": float(np.mean([r["contrast"] for r in rows]))}
    return values, {"val_resynthesis": mel_pair_figure(rows[0]["teacher"], rows[0]["mel"], "recording", "WaveGlow")}
