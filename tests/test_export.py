"""Exported TorchScript / ONNX models reproduce the eager ones on inputs of other lengths."""
import warnings

import pytest
import torch

import export
from tacotron2.model import Tacotron2
from waveglow.model import WaveGlow

from .conftest import TINY_TACOTRON2, TINY_WAVEGLOW


@pytest.mark.parametrize("onnx", [False, True])
def test_tacotron2_exported_parts_match_eager(tmp_path, onnx):
    """TorchScript parts, and ONNX parts through onnxruntime as NVIDIA exports them (encoder, decoder step,
    postnet), on another batch and other lengths than traced, texts unsorted."""
    if onnx:
        pytest.importorskip("onnxruntime", reason="onnxruntime not installed (requirements.txt lists it)")
    torch.manual_seed(0)
    model = Tacotron2(**{**TINY_TACOTRON2, "max_decoder_steps": 25, "n_frames_per_step": 2}).eval()
    export.export_tacotron2(model, str(tmp_path), onnx=onnx)
    assert not any(m.training for m in model.modules())  # exporting leaves the model as it was
    exported = export.ExportedTacotron2(str(tmp_path), max_decoder_steps=25, onnx=onnx)
    text = torch.randint(12, 60, (3, 34))  # other batch and length than traced, padded beyond the longest
    lengths = torch.tensor([20, 31, 9])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mel, mel_lengths, _ = model.infer(text, lengths)
    mel_s, lengths_s = exported(text, lengths)
    assert torch.equal(mel_lengths, lengths_s)
    assert torch.allclose(mel, mel_s, atol=1e-5 if not onnx else 1e-4), (mel - mel_s).abs().max()


@pytest.fixture
def waveglow():
    torch.manual_seed(0)
    model = WaveGlow(**TINY_WAVEGLOW).eval()
    for wn in model.WN:
        torch.nn.init.normal_(wn.end.weight, std=0.05)
    return model


def test_waveglow_torchscript_matches_eager(waveglow, tmp_path):
    export.export_waveglow(waveglow, str(tmp_path), sigma=0.6)
    traced = torch.jit.load(str(tmp_path / "waveglow.pt"))
    mel = torch.randn(2, 20, 13)
    noise = [torch.randn(s) for s in waveglow.noise_shapes(2, 13 * 32)]
    with torch.no_grad():
        eager = waveglow.infer(mel, 0.6, noise=noise)
        assert torch.allclose(traced(mel, *noise), eager, atol=1e-5)


def test_waveglow_onnx_matches_eager(waveglow, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (requirements.txt lists it)")
    pytest.importorskip("onnx")
    export.export_waveglow(waveglow, str(tmp_path), sigma=0.6, onnx=True)
    session = ort.InferenceSession(str(tmp_path / "waveglow.onnx"), providers=["CPUExecutionProvider"])
    mel = torch.randn(1, 20, 11)
    noise = [torch.randn(s) for s in waveglow.noise_shapes(1, 11 * 32)]
    feeds = {"mel": mel.numpy(), **{f"z{i}": z.numpy() for i, z in enumerate(noise)}}
    (audio,) = session.run(["audio"], feeds)
    with torch.no_grad():
        eager = waveglow.infer(mel, 0.6, noise=noise)
    assert audio.shape == tuple(eager.shape)
    assert abs(torch.from_numpy(audio) - eager).max() < 1e-4
