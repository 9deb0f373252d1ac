"""Side-by-side speed of this repository's plain and fast paths, same random weights, one run.

    python -m scripts.benchmark [--device cuda] [--quick]

Rows: Tacotron 2 encoder (128 symbols) and decoder ms/step at batch 1 and 4 (200 steps), WaveGlow
inference samples/s at batch 1 for 80 mel frames (WN 512 and 256), Tacotron 2 training mels/s
(batch 8, 100 symbols, 400 frames) and WaveGlow training samples/s (WN 256, batch 2, segment 8000).
The plain eager path is the baseline row of each group; "vs plain" is the speed-up against it and,
on a CPU, "vs ref" the speed-up against the reference implementation's figures on this project's
2-core machine (REFERENCE_CPU; compare only on that kind of machine). bf16 rows also give the
output's SNR against float32.
"""
import argparse
import sys
import warnings
from typing import Dict, List, Optional, Tuple

import torch

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.benchmark ...")

from common.timing import dtype_name, median_seconds
from common.train_step import make_adam
from loss_functions import get_loss_function
from tacotron2.fast_inference import FastDecoder, tune_decoder
from tacotron2.model import Tacotron2
from waveglow.fast_inference import FastWaveGlow, tune_waveglow
from waveglow.model import WaveGlow

WAVEGLOW_FLOP_PER_SAMPLE = {512: 66e6, 256: 20e6}  # about, from the layer sizes


