"""Whole pickled WaveGlows, as NVIDIA's stand-alone waveglow repository publishes them, in both of its layouts:
refused by the loaders, converted once with --trust, and giving the same audio after conversion."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import models
from common.checkpoint import CheckpointError, load_checkpoint_file

from .conftest import TINY_WAVEGLOW

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A stand-in for NVIDIA/waveglow's glow.py, in its module and class names: convolutions carry torch's weight-norm
# hooks, and `fused` keeps one conditioning convolution per flow (cond_layer, 2 C L rows) instead of cond_layers.
GLOW = textwrap.dedent('''
    import torch
    from waveglow import model as ours


    def _torch_weight_norm(conv):
        plain = conv.fold() if isinstance(conv, ours.WeightNormConv1d) else conv
        return torch.nn.utils.weight_norm(plain, name="weight")


    class Invertible1x1Conv(ours.Invertible1x1Conv):
        pass


    class WN(ours.WN):
        def __init__(self, *args, fused=False, **kwargs):
            super().__init__(*args, **kwargs)
            self.fused = fused
            self.start = _torch_weight_norm(self.start)
            self.in_layers = torch.nn.ModuleList(_torch_weight_norm(c) for c in self.in_layers)
            self.res_skip_layers = torch.nn.ModuleList(_torch_weight_norm(c) for c in self.res_skip_layers)
            torch.nn.init.normal_(self.end.weight, std=0.05)
            if fused:
                folded = [c.fold() for c in self.cond_layers]
                cond = torch.nn.Conv1d(folded[0].in_channels, 2 * self.n_channels * self.n_layers, 1)
                with torch.no_grad():
                    cond.weight.copy_(torch.cat([c.weight for c in folded]))
                    cond.bias.copy_(torch.cat([c.bias for c in folded]))
                self.cond_layer = torch.nn.utils.weight_norm(cond, name="weight")
                del self.cond_layers
            else:
                self.cond_layers = torch.nn.ModuleList(_torch_weight_norm(c) for c in self.cond_layers)

        def forward(self, forward_input):
            audio, spect = forward_input
            audio = self.start(audio)
            cond = self.cond_layer(spect) if self.fused else None
            output = 0
            C = self.n_channels
            for i in range(self.n_layers):
                c = cond[:, 2 * C * i:2 * C * (i + 1)] if self.fused else self.cond_layers[i](spect)
                acts = ours.fused_add_tanh_sigmoid_multiply(self.in_layers[i](audio), c, C)
                res_skip = self.res_skip_layers[i](acts)
                if i < self.n_layers - 1:
                    audio = audio + res_skip[:, :C]
                    output = output + res_skip[:, C:]
                else:
                    output = output + res_skip
            return self.end(output)


    class WaveGlow(ours.WaveGlow):
        def __init__(self, fused=False, **config):
            super().__init__(**config)
            for k, wn in enumerate(self.WN):
                self.WN[k] = WN(wn.start.weight_v.shape[1], config["n_mel_channels"] * self.n_group,
                                fused=fused, **config["WN_config"])
            self.convinv = torch.nn.ModuleList(Invertible1x1Conv(c.conv.weight.shape[0]) for c in self.convinv)
''')


def _pickled_waveglow(folder, fused: bool) -> str:
    """Write glow.py to `folder`, build a glow.WaveGlow and torch.save it whole, as {'model': ..., 'iteration'}."""
    with open(os.path.join(folder, "glow.py"), "w") as f:
        f.write(GLOW)
    path = os.path.join(folder, f"waveglow_{'fused' if fused else 'published'}.pt")
    script = (f"import sys, torch; sys.path.insert(0, {str(folder)!r}); import glow; torch.manual_seed(0); "
              f"m = glow.WaveGlow(fused={fused}, **{TINY_WAVEGLOW!r}); "
              f"torch.save({{'model': m, 'iteration': 5}}, {path!r})")
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=120)
    return path


def _convert(*argv):
    return subprocess.run([sys.executable, "-m", "scripts.convert_checkpoint", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("fused", [False, True])
def test_pickled_waveglow_is_refused_then_converted_to_the_same_audio(tmp_path, fused):
    src = _pickled_waveglow(tmp_path, fused)
    with pytest.raises(CheckpointError, match="convert_checkpoint --trust"):
        models.load_model(src, "WaveGlow", torch.device("cpu"))
    out = str(tmp_path / "converted.pt")
    refused = _convert(src, out)
    assert refused.returncode != 0 and "--trust" in refused.stderr and not os.path.exists(out)
    # with the original's code at hand, the converter compares the audio itself
    checked = _convert("--trust", "--source-dir", str(tmp_path), src, out)
    assert checked.returncode == 0, checked.stderr
    assert "output check: converted vs original audio" in checked.stdout
    os.remove(out)
    # without it (a user who does not have that repository), the weights still come over exactly
    blind = _convert("--trust", src, out)
    assert blind.returncode == 0, blind.stderr
    assert "output check skipped" in blind.stdout
    ckpt = load_checkpoint_file(out)  # weights_only: the converted file is safe to load
    assert ckpt["model_name"] == "WaveGlow" and ckpt["config"]["WN_config"] == TINY_WAVEGLOW["WN_config"]
    ours, _ = models.load_model(out, "WaveGlow", torch.device("cpu"))
    sys.path.insert(0, str(tmp_path))
    try:
        sys.modules.pop("glow", None)
        original = torch.load(src, weights_only=False)["model"].eval()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("glow", None)
    mel = torch.randn(2, TINY_WAVEGLOW["n_mel_channels"], 10) - 4
    noise = [torch.randn(s) for s in ours.noise_shapes(2, 10 * 256 // TINY_WAVEGLOW["n_group"])]
    with torch.no_grad():
        a = original.infer(mel, 0.6, noise=noise)
        b = ours.infer(mel, 0.6, noise=noise)
    assert a.abs().max() > 0 and torch.allclose(a, b, atol=1e-5 * float(a.abs().max()))


def test_converter_refuses_a_mismatch_of_the_audio(tmp_path, monkeypatch):
    """The output check can fail: a conversion that changed a weight is not written."""
    from scripts import convert_checkpoint as cc
    src = _pickled_waveglow(tmp_path, fused=True)
    real = cc.split_fused_conditioning

    def corrupt(sd):
        out = real(sd)
        out["WN.0.cond_layers.1.bias"] = out["WN.0.cond_layers.1.bias"] + 0.5
        return out
    monkeypatch.setattr(cc, "split_fused_conditioning", corrupt)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = str(tmp_path / "bad.pt")
    with pytest.raises(SystemExit, match="differs from the original"):
        cc.main(["--trust", "--source-dir", str(tmp_path), src, out])
    sys.modules.pop("glow", None)
    assert not os.path.exists(out)
