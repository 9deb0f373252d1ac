"""What a WaveGlow fast path does to speech, heard by the listeners, with or without a trained WaveGlow.

    python -m scripts.waveglow_round_trip -d demo_output/heldout [--waveglow WG.pt] [--limit 12] \
        [--dtypes float32 bfloat16 qint8]

Each recording x of the corpus (an LJSpeech-format folder: metadata.csv, wavs/) goes forward through the WaveGlow in
float64 (x -> z, exact), then back through FastWaveGlow in each dtype (z -> x'). float32 gives the recording back;
what a dtype's products get wrong reaches the audio through every flow, as it does in synthesis. Prints, per dtype,
the SNR against the recording and what pocketsphinx and DNSMOS make of x' beside the recording's own scores.
Without --waveglow: the benchmark's random WN 256 WaveGlow (`models.random_waveglow`), whose coupling outputs are not
predictions of the audio, so its figures are a harsh stand-in for a trained model's (docs/performance.md).
"""
import argparse
import copy
import os
import sys
from typing import Dict, List

import numpy as np
import soundfile
import torch

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.waveglow_round_trip ...")

import models
from common.audio import AudioConfig, snr_db
from common.flag_types import COUNT
from common.layers import TacotronSTFT
from common.listeners import listen
from waveglow.fast_inference import FastWaveGlow
from waveglow.model import WaveGlow

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "qint8": torch.qint8}


def latent_as_noise(model: WaveGlow, z: torch.Tensor) -> List[torch.Tensor]:
    """forward's z (B, G, L/G), early outputs first, as `infer`'s draws (the last flow's channels first, then the
    early outputs from the latest flow back), so that infer(mel, sigma=1, noise) inverts forward."""
    n_early = sum(model._outputs_early(k) for k in range(model.n_flows))
    size = model.n_early_size
    early = [z[:, i * size:(i + 1) * size] for i in range(n_early)]
    return [z[:, n_early * size:].float(), *[e.float() for e in reversed(early)]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-d", "--dataset-path", required=True, help="an LJSpeech-format folder: metadata.csv, wavs/")
    parser.add_argument("--waveglow", default=None, help="a WaveGlow checkpoint (default: the benchmark's random one)")
    parser.add_argument("--limit", type=COUNT, default=12, help="the first N recordings")
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["float32", "qint8"])
    args = parser.parse_args(argv)
    if args.waveglow:
        model = models.load_model(args.waveglow, "WaveGlow", torch.device("cpu"))[0].eval()
    else:
        model, _ = models.random_waveglow()
    model.remove_weightnorm()
    model64 = copy.deepcopy(model).double()
    engines = {name: FastWaveGlow(model, DTYPES[name]) for name in args.dtypes}
    audio = AudioConfig()
    stft = TacotronSTFT(**audio.stft_kwargs())
    with open(os.path.join(args.dataset_path, "metadata.csv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("|") for line in f if line.strip()][:args.limit]
    scores: Dict[str, List[Dict[str, float]]] = {name: [] for name in ["recording", *engines]}
    for uid, _, said in rows:
        path = os.path.join(args.dataset_path, "wavs", f"{uid}.wav")
        wav, rate = soundfile.read(path, dtype="float32")
        if rate != audio.sampling_rate:
            raise SystemExit(f"error: {path}: {rate} Hz, the WaveGlow's mels are {audio.sampling_rate} Hz")
        x = torch.from_numpy(wav)[None].clamp(-1, 1)  # (1, L)
        mel = stft.mel_spectrogram(x)  # (1, n_mel, F)
        x = torch.nn.functional.pad(x, (0, mel.size(2) * audio.hop_length - x.size(1)))  # what infer returns
        with torch.no_grad():
            z, _, _ = model64((mel.double(), x.double()))
            noise = latent_as_noise(model, z)
            scores["recording"].append(listen(x[0].numpy(), rate, said))
            for name, engine in engines.items():
                back = engine.infer(mel, sigma=1.0, noise=noise)
                scores[name].append({"snr": snr_db(x, back), **listen(back[0].clamp(-1, 1).numpy(), rate, said)})
        print(uid, " ".join(f"{k} {v[-1]['snr']:.1f} dB" for k, v in scores.items() if k != "recording"), flush=True)
    print(f"{len(rows)} recordings of {args.dataset_path} through {args.waveglow or 'the benchmark random WN 256'}:")
    for name, rows_ in scores.items():
        mean = {k: float(np.mean([r[k] for r in rows_])) for k in ("wer", "cer", "ovrl")}
        snr = f"  SNR vs the recording {np.mean([r['snr'] for r in rows_]):.1f} dB" if name != "recording" else ""
        print(f"{name:10s} WER {mean['wer']:.3f}  CER {mean['cer']:.3f}  DNSMOS OVRL {mean['ovrl']:.2f}{snr}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
