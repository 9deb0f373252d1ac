"""Side-by-side speed of this repository's plain and fast paths, same random weights, one run.

    python -m scripts.benchmark [--device cuda] [--quick]

Rows: Tacotron 2 encoder (128 symbols) and decoder ms/step at batch 1 and 4 (200 steps), WaveGlow
inference samples/s at batch 1 for 80 mel frames (WN 512 and 256), the vocoders that need no trained WaveGlow
(HiFi-GAN V1 fp32 and bf16, Griffin-Lim; 200 frames, samples/s and real-time factor), Tacotron 2 training mels/s
(batch 8, 100 symbols, 400 frames) and WaveGlow training samples/s (WN 256, batch 2, segment 8000), and end to
end as test_infer.py runs it (phrase_1_128, batch 1, WN 256, 300 frames: latency in seconds, RTF, and the time
until the first streamed audio chunk).
The plain eager path is the baseline row of each group; "vs plain" is the speed-up against it. bf16 and int8 rows also
give the output's SNR against float32.

--reference-dir PATH (a checkout of NVIDIA's Tacotron2 directory, DeepLearningExamples/PyTorch/SpeechSynthesis/
Tacotron2; never shipped here) also times the reference implementation on the same weights and inputs, in
float32 as its inference.py --cpu and train.py run it, in a separate process (scripts/reference_timing.py), once
before and once after this repository's variants of each group (the better of the two counts), and prints
"vs ref", every row's speed-up against it. Without it there is no reference column.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import torch

if __package__ in (None, ""):
    sys.exit("run it from the repository root as a module: python -m scripts.benchmark ...")

import models
from common.cpu.winograd import rule_for as winograd_rule_for
from common.layers import ConvNorm
from common.audio import snr_db
from common.precision import autocast
from common.training.amp import amp_settings
from common.cpu.cpu_features import bf16_native, describe as describe_cpu, winograd_trains_faster
from common.cpu.host_memory import keep_freed_memory
from common.cpu.linear import int8_available
from common.timing import dtype_name, median_seconds
from common.training.train_step import make_adam
from loss_functions import get_loss_function
from synthesis import precision_policy
from tacotron2.fast_inference import FastDecoder, tune_decoder
from tacotron2.static_decoder import StaticDecoder
from tacotron2.teacher_forcing import onednn_by_kind
from tacotron2.model import Tacotron2
from common.flag_types import COUNT
from waveglow.fast_inference import FastWaveGlow, tune_waveglow
from vocoders import SIGMA_INFER
from waveglow.model import WaveGlow

CASES = ("decoder", "waveglow", "vocoders", "end-to-end", "training")
WAVEGLOW_FLOP_PER_SAMPLE = {512: 66e6, 256: 20e6}  # about, from the layer sizes


# (case, config, state_dict, inputs[, warmup]) -> the reference's median seconds; None: no reference checkout given
Reference = Optional[Callable[..., float]]
# Untimed training steps before the timed ones, ours and the reference's alike: the first steps of a new model
# and optimizer run up to 10 % slower (oneDNN primitives, allocator), and a single one left that in the median
TRAIN_WARMUP = 3
SMALL_TACOTRON2_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "tacotron2_small_cpu.json")


def reference_timer(reference_dir: str, repeats: int) -> Callable[..., float]:
    """Time the reference in its own process (its packages share our packages' names)."""
    root = os.path.abspath(reference_dir)
    if not (os.path.isfile(os.path.join(root, "tacotron2", "model.py"))
            and os.path.isfile(os.path.join(root, "waveglow", "model.py"))):
        sys.exit(f"error: --reference-dir {reference_dir}: no tacotron2/model.py and waveglow/model.py there "
                 "(give the Tacotron2 folder of NVIDIA's DeepLearningExamples checkout)")
    harness = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_timing.py")

    def time_it(case: str, config: dict, state_dict: dict, inputs: dict, warmup: int = 1) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            job = os.path.join(tmp, "job.pt")
            torch.save({"case": case, "config": config, "state_dict": state_dict, "inputs": inputs,
                        "repeats": repeats, "warmup": warmup, "threads": torch.get_num_threads()}, job)
            proc = subprocess.run([sys.executable, harness, job], cwd=root, capture_output=True, text=True,
                                  env=dict(os.environ, PYTHONPATH=root))
        if proc.returncode != 0:
            sys.exit(f"error: the reference failed on {case}:\n{proc.stderr[-2000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
    return time_it


def full_config(model_name: str, **overrides) -> dict:
    """Every constructor argument (the reference's constructors take no defaults)."""
    return {**models.get_model_config(model_name, models.default_flags(model_name)), **overrides}


def reference_row(group: str, unit: str, lower_is_better: bool, seconds: float, per: float) -> Dict[str, object]:
    value = seconds / per if lower_is_better else per / seconds
    if unit == "ms/step":
        value *= 1000
    return {"group": group, "variant": "reference", "value": value, "unit": unit, "lower_is_better": lower_is_better,
            "note": "NVIDIA's implementation, fp32, same weights and inputs (best of a run before and after ours)"}


def gemm_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048) -> float:
    """GFLOP/s of an n x n x n matrix product: a practical peak for this device and dtype."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return 2 * n ** 3 / median_seconds(lambda: a @ b, device, repeats=5, warmup=3) / 1e9


def low_precision(device: torch.device) -> List[Tuple[str, torch.dtype]]:
    """[(name, dtype)] of the half-width type worth timing here: fp16 on CUDA, bf16 on a CPU that computes it
    natively, none on one that would only emulate it (many times slower than float32)."""
    if device.type == "cuda":
        return [("fp16", torch.float16)]
    return [("bf16", torch.bfloat16)] if bf16_native() else []


def decoder_variants(device: torch.device) -> List[Tuple[str, Optional[torch.dtype], bool]]:
    """(name, fast-weight dtype or None for the plain path, static buffers / CUDA graphs) to time."""
    low = low_precision(device)
    static_name = "graphs" if device.type == "cuda" else "static"
    int8 = [("fast int8", torch.qint8, False)] if device.type == "cpu" and int8_available() else []
    return [("plain", None, False), ("fast fp32", torch.float32, False),
            *[(f"fast {name}", dtype, False) for name, dtype in low], *int8, (f"{static_name} fp32", torch.float32, True),
            *[(f"{static_name} {name}", dtype, True) for name, dtype in low], ("tuned", None, False)]


def tacotron2_rows(device, steps: int, repeats: int, reference: Reference = None) -> List[Dict[str, object]]:
    torch.manual_seed(0)
    config = full_config("Tacotron2", max_decoder_steps=steps, decoder_no_early_stopping=True)
    model = Tacotron2(**config).to(device).eval()
    model.set_modes(prenet_dropout=False)
    rows = []
    for batch in (1, 4):
        text = torch.randint(12, 60, (batch, 128), device=device)
        lengths = torch.full((batch,), 128, device=device)
        with torch.no_grad():
            enc = median_seconds(lambda: model.encode(text, lengths), device, repeats)
            memory = model.encode(text, lengths)
        group = f"Tacotron 2 decoder, batch {batch}"
        ref_job = ("decoder", config, model.state_dict(), {"memory": memory.cpu(), "lengths": lengths.cpu()})
        ref_before = reference(*ref_job) if reference else None
        ref_out = None
        for variant, dtype, static in decoder_variants(device):
            chosen = ""
            if variant == "tuned":  # what inference.py --amp-run does: time the candidates, keep the fastest
                engine, timings = tune_decoder(model.decoder, batch, precision_policy(device, True).decoder_dtypes
                                               if device.type == "cpu" else [torch.float32, torch.float16])
                chosen = f"; kept {engine.name}"
            else:
                engine = model.decoder if dtype is None else FastDecoder(model.decoder, dtype)
                if static:
                    engine = StaticDecoder(engine)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = median_seconds(lambda: engine.infer(memory, lengths), device, repeats)
                out = engine.infer(memory, lengths).mel_outputs
            if ref_out is None:
                ref_out = out
            rows.append({"group": group, "variant": variant,
                         "value": 1000 * t / steps, "unit": "ms/step", "lower_is_better": True,
                         "note": f"encoder {1000 * enc:.1f} ms; max|diff| vs plain "
                                 f"{float((out - ref_out).abs().max()):.2e}{chosen}"})
        if reference:
            rows.append(reference_row(group, "ms/step", True, min(ref_before, reference(*ref_job)), steps))
    return rows


def real_mel(wav: str, frames: int) -> torch.Tensor:
    """(1, 80, frames) log-mel of a wav (e.g. from the espeak corpus), repeated if too short."""
    from common.audio import load_wav
    from common.layers import TacotronSTFT
    mel = TacotronSTFT().mel_spectrogram(load_wav(wav, 22050)[None])
    return mel.repeat(1, 1, -(-frames // mel.size(2)))[:, :, :frames]


def waveglow_rows(device, frames: int, repeats: int, channels: List[int], wav: str = None,
                  reference: Reference = None) -> List[Dict[str, object]]:
    rows = []
    for c in channels:
        model, config = models.random_waveglow(c)
        model = model.to(device)
        mel = (real_mel(wav, frames) if wav else torch.randn(1, 80, frames) - 5).to(device)
        group = f"WaveGlow WN {c} inference, batch 1, {frames} frames"
        ref_job = ("waveglow", config, {k: v.cpu() for k, v in model.state_dict().items()}, {"mel": mel.cpu()})
        ref_before = reference(*ref_job) if reference else None
        model.remove_weightnorm()
        noise = [torch.randn(s, device=device) for s in model.noise_shapes(1, frames * 256 // 8)]
        ref = None
        low = low_precision(device)
        int8 = [("fast int8", torch.qint8)] if device.type == "cpu" and int8_available() else []
        winograd = [("fast fp32 Winograd", torch.float32)] if device.type == "cpu" else []
        for variant, dtype in (("plain", None), ("fast fp32", torch.float32), *winograd,
                               *[(f"fast {name}", dtype) for name, dtype in low], *int8, ("tuned", None)):
            chosen = ""
            if variant == "tuned":  # as inference.py --amp-run does (int8 only with --waveglow-int8)
                engine, timings = tune_waveglow(model, precision_policy(device, True).waveglow_dtypes
                                                if device.type == "cpu" else [None, torch.float32, torch.float16])
                chosen = f"; kept {min(timings, key=timings.get)}"
            else:
                engine = model if dtype is None else FastWaveGlow(model, dtype, winograd=variant.endswith("Winograd"))
            with torch.no_grad():
                t = median_seconds(lambda: engine.infer(mel, sigma=SIGMA_INFER, noise=noise), device, repeats)
                audio = engine.infer(mel, sigma=SIGMA_INFER, noise=noise)
            ref = audio if ref is None else ref
            samples = audio.numel()
            rows.append({"group": group, "variant": variant,
                         "value": samples / t, "unit": "samples/s", "lower_is_better": False,
                         "note": f"{samples / t * WAVEGLOW_FLOP_PER_SAMPLE.get(c, 0) / 1e9:.0f} GFLOP/s; "
                                 f"SNR vs plain {snr_db(ref, audio):.1f} dB{chosen}"})
        if reference:
            rows.append(reference_row(group, "samples/s", False, min(ref_before, reference(*ref_job)), samples))
    return rows


def vocoder_rows(device, frames: int, repeats: int, wav: str = None) -> List[Dict[str, object]]:
    """The vocoders that need no trained WaveGlow, on one mel (a real one with --wav): HiFi-GAN V1 (the published
    universal generator) as the plain generator (the group's baseline), on prepared weights in float32 (direct
    convolutions, then the vocoder's: Winograd's where timed faster) and in bf16
    where the hardware has it (float16 on CUDA), and Griffin-Lim: the classic 60 iterations and the fast variant
    the vocoder runs by default; samples/s, real-time factor and SNR against float32 in the note."""
    from common.audio import AudioConfig
    from hifigan.fast_inference import FastHiFiGAN
    from vocoders import GRIFFIN_LIM_ITERS, GRIFFIN_LIM_MOMENTUM, GriffinLimVocoder, HiFiGANVocoder
    mel = (real_mel(wav, frames) if wav else torch.randn(1, 80, frames) - 5).to(device)
    lengths = torch.tensor([frames])
    rows: List[Dict[str, object]] = []
    group = f"vocoders, batch 1, {frames} frames ({frames * 256 / 22050:.1f} s)"

    def row(variant: str, seconds: float, samples: int, note: str = "") -> Dict[str, object]:
        return {"group": group, "variant": variant, "value": samples / seconds, "unit": "samples/s",
                "lower_is_better": False, "note": f"RTF {samples / 22050 / seconds:.2f}{note}"}
    half = [("bf16", torch.bfloat16)] if device.type == "cpu" and bf16_native() else \
        [("fp16", torch.float16)] if device.type == "cuda" else []
    try:
        vocoders = [(f"HiFi-GAN {n}", HiFiGANVocoder(device, "universal", (d,)))
                    for n, d in (("fp32", torch.float32), *half)]
    except RuntimeError as e:  # the wheel is not installed: say so, time the rest
        print(f"HiFi-GAN rows skipped: {e}")
        vocoders = []
    if vocoders:
        generator = vocoders[0][1].generator
        with torch.no_grad():
            t = median_seconds(lambda: generator(mel), device, repeats)
            reference = generator(mel)[0, 0]
        rows.append(row("HiFi-GAN plain", t, reference.numel(), "; the generator as written, float32"))
        if device.type == "cpu":
            direct = FastHiFiGAN(generator, torch.float32)
            t = median_seconds(lambda: direct(mel), device, repeats)
            snr = snr_db(reference, direct(mel)[0])
            rows.append(row("HiFi-GAN fp32 direct", t, reference.numel(),
                            f"; prepared weights, direct convolutions; SNR vs plain {snr:.1f} dB"))
    for variant, vocoder in vocoders:
        t = median_seconds(lambda: vocoder(mel, lengths), device, repeats)
        audio = vocoder(mel, lengths)[0]
        swapped = getattr(vocoder.engine, "winograd_layers", 0)
        winograd = f"; Winograd in {swapped} convolutions" if swapped else ""
        rows.append(row(variant, t, audio.numel(), f"; SNR vs plain {snr_db(reference, audio):.1f} dB{winograd}"))
    for iters, momentum in ((60, 0.0), (GRIFFIN_LIM_ITERS, GRIFFIN_LIM_MOMENTUM)):
        griffin_lim = GriffinLimVocoder(AudioConfig(), device, n_iters=iters, momentum=momentum)
        t = median_seconds(lambda: griffin_lim(mel, lengths), device, repeats)
        rows.append(row(f"Griffin-Lim {iters}" + (f" momentum {momentum}" if momentum else ""), t, frames * 256))
    return rows


def end_to_end_rows(device, frames: int, repeats: int, reference: Reference = None,
                    phrase_file: str = "phrases/phrase_1_128.txt") -> List[Dict[str, object]]:
    """test_infer.py's case: the phrase, text -> audio at batch 1 with WaveGlow WN 256 and the denoiser, fp32 and as
    --amp-run picks, then with HiFi-GAN (the published universal weights); random Tacotron 2 and WaveGlow weights
    whose gate never fires, so that every run decodes exactly `frames` frames. The latency of the whole phrase, its
    real-time factor (seconds of audio per second, the convention of NVIDIA's README) and the time until the first
    streamed audio chunk."""
    import copy
    from common.timing import first_item_seconds
    from synthesis import build_synthesizer, read_phrases
    from tacotron2.text.frontend import TextFrontend
    torch.manual_seed(0)
    t2_config = full_config("Tacotron2", max_decoder_steps=frames, gate_threshold=2.0)
    t2 = Tacotron2(**t2_config).eval()
    wg, wg_config = models.random_waveglow(256)
    phrase = read_phrases(phrase_file, TextFrontend("characters"))[0]
    group = f"end to end, {os.path.splitext(os.path.basename(phrase_file))[0]}, {frames} frames, WN 256"
    sequence = torch.tensor([phrase.sequence])
    ref_job = ("end_to_end", {"tacotron2": t2_config, "waveglow": wg_config},
               {"tacotron2": t2.state_dict(), "waveglow": wg.state_dict()},
               {"sequence": sequence, "lengths": torch.tensor([sequence.size(1)]), "sigma": SIGMA_INFER, "strength": 0.01})
    ref_before = reference(*ref_job) if reference else None
    rows = []
    audio_seconds = frames * 256 / 22050
    hifigan_group = f"end to end, {os.path.splitext(os.path.basename(phrase_file))[0]}, {frames} frames, HiFi-GAN"
    int8 = [(group, "waveglow", "--amp-run --waveglow-int8", True, True)] if device.type == "cpu" and int8_available() else []
    for group_name, vocoder, variant, amp, wg_int8 in ((group, "waveglow", "fp32", False, False),
                                                       (group, "waveglow", "--amp-run", True, False), *int8,
                                                       (hifigan_group, "hifigan", "fp32", False, False),
                                                       (hifigan_group, "hifigan", "--amp-run", True, False)):
        try:
            synth = build_synthesizer(copy.deepcopy(t2).to(device), copy.deepcopy(wg).to(device), device, amp=amp,
                                      vocoder=vocoder, waveglow_int8=wg_int8)
        except RuntimeError as e:  # HiFi-GAN's wheel is not installed
            print(f"end-to-end {vocoder} rows skipped: {e}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            latency = median_seconds(lambda: synth([phrase]), device, repeats)
            first = first_item_seconds(lambda: synth.stream(phrase), device, repeats)
        rows.append({"group": group_name, "variant": variant, "value": latency, "unit": "s", "lower_is_better": True,
                     "note": f"RTF {audio_seconds / latency:.2f}; first audio chunk after {first:.2f} s "
                             f"(streaming); {', '.join(synth.chosen_fast_paths().values()) or 'plain'}"})
    if reference:
        seconds = min(ref_before, reference(*ref_job))
        rows.insert(sum(r["group"] == group for r in rows),  # after the WaveGlow rows it compares with
                    {"group": group, "variant": "reference", "value": seconds, "unit": "s", "lower_is_better": True,
                     "note": f"NVIDIA's inference.py --cpu path (Tacotron 2, WaveGlow, denoiser), fp32; "
                             f"RTF {audio_seconds / seconds:.2f}; no streaming: first audio at the end"})
    return rows


def _train_step_fn(model, criterion, batch, target, device, amp: bool, fused: bool):
    """One optimizer step as train.py takes it (Adam, fused or not; --amp-run's autocast type: fp16 on GPU, bf16
    on a CPU with native bf16, none on one without)."""
    optimizer = make_adam(model.parameters(), 1e-4, 0.0, device, fused)
    dtype, _ = amp_settings(amp, device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            loss = criterion(model(batch), target)
        loss.backward()
        optimizer.step()
    return step


def cpu_training_kernels(model: Tacotron2, by_kind: bool) -> str:
    """Give `model`'s float32 CPU training step the kernels its CPU kind's rules choose (by_kind) or the other
    ones: the encoder's and postnet's convolutions by Winograd's algorithm or direct, the teacher-forced LSTM
    products through MKL or oneDNN (common/cpu/cpu_features.py). Returns a note naming them."""
    convs = [m for part in (model.encoder, model.postnet) for m in part.modules() if isinstance(m, ConvNorm)]
    winograd = 0
    for conv in convs:
        rule = winograd_rule_for(conv.conv)
        conv.winograd = None if by_kind else not rule
        winograd += rule == by_kind
    onednn = onednn_by_kind(model.decoder) == by_kind
    model.decoder.teacher_forcing_onednn = None if by_kind else onednn
    whose = "the CPU kind's" if by_kind else "the other"
    return (f"{whose} kernels: Winograd in {winograd} of {len(convs)} "
            f"convolutions, LSTM products by {'oneDNN' if onednn else 'MKL'}")


def tacotron2_training_batch(device, T_in: int, T_out: int, B: int = 8):
    """A batch of random text and mels (every item full length) and the step's targets (mels, gate)."""
    text = torch.randint(12, 60, (B, T_in), device=device)
    mels = torch.randn(B, 80, T_out, device=device) - 5
    gate = torch.zeros(B, T_out, device=device)
    gate[:, -1] = 1
    x = (text, torch.full((B,), T_in, device=device), mels, T_in, torch.full((B,), T_out, device=device))
    return x, (mels, gate)


def training_rows(device, repeats: int, reference: Reference = None, warmup: int = TRAIN_WARMUP
                  ) -> List[Dict[str, object]]:
    rows = []
    torch.manual_seed(0)
    t2_config = full_config("Tacotron2")
    t2 = Tacotron2(**t2_config).to(device).train()
    crit = get_loss_function("Tacotron2")
    B, T_in, T_out = 8, 100, 400
    x, target = tacotron2_training_batch(device, T_in, T_out, B)
    group = "Tacotron 2 training, batch 8, 400 frames"
    ref_job = ("tacotron2_train", t2_config, {k: v.cpu().clone() for k, v in t2.state_dict().items()},
               {"batch": tuple(t.cpu() if torch.is_tensor(t) else t for t in x),
                "target": tuple(t.cpu() for t in target)})
    ref_before = reference(*ref_job, warmup=warmup) if reference else None
    # plain: autograd's loop; deferred: its LSTM weight gradients once per sequence (autocast's path too); fast: the
    # hand-written backward of tacotron2/teacher_forcing.py where it applies (float32 on a CPU), else deferred; on a
    # CPU the fast float32 step with the CPU kind's kernels and with the others
    variants = (("plain fp32", False, False, False, ""),
                ("deferred fp32", True, False, False, "deferred LSTM weight grads, fused Adam"),
                ("fast fp32", True, None, False, "hand-written decoder backward, fused Adam"),
                *([("fast fp32, other kernels", True, None, False, "hand-written decoder backward, fused Adam")]
                  if device.type == "cpu" else []),
                ("fast amp", True, None, True, "hand-written decoder backward (bf16 LSTM products), fused Adam"))
    for variant, deferred, engine, amp, note in variants:
        t2.decoder.deferred_weight_grads = deferred
        t2.decoder.teacher_forcing_engine = engine
        if device.type == "cpu" and variant.startswith("fast fp32"):
            note += "; " + cpu_training_kernels(t2, by_kind=variant == "fast fp32")
        t = median_seconds(_train_step_fn(t2, crit, x, target, device, amp, fused=deferred), device, repeats, warmup)
        cpu_training_kernels(t2, by_kind=True)
        rows.append({"group": group, "variant": variant, "value": B * T_out / t, "unit": "mels/s",
                     "lower_is_better": False, "note": note})
    if reference:
        rows.append(reference_row(group, "mels/s", False, min(ref_before, reference(*ref_job, warmup=warmup)),
                                  B * T_out))
    if device.type == "cpu":  # the demo's small model (bash scripts/demo.sh), its typical batch: 70 symbols, 400 frames
        with open(SMALL_TACOTRON2_CONFIG) as f:
            small = Tacotron2(**full_config("Tacotron2", **{k: v for k, v in json.load(f).items()
                                                            if k in t2_config})).train()
        x, target = tacotron2_training_batch(device, 70, 400, B)
        group = "Tacotron 2 training, the demo's small model, batch 8, 400 frames"
        for variant in ("fast fp32", "fast fp32, other kernels"):
            note = cpu_training_kernels(small, by_kind=variant == "fast fp32")
            t = median_seconds(_train_step_fn(small, crit, x, target, device, False, True), device, repeats, warmup)
            rows.append({"group": group, "variant": variant, "value": B * 400 / t, "unit": "mels/s",
                         "lower_is_better": False, "note": note})
    wg_config = full_config("WaveGlow", WN_config={"n_layers": 8, "kernel_size": 3, "n_channels": 256})
    wg = WaveGlow(**wg_config).to(device).train()
    audio = torch.rand(2, 8000, device=device) * 0.2 - 0.1
    wmel = torch.randn(2, 80, 8000 // 256 + 1, device=device) - 5
    wcrit = get_loss_function("WaveGlow")
    group = "WaveGlow WN 256 training, batch 2, segment 8000"
    ref_job = ("waveglow_train", wg_config, {k: v.cpu().clone() for k, v in wg.state_dict().items()},
               {"batch": (wmel.cpu(), audio.cpu()), "target": audio.cpu()})
    ref_before = reference(*ref_job, warmup=warmup) if reference else None
    # winograd: None is the CPU kind's choice (what train.py runs); the other choice is timed too, on a CPU
    by_kind = device.type == "cpu" and winograd_trains_faster(wg.WN[0].n_channels)
    other = ([("fast fp32 " + ("direct" if by_kind else "Winograd"), True, False, not by_kind)]
             if device.type == "cpu" else [])
    for variant, fused, amp, winograd in (("plain fp32", False, False, False), ("fast fp32", True, False, None), *other,
                                          ("fast amp", True, True, None)):
        for wn in wg.WN:
            wn.winograd = winograd
        uses = (by_kind if winograd is None else winograd) and amp_settings(amp, device)[0] is None  # float32 only
        t = median_seconds(_train_step_fn(wg, wcrit, (wmel, audio), audio, device, amp, fused), device, repeats,
                           warmup)
        rows.append({"group": group, "variant": variant,
                     "value": audio.numel() / t, "unit": "samples/s", "lower_is_better": False,
                     "note": ", ".join((["fused Adam"] if fused else [])
                                       + (["Winograd's dilated convolutions"] if uses else []))})
    if reference:
        rows.append(reference_row(group, "samples/s", False, min(ref_before, reference(*ref_job, warmup=warmup)),
                                  audio.numel()))
    return rows


def print_table(rows: List[Dict[str, object]]) -> None:
    """Rows with their speed-up against the group's first (plain) row and, where measured, the reference's row."""
    base: Dict[str, float] = {}
    refs = {r["group"]: r["value"] for r in rows if r["variant"] == "reference"}
    print(f"{'measurement':<52} {'variant':<10} {'value':>12} {'unit':<10} {'vs plain':>8}"
          + (f" {'vs ref':>7}" if refs else "") + "  note")
    for r in rows:
        base.setdefault(r["group"], r["value"])

        def speedup(other: float) -> float:
            return (other / r["value"]) if r["lower_is_better"] else (r["value"] / other)
        vs_ref = (f" {speedup(refs[r['group']]):>6.2f}x" if r["group"] in refs else f" {'':>7}") if refs else ""
        print(f"{r['group']:<52} {r['variant']:<10} {r['value']:>12,.2f} {r['unit']:<10} "
              f"{speedup(base[r['group']]):>7.2f}x{vs_ref}  {r['note']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps (smoke run)")
    parser.add_argument("--skip-training", action="store_true", help="the same as leaving 'training' out of --cases")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES, help="which groups of rows to time")
    parser.add_argument("--threads", type=COUNT, default=None)
    parser.add_argument("--wav", default=None, help="a speech wav whose mel drives WaveGlow (default: random mel)")
    parser.add_argument("--reference-dir", default=None,
                        help="NVIDIA's Tacotron2 folder: time the reference on the same weights, side by side")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    keep_freed_memory(device)  # as train.py and inference.py do on a CPU; the reference's processes run as shipped
    repeats = 1 if args.quick else 3
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    if device.type == "cpu":
        print(f"CPU: {describe_cpu()}; --amp-run trains in {dtype_name(amp_settings(True, device)[0] or torch.float32)}"
              f"{'' if low_precision(device) else '; no bf16 rows (it would only be emulated)'}")
    peaks = [("float32", torch.float32), *low_precision(device)]
    print("matrix-product peak (2048^3): " + ", ".join(f"{name} {gemm_gflops(device, dtype):,.0f} GFLOP/s"
                                                       for name, dtype in peaks))
    reference = reference_timer(args.reference_dir, repeats) if args.reference_dir else None
    rows = []
    if "decoder" in args.cases:
        rows += tacotron2_rows(device, steps=20 if args.quick else 200, repeats=repeats, reference=reference)
    if "waveglow" in args.cases:
        rows += waveglow_rows(device, frames=80, repeats=repeats, channels=[256] if args.quick else [512, 256],
                              wav=args.wav, reference=reference)
    if "vocoders" in args.cases:
        rows += vocoder_rows(device, frames=40 if args.quick else 200, repeats=repeats, wav=args.wav)
    if "end-to-end" in args.cases:
        rows += end_to_end_rows(device, frames=60 if args.quick else 300, repeats=repeats, reference=reference)
    if "training" in args.cases and not args.skip_training:
        rows += training_rows(device, repeats, reference, warmup=1 if args.quick else TRAIN_WARMUP)
    print_table(rows)


if __name__ == "__main__":
    main()
