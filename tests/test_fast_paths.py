"""Fast inference paths equal the plain ones; chunked vocoding equals one-shot away from the seams."""
import warnings

import pytest
import torch

from tacotron2.model import Tacotron2
from waveglow.model import WaveGlow

from .conftest import TINY_TACOTRON2, TINY_WAVEGLOW


def _waveglow(**overrides):
    torch.manual_seed(0)
    model = WaveGlow(**{**TINY_WAVEGLOW, **overrides}).eval()
    for wn in model.WN:
        torch.nn.init.normal_(wn.end.weight, std=0.05)
    return model


@pytest.mark.parametrize("fold_first", [False, True])
def test_fast_waveglow_equals_plain(fold_first):
    model = _waveglow()
    if fold_first:
        model.remove_weightnorm()
    mel = torch.randn(2, 20, 12)
    noise = [torch.randn(s) for s in model.noise_shapes(2, 12 * 32)]
    with torch.no_grad():
        plain = model.infer(mel, 0.7, noise=noise)
        model.set_fast_inference(torch.float32)
        fast = model.infer(mel, 0.7, noise=noise)
        model.set_fast_inference(torch.bfloat16)
        bf16 = model.infer(mel, 0.7, noise=noise)
    assert torch.allclose(fast, plain, atol=1e-5 * plain.abs().max().item() + 1e-6)
    snr = 10 * torch.log10(plain.pow(2).sum() / (plain - bf16).pow(2).sum())
    assert snr > 30  # dB
    assert bf16.dtype == torch.float32


def test_fast_waveglow_follows_weight_changes_only_when_prepared_again():
    model = _waveglow()
    mel = torch.randn(1, 20, 6)
    noise = [torch.randn(s) for s in model.noise_shapes(1, 6 * 32)]
    with torch.no_grad():
        model.set_fast_inference(torch.float32)
        before = model.infer(mel, 0.5, noise=noise)
        model.convinv[0].conv.weight.mul_(1.1)
        model.set_fast_inference(torch.float32)
        fast = model.infer(mel, 0.5, noise=noise)
        model.set_fast_inference(None)
        plain = model.infer(mel, 0.5, noise=noise)
    assert not torch.allclose(before, plain) and torch.allclose(fast, plain, atol=1e-5)


@pytest.mark.parametrize("r", [1, 2])
def test_fast_decoder_equals_plain(r):
    torch.manual_seed(0)
    model = Tacotron2(**{**TINY_TACOTRON2, "n_frames_per_step": r, "max_decoder_steps": 15}).eval()
    model.set_prenet_dropout(False)
    text = torch.randint(12, 60, (3, 11))
    lengths = torch.tensor([11, 8, 5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = model.generate(text, lengths)
        model.set_fast_inference(torch.float32)
        fast = model.generate(text, lengths)
        model.set_fast_inference(torch.bfloat16)
        bf16 = model.generate(text, lengths)
    for a, b in zip(plain, fast):
        if a.is_floating_point():
            assert torch.allclose(a, b, atol=1e-5), a.shape
        else:
            assert torch.equal(a, b)
    rel = (bf16.mel_outputs_postnet - plain.mel_outputs_postnet).abs().max() / plain.mel_outputs_postnet.abs().max()
    assert rel < 0.05


def test_fast_decoder_is_not_used_in_training():
    torch.manual_seed(0)
    model = Tacotron2(**TINY_TACOTRON2)
    model.set_fast_inference(torch.float32)
    text = torch.randint(12, 60, (2, 7))
    mels = torch.randn(2, 20, 8)
    out = model((text, torch.tensor([7, 6]), mels, 7, torch.tensor([8, 8])))
    out[0].sum().backward()
    assert model.decoder.attention_rnn.weight_ih.grad is not None


def test_chunked_vocoding_matches_one_shot():
    model = _waveglow()
    model.remove_weightnorm()
    mel = torch.randn(1, 20, 40)
    noise = [torch.randn(s) for s in model.noise_shapes(1, 40 * 32)]
    with torch.no_grad():
        whole = model.infer(mel, 0.6, noise=noise)
        pieces = list(model.infer_chunks(mel, 0.6, chunk_frames=10, overlap_frames=4, noise=noise))
    chunked = torch.cat(pieces, dim=1)
    assert [p.size(1) for p in pieces] == [2560] * 4 and chunked.shape == whole.shape
    seams = [10 * 256, 20 * 256, 30 * 256]
    away = torch.ones(whole.size(1), dtype=torch.bool)
    for s in seams:
        away[s - 512:s + 512] = False
    assert torch.allclose(chunked[:, away], whole[:, away], atol=1e-4)
    assert (chunked - whole).abs().max() < 0.05 * whole.abs().max()
