"""Exported TorchScript / ONNX models reproduce the eager ones on inputs of other lengths."""
import warnings

import pytest
import torch

import export
from common.checkpoint import save_training_checkpoint
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


def _latent(waveglow, batch: int, frames: int):
    """One (B, n_group, groups) latent as NVIDIA's exported WaveGlow takes it, and the same numbers as the list of
    draws `infer` takes (the remaining channels first, then each early output's)."""
    groups = frames * 256 // waveglow.n_group
    z = torch.randn(batch, waveglow.n_group, groups)
    sizes = [s[1] for s in waveglow.noise_shapes(batch, groups)]
    return z, list(torch.split(z, sizes, dim=1))


def test_waveglow_torchscript_matches_eager(waveglow, tmp_path):
    export.export_waveglow(waveglow, str(tmp_path), sigma=0.6)
    traced = torch.jit.load(str(tmp_path / "waveglow.pt"))
    mel = torch.randn(2, 20, 13)
    z, noise = _latent(waveglow, 2, 13)
    with torch.no_grad():
        eager = waveglow.infer(mel, 0.6, noise=noise)
        assert torch.allclose(traced(mel, z), eager, atol=1e-5)


def test_waveglow_onnx_matches_eager(waveglow, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (requirements.txt lists it)")
    pytest.importorskip("onnx")
    export.export_waveglow(waveglow, str(tmp_path), sigma=0.6, onnx=True)
    session = ort.InferenceSession(str(tmp_path / "waveglow.onnx"), providers=["CPUExecutionProvider"])
    mel = torch.randn(1, 20, 11)
    z, noise = _latent(waveglow, 1, 11)
    (audio,) = session.run(["audio"], {"mel": mel.numpy(), "z": z.numpy()})
    with torch.no_grad():
        eager = waveglow.infer(mel, 0.6, noise=noise)
    assert audio.shape == tuple(eager.shape)
    assert abs(torch.from_numpy(audio) - eager).max() < 1e-4


def test_onnx_parts_carry_the_names_nvidias_tensorrt_scripts_build_from(tmp_path, capsys):
    """NVIDIA's convert_onnx2trt.py sets its optimisation profiles by input name (sequences, sequence_lengths;
    decoder_input ... mask; mel_outputs; mel, z) on encoder.onnx, decoder_iter.onnx, postnet.onnx, waveglow.onnx."""
    onnx = pytest.importorskip("onnx")
    torch.manual_seed(0)
    paths = {}
    for name, cls, config in (("Tacotron2", Tacotron2, TINY_TACOTRON2), ("WaveGlow", WaveGlow, TINY_WAVEGLOW)):
        paths[name] = str(tmp_path / f"{name}.pt")
        save_training_checkpoint(paths[name], model=cls(**config), model_name=name, config=config, epoch=0,
                                 iteration=0)
    out = tmp_path / "exported"
    assert export.main(["--tacotron2", paths["Tacotron2"], "--waveglow", paths["WaveGlow"], "-o", str(out),
                        "--onnx"]) == 0
    printed = capsys.readouterr().out
    expected = {"encoder.onnx": (["sequences", "sequence_lengths"], ["memory", "processed_memory"]),
                "decoder_iter.onnx": (["decoder_input", "attention_hidden", "attention_cell", "decoder_hidden",
                                       "decoder_cell", "attention_weights", "attention_weights_cum",
                                       "attention_context", "memory", "processed_memory", "mask"],
                                      ["decoder_output", "gate_prediction", "out_attention_hidden",
                                       "out_attention_cell", "out_decoder_hidden", "out_decoder_cell",
                                       "out_attention_weights", "out_attention_weights_cum",
                                       "out_attention_context"]),
                "postnet.onnx": (["mel_outputs"], ["mel_outputs_postnet"]),
                "waveglow.onnx": (["mel", "z"], ["audio"])}
    for name, (inputs, outputs) in expected.items():
        graph = onnx.load(str(out / name)).graph
        assert [i.name for i in graph.input] == inputs, name
        assert [o.name for o in graph.output] == outputs, name
        assert f"wrote {out / name}" in printed  # export.py says what it wrote
    assert f"wrote {out / 'waveglow.pt'}" in printed