def gemm_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048) -> float:
    """GFLOP/s of an n x n x n matrix product: a practical peak for this device and dtype."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return 2 * n ** 3 / median_seconds(lambda: a @ b, device, repeats=5, warmup=3) / 1e9


def snr_db(reference: torch.Tensor, test: torch.Tensor) -> float:
    noise = (reference.double() - test.double()).pow(2).sum()
    return float(10 * torch.log10(reference.double().pow(2).sum() / noise.clamp_min(1e-30)))


def decoder_variants(device: torch.device) -> List[Tuple[str, Optional[torch.dtype], bool]]:
    """(name, fast-weight dtype or None for the plain path, static buffers / CUDA graphs) to time."""
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    low_name = "fp16" if device.type == "cuda" else "bf16"
    static_name = "graphs" if device.type == "cuda" else "static"
    return [("plain", None, False), ("fast fp32", torch.float32, False), (f"fast {low_name}", low, False),
            (f"{static_name} fp32", torch.float32, True), (f"{static_name} {low_name}", low, True),
            ("tuned", low, False)]


def tacotron2_rows(device, steps: int, repeats: int) -> List[Dict[str, object]]:
    torch.manual_seed(0)
    model = Tacotron2(max_decoder_steps=steps, decoder_no_early_stopping=True).to(device).eval()
    model.set_prenet_dropout(False)
    rows = []
    for batch in (1, 4):
        text = torch.randint(12, 60, (batch, 128), device=device)
        lengths = torch.full((batch,), 128, device=device)
        with torch.no_grad():
            enc = median_seconds(lambda: model.encode(text, lengths), device, repeats)
            memory = model.encode(text, lengths)
        ref_out = None
        for variant, dtype, static in decoder_variants(device):
            chosen = ""
            if variant == "tuned":  # what inference.py --amp-run does: time the candidates, keep the fastest
                engine, timings = tune_decoder(model.decoder, batch, [torch.float32, dtype])
                chosen = f"; kept {engine.name}"
            else:
                engine = model.decoder if dtype is None else FastDecoder(model.decoder, dtype, static=static)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = median_seconds(lambda: engine.infer(memory, lengths), device, repeats)
                out = engine.infer(memory, lengths).mel_outputs
            if ref_out is None:
                ref_out = out
            rows.append({"group": f"Tacotron 2 decoder, batch {batch}", "variant": variant,
                         "value": 1000 * t / steps, "unit": "ms/step", "lower_is_better": True,
                         "note": f"encoder {1000 * enc:.1f} ms; max|diff| vs plain "
                                 f"{float((out - ref_out).abs().max()):.2e}{chosen}"})
    return rows


def real_mel(wav: str, frames: int) -> torch.Tensor:
    """(1, 80, frames) log-mel of a wav (e.g. from the espeak corpus), repeated if too short."""
    from common.audio import load_wav
    from common.layers import TacotronSTFT
    mel = TacotronSTFT().mel_spectrogram(load_wav(wav, 22050)[None])
    return mel.repeat(1, 1, -(-frames // mel.size(2)))[:, :, :frames]


def waveglow_rows(device, frames: int, repeats: int, channels: List[int], wav: str = None) -> List[Dict[str, object]]:
    rows = []
    for c in channels:
        torch.manual_seed(0)
        model = WaveGlow(WN_config={"n_layers": 8, "kernel_size": 3, "n_channels": c}).to(device).eval()
        for wn in model.WN:  # random end layers: a trained model's coupling is not the identity
            torch.nn.init.normal_(wn.end.weight, std=0.02)
        model.remove_weightnorm()
        mel = (real_mel(wav, frames) if wav else torch.randn(1, 80, frames) - 5).to(device)
        noise = [torch.randn(s, device=device) for s in model.noise_shapes(1, frames * 256 // 8)]
        ref = None
        low, low_name = (torch.float16, "fp16") if device.type == "cuda" else (torch.bfloat16, "bf16")
        for variant, dtype in (("plain", None), ("fast fp32", torch.float32), (f"fast {low_name}", low),
                               ("tuned", None)):
            chosen = ""
            if variant == "tuned":  # as inference.py --amp-run on a CPU
                engine, timings = tune_waveglow(model, [None, torch.float32, low])
                chosen = f"; kept {min(timings, key=timings.get)}"
            else:
                engine = model if dtype is None else FastWaveGlow(model, dtype)
            with torch.no_grad():
                t = median_seconds(lambda: engine.infer(mel, sigma=0.6, noise=noise), device, repeats)
                audio = engine.infer(mel, sigma=0.6, noise=noise)
            ref = audio if ref is None else ref
            samples = audio.numel()
            rows.append({"group": f"WaveGlow WN {c} inference, batch 1, {frames} frames", "variant": variant,
                         "value": samples / t, "unit": "samples/s", "lower_is_better": False,
                         "note": f"{samples / t * WAVEGLOW_FLOP_PER_SAMPLE.get(c, 0) / 1e9:.0f} GFLOP/s; "
                                 f"SNR vs plain {snr_db(ref, audio):.1f} dB{chosen}"})
    return rows


def _train_step_fn(model, criterion, batch, target, device, amp: bool, fused: bool):
    """One optimizer step as train.py takes it (Adam, fused or not; bf16 autocast on CPU, fp16 on GPU)."""
    optimizer = make_adam(model.parameters(), 1e-4, 0.0, device, fused)
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = criterion(model(batch), target)
        loss.backward()
        optimizer.step()
    return step


def training_rows(device, repeats: int) -> List[Dict[str, object]]:
    rows = []
    torch.manual_seed(0)
    t2 = Tacotron2().to(device).train()
    crit = get_loss_function("Tacotron2")
    B, T_in, T_out = 8, 100, 400
    text = torch.randint(12, 60, (B, T_in), device=device)
    mels = torch.randn(B, 80, T_out, device=device) - 5
    gate = torch.zeros(B, T_out, device=device)
    gate[:, -1] = 1
    x = (text, torch.full((B,), T_in, device=device), mels, T_in, torch.full((B,), T_out, device=device))
    group = "Tacotron 2 training, batch 8, 400 frames"
    for variant, deferred, amp in (("plain fp32", False, False), ("fast fp32", True, False), ("fast amp", True, True)):
        t2.decoder.deferred_weight_grads = deferred
        t = median_seconds(_train_step_fn(t2, crit, x, (mels, gate), device, amp, fused=deferred), device, repeats)
        rows.append({"group": group, "variant": variant, "value": B * T_out / t, "unit": "mels/s",
                     "lower_is_better": False, "note": "deferred LSTM weight grads, fused Adam" if deferred else ""})
    wg = WaveGlow(WN_config={"n_layers": 8, "kernel_size": 3, "n_channels": 256}).to(device).train()
    audio = torch.rand(2, 8000, device=device) * 0.2 - 0.1
    wmel = torch.randn(2, 80, 8000 // 256 + 1, device=device) - 5
    wcrit = get_loss_function("WaveGlow")
    for variant, fused, amp in (("plain fp32", False, False), ("fast fp32", True, False), ("fast amp", True, True)):
        t = median_seconds(_train_step_fn(wg, wcrit, (wmel, audio), audio, device, amp, fused), device, repeats)
        rows.append({"group": "WaveGlow WN 256 training, batch 2, segment 8000", "variant": variant,
                     "value": audio.numel() / t, "unit": "samples/s", "lower_is_better": False,
                     "note": "fused Adam" if fused else ""})
    return rows


# The reference implementation on this project's CPU machine (2 cores, 2 threads, fp32, random weights),
# measured by the issue that asked for this benchmark: (low, high) per group.
REFERENCE_CPU = {
    "Tacotron 2 decoder, batch 1": (3.7, 3.9),
    "Tacotron 2 decoder, batch 4": (7.1, 7.5),
    "WaveGlow WN 512 inference, batch 1, 80 frames": (5100, 5650),
    "WaveGlow WN 256 inference, batch 1, 80 frames": (13700, 16200),
    "Tacotron 2 training, batch 8, 400 frames": (294, 335),
}


def print_table(rows: List[Dict[str, object]], reference: Dict[str, tuple]) -> None:
    """Rows with their speed-up against the group's first (plain) row and against the reference's midpoint."""
    base: Dict[str, float] = {}
    print(f"{'measurement':<52} {'variant':<10} {'value':>12} {'unit':<10} {'vs plain':>8} {'vs ref':>7}  note")
    for r in rows:
        base.setdefault(r["group"], r["value"])

        def speedup(other: float) -> float:
            return (other / r["value"]) if r["lower_is_better"] else (r["value"] / other)
        ref = reference.get(r["group"])
        vs_ref = f"{speedup(sum(ref) / 2):>6.2f}x" if ref else f"{'':>7}"
        print(f"{r['group']:<52} {r['variant']:<10} {r['value']:>12,.2f} {r['unit']:<10} "
              f"{speedup(base[r['group']]):>7.2f}x {vs_ref}  {r['note']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps (smoke run)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--wav", default=None, help="a speech wav whose mel drives WaveGlow (default: random mel)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = 1 if args.quick else 3
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    print(f"matrix-product peak (2048^3): float32 {gemm_gflops(device, torch.float32):,.0f} GFLOP/s, "
          f"{dtype_name(low)} {gemm_gflops(device, low):,.0f} GFLOP/s")
    rows = tacotron2_rows(device, steps=20 if args.quick else 200, repeats=repeats)
    rows += waveglow_rows(device, frames=80, repeats=repeats, channels=[256] if args.quick else [512, 256], wav=args.wav)
    if not args.skip_training:
        rows += training_rows(device, repeats)
    print_table(rows, REFERENCE_CPU if device.type == "cpu" else {})


if __name__ == "__main__":
    main()
