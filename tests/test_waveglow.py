"""WaveGlow against the reference goldens: the flow, its inverse, weight norm, the loss."""
import json
import math

import pytest
import torch

from waveglow.denoiser import Denoiser
from waveglow.loss_function import WaveGlowLoss
from waveglow.model import WaveGlow

from .conftest import TINY_WAVEGLOW, assert_close_rel, load_reference, reference_file


@pytest.fixture(scope="module")
def golden():
    return load_reference("waveglow_small.pt")


def golden_state_dict(golden):
    sd = dict(golden["state_dict_without_upsample_weight"])
    f = golden["upsample_weight_factors"]
    sd["upsample.weight"] = f["u"][:, :, None] * f["v"][None, None, :]
    return sd


def _golden_model(golden):
    model = WaveGlow(**golden["config"])
    model.load_state_dict(golden_state_dict(golden))
    return model.eval()


@pytest.fixture(scope="module")
def published_listing():
    with open(reference_file("waveglow_state_dict.json")) as f:
        return json.load(f)


def _meta_model(config):
    with torch.device("meta"):
        return WaveGlow(**config)


def test_default_state_dict_matches_published(published_listing):
    ref = published_listing
    model = _meta_model(ref["config"])
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(ref["state_dict"]) and ours == ref["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == ref["n_parameters"]
    model.remove_weightnorm()
    folded = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(folded) == list(ref["state_dict_after_remove_weightnorm"])
    assert folded == ref["state_dict_after_remove_weightnorm"]


def test_published_256_channel_variant(published_listing):
    (variant,) = published_listing["variants"].values()
    model = _meta_model(variant["config"])
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == variant["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == variant["n_parameters"] == 87879272


def test_forward_and_loss_match_golden(golden):
    model = _golden_model(golden)
    assert list(model.state_dict()) == golden["state_dict_keys_in_order"]
    i = golden["inputs"]
    with torch.no_grad():
        z, log_s_list, log_det_W_list = model((i["mel"], i["audio"]))
    ref = golden["forward_outputs"]
    assert_close_rel(z, ref["z"], name="z")
    for ours, theirs in zip(log_s_list, ref["log_s_list"]):
        assert_close_rel(ours, theirs, name="log_s")
    for ours, theirs in zip(log_det_W_list, ref["log_det_W_list"]):
        assert_close_rel(ours, theirs, name="log_det_W")
    before = [t.clone() for t in log_det_W_list]
    loss = WaveGlowLoss(golden["loss_sigma"])((z, log_s_list, log_det_W_list), i["audio"])
    assert abs(loss.item() - float(golden["loss"])) <= 1e-6
    assert all(torch.equal(a, b) for a, b in zip(before, log_det_W_list))  # outputs not mutated


def test_inverse_matches_golden_with_recorded_noise_and_seed(golden):
    model = _golden_model(golden)
    ref = golden["infer"]
    mel = golden["inputs"]["mel"]
    with torch.no_grad():
        audio = model.infer(mel, sigma=ref["sigma"], noise=ref["noise_in_draw_order"])
        assert_close_rel(audio, ref["audio"], name="noise")
        torch.manual_seed(ref["torch_manual_seed_before_call"])
        assert_close_rel(model.infer(mel, sigma=ref["sigma"]), ref["audio"], name="seeded")
        model.remove_weightnorm()
        assert {k: list(v.shape) for k, v in model.state_dict().items()} == \
            {k: list(v) for k, v in ref["state_dict_after_remove_weightnorm_shapes"].items()}
        torch.manual_seed(ref["torch_manual_seed_before_call"])
        assert_close_rel(model.infer(mel, sigma=ref["sigma"]), ref["audio_after_remove_weightnorm"], name="folded")


def test_denoiser_matches_golden(golden):
    ref = golden["denoiser"]
    denoiser = Denoiser(_golden_model(golden))
    assert_close_rel(denoiser.bias_spec, ref["bias_spec"], name="bias_spec")
    for strength in (0.01, 0.1):
        out = denoiser(ref["input_audio"], strength=strength)
        assert (out - ref[f"output_audio_strength_{strength}"]).abs().max() <= 1e-5


def _tiny():
    torch.manual_seed(0)
    model = WaveGlow(**TINY_WAVEGLOW)
    # random end layers so that the couplings are not the identity
    for wn in model.WN:
        torch.nn.init.normal_(wn.end.weight, std=0.05)
    return model.eval()


def test_inverse_of_forward_returns_the_audio():
    model = _tiny()
    n_frames = 6
    mel = torch.randn(2, 20, n_frames)
    audio = torch.rand(2, n_frames * 256) * 2 - 1  # infer of F frames also yields F * 256 samples
    with torch.no_grad():
        z, _, _ = model((mel, audio))
        # forward emits early channels in flow order, infer draws them in reverse after the remainder
        n_early = model.n_early_size
        early = [z[:, k:k + n_early] for k in range(0, z.size(1) - model.n_remaining_channels, n_early)]
        noise = [z[:, -model.n_remaining_channels:]] + list(reversed(early))
        assert [tuple(t.shape) for t in noise] == model.noise_shapes(2, z.size(2))
        restored = model.infer(mel, sigma=1.0, noise=noise)
    assert restored.shape == audio.shape
    assert torch.allclose(restored, audio, atol=1e-4)


def test_random_waveglow_is_seeded_and_its_couplings_act():
    """models.random_waveglow, the benchmark's and the round trip's model: the same weights on every call, and end
    layers drawn so that its couplings change the audio (a new WaveGlow's are zero: every coupling the identity)."""
    import copy
    import models
    model, config = models.random_waveglow(32)
    again, _ = models.random_waveglow(32)
    assert config["WN_config"]["n_channels"] == 32 and not model.training
    for (name, x), y in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(x, y), name
    identity = copy.deepcopy(model)
    for wn in identity.WN:
        torch.nn.init.zeros_(wn.end.weight)
    mel, audio = torch.randn(1, 80, 4) - 5, torch.rand(1, 4 * 256) * 2 - 1
    with torch.no_grad():
        z, log_s, _ = model((mel, audio))
        z_identity, log_s_identity, _ = identity((mel, audio))
    assert all(float(s.abs().max()) == 0 for s in log_s_identity)
    assert min(float(s.abs().max()) for s in log_s) > 1e-4
    assert float((z - z_identity).abs().max()) > 1e-3


def test_remove_weightnorm_keeps_outputs():
    model = _tiny()
    mel = torch.randn(1, 20, 5)
    with torch.no_grad():
        torch.manual_seed(3)
        a = model.infer(mel, sigma=0.7)
        model.remove_weightnorm()
        torch.manual_seed(3)
        b = model.infer(mel, sigma=0.7)
    assert torch.allclose(a, b, atol=1e-6)
    assert not any("weight_g" in k for k in model.state_dict())


def test_weight_norm_is_torchs_bit_for_bit_with_gradients():
    """The reference trains with torch.nn.utils.weight_norm: our kernel, and the gradients of g and v, are its numbers
    exactly (spelling the formula out in autograd ops differs in the last bits)."""
    from waveglow.model import WeightNormConv1d

    torch.manual_seed(0)
    ours = WeightNormConv1d(24, 48, kernel_size=3, dilation=2, padding=2)
    with torch.no_grad():
        ours.weight_g.mul_(torch.rand_like(ours.weight_g) + 0.5)
    theirs = torch.nn.Conv1d(24, 48, 3, dilation=2, padding=2)
    with pytest.warns(FutureWarning):
        theirs = torch.nn.utils.weight_norm(theirs)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 24, 37)
    ours(x).square().sum().backward()
    theirs(x).square().sum().backward()
    assert torch.equal(ours.weight(), theirs.weight)
    for name in ("weight_g", "weight_v", "bias"):
        assert torch.equal(getattr(ours, name).grad, getattr(theirs, name).grad), name


def test_log_det_is_finite_for_negative_determinant():
    model = _tiny()
    with torch.no_grad():
        model.convinv[0].conv.weight[:, 0] *= -1
    _, _, log_det = model((torch.randn(1, 20, 3), torch.rand(1, 512) - 0.5))
    assert all(torch.isfinite(t) for t in log_det)


def test_denoiser_reduces_a_bias_tone():
    """A vocoder whose output for silence is a 1 kHz tone: the denoiser removes most of that tone."""
    model = _tiny()

    def tone(n):
        return 0.1 * torch.sin(2 * math.pi * 1000 * torch.arange(n) / 22050)[None]

    class ToneGlow(torch.nn.Module):
        upsample = model.upsample

        def infer(self, mel, sigma=1.0):
            return tone(mel.size(2) * 256).repeat(mel.size(0), 1)

    denoiser = Denoiser(ToneGlow())
    speech_like = torch.randn(1, 8192) * 0.01
    noisy = speech_like + tone(8192)
    n = 8192 // 256 * 256
    assert torch.allclose(denoiser(noisy, strength=0.0)[0, 0], noisy[0, :n], atol=1e-5)
    cleaned = denoiser(noisy, strength=1.0)[0, 0]
    before = (noisy[0, :n] - speech_like[0, :n]).pow(2).mean()
    after = (cleaned - speech_like[0, :n]).pow(2).mean()
    assert after < 0.3 * before


def test_denoiser_handles_audio_shorter_than_a_window():
    denoiser = Denoiser(_tiny())
    out = denoiser(torch.randn(2, 256) * 0.1, strength=0.01)
    assert out.shape == (2, 1, 256) and torch.isfinite(out).all()
