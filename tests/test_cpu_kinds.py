"""Every CPU path on an x86-64 CPU without AVX-512 or bfloat16 (an AMD Zen 3, say), emulated on this one by
scripts/emulate_avx2.sh, and the choices that depend on what the CPU has."""
import os
import subprocess
import sys

import torch

import synthesis
from common.training import amp
from common.cpu import cpu_features
from common.cpu.linear import int8_available

from .conftest import REPO
from .corpus import train_argv

# the tests whose kernels depend on the instruction set: fused engines, int8/bf16 products, inference end to end
CPU_PRECISION_TESTS = ["tests/test_fast_paths.py", "tests/test_inference.py", "tests/test_waveglow.py",
                       "tests/test_tacotron2.py"]


def _emulated(argv, timeout=600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", os.path.join(REPO, "scripts", "emulate_avx2.sh"), sys.executable, *argv],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, **kw)


def test_the_emulation_caps_every_library():
    code = ("import torch; from common.cpu import cpu_features; from common.cpu.linear import onednn_available; "
            "print(torch.backends.cpu.get_cpu_capability(), cpu_features.bf16_native(), "
            "onednn_available(torch.bfloat16), onednn_available(torch.float32))")
    proc = _emulated(["-c", code])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["AVX2", "False", "False", "True"]


def test_cpu_precision_tests_pass_under_avx2_emulation():
    proc = _emulated(["-m", "pytest", "-q", "-p", "no:cacheprovider", *CPU_PRECISION_TESTS], timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:]


def test_amp_run_trains_in_float32_where_the_cpu_has_no_bf16(corpus, tmp_path):
    """--amp-run on an AVX2 CPU: float32, said so in the log, and the run finishes (it crashed in oneDNN's
    bf16 linear before)."""
    proc = _emulated(["train.py", *train_argv(corpus, "Tacotron2", str(tmp_path / "t2"), "--amp-run", epochs=1)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("--amp-run: float32 on this CPU (AVX2, no native bfloat16; --amp-dtype bf16 forces bf16, emulated and "
            "slow)") in proc.stdout
    assert os.path.exists(tmp_path / "t2" / "checkpoint_Tacotron2_last.pt")


def test_amp_settings_follow_what_the_cpu_has(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(amp, "bf16_native", lambda: True)
    assert amp.amp_settings(True, cpu)[0] == torch.bfloat16
    monkeypatch.setattr(amp, "bf16_native", lambda: False)
    assert amp.amp_settings(True, cpu)[0] is None and not amp.amp_settings(True, cpu)[1].is_enabled()
    assert amp.amp_settings(True, cpu, "bf16")[0] == torch.bfloat16  # asked for by name
    assert amp.amp_settings(False, cpu)[0] is None


def test_the_inference_policy_offers_bf16_only_where_the_cpu_has_it(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(synthesis, "bf16_native", lambda: False)
    policy = synthesis.precision_policy(cpu, True)
    assert torch.bfloat16 not in policy.decoder_dtypes and torch.bfloat16 not in policy.waveglow_dtypes
    assert policy.label == ("INT8 where faster" if int8_available() else "FP32")
    assert (torch.qint8 in policy.decoder_dtypes) == int8_available() and torch.qint8 not in policy.waveglow_dtypes
    for amp in (True, False):  # WaveGlow in int8 only when asked for, then nothing else
        assert synthesis.precision_policy(cpu, amp, waveglow_int8=True).waveglow_dtypes == (torch.qint8,)
    monkeypatch.setattr(synthesis, "bf16_native", lambda: True)
    policy = synthesis.precision_policy(cpu, True)
    assert torch.bfloat16 in policy.decoder_dtypes and torch.bfloat16 in policy.waveglow_dtypes
    assert policy.label.startswith("BF16")


def test_bf16_native_reads_the_instruction_set_where_torch_cannot(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    with open("/proc/cpuinfo") as f:
        flags = next(line for line in f if line.startswith("flags")).split()
    assert cpu_features._has("_is_avx512_bf16_supported", "avx512_bf16") == ("avx512_bf16" in flags)
