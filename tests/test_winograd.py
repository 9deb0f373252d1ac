"""Winograd's 1-D convolutions (common/cpu/winograd.py) against direct ones, and where the vocoders adopt them."""
import pytest
import torch

from common.audio import snr_db
from common.cpu import winograd
from common.cpu.winograd import WinogradConv, tile, tiles_fit, winograd_conv, winograd_matrices


@pytest.mark.parametrize("m, r", [(2, 3), (tile(3), 3), (4, 7), (tile(7), 7), (2, 11), (tile(11), 11), (tile(5), 5)])
def test_the_transforms_compute_the_correlation_exactly_in_float64(m, r):
    G, BT, AT = winograd_matrices(m, r)
    n = m + r - 1
    assert G.shape == (n, r) and BT.shape == (n, n) and AT.shape == (m, n)
    generator = torch.Generator().manual_seed(m * 100 + r)
    g = torch.randn(r, dtype=torch.float64, generator=generator)
    d = torch.randn(n, dtype=torch.float64, generator=generator)
    direct = torch.stack([(g * d[i:i + r]).sum() for i in range(m)])
    assert torch.allclose(AT @ ((G @ g) * (BT @ d)), direct, rtol=0, atol=1e-9)


def test_a_tile_that_needs_more_points_than_defined_is_refused():
    with pytest.raises(ValueError, match=r"F\(8, 11\) needs 17 interpolation points"):
        winograd_matrices(8, 11)


@pytest.mark.parametrize("batch, c_in, c_out, length, r, dilation, padding, m", [
    (1, 16, 24, 101, 3, 1, 1, None),  # the default tile, "same" padding, one phase
    (2, 16, 8, 97, 7, 3, 9, 8),  # a batch, three phases, a length no tile divides
    (3, 8, 8, 60, 11, 5, 25, 6),  # five phases, each shorter than a tile
    (1, 8, 8, 60, 11, 5, 3, 6),  # padding that shortens the output
    (2, 16, 16, 33, 3, 2, 0, 4),  # no padding
])
def test_winograd_conv_equals_conv1d_within_float32_rounding(batch, c_in, c_out, length, r, dilation, padding, m):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(c_in, c_out, r, padding=padding, dilation=dilation)
    x = torch.randn(batch, c_in, length)
    with torch.no_grad():
        direct = conv(x)
        y = WinogradConv.from_conv(conv, m)(x.unsqueeze(2).contiguous(memory_format=torch.channels_last))
    assert y.shape == (batch, c_out, 1, direct.size(2)) and y.is_contiguous(memory_format=torch.channels_last)
    tolerance = 1e-4 if r == 11 else 5e-5  # the transforms' constants grow with n = m + r - 1 (tile()'s figures)
    assert ((y[:, :, 0] - direct).norm() / direct.norm()).item() < tolerance


def _graph_nodes_named(t: torch.Tensor, part: str) -> int:
    """How many nodes of t's autograd graph have `part` in their name."""
    seen, stack = set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(n for n, _ in node.next_functions)
    return sum(part in type(n).__name__ for n in seen)


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours - theirs).norm() / theirs.norm()).item()


@pytest.mark.parametrize("batch, c_in, c_out, length, r, dilation, padding", [
    (2, 16, 32, 101, 3, 1, 1),  # WaveGlow's in_layers: "same" padding
    (2, 16, 32, 100, 3, 8, 8),  # eight phases, a length no tile divides
    (1, 8, 16, 30, 3, 16, 16),  # a dilation longer than a tile: most of each tile is padding
    (2, 8, 8, 97, 7, 3, 5),  # seven taps, padding that shortens the output
])
def test_winograd_trains_with_the_direct_convolutions_values_and_gradients(batch, c_in, c_out, length, r, dilation,
                                                                           padding):
    """winograd_conv's forward and its backward (input, weight and bias gradients through the same transforms) are
    a direct convolution's within float32 rounding; the input's gradient comes channels-last, as the input."""
    torch.manual_seed(0)
    weight = (torch.randn(c_out, c_in, r) / (c_in * r) ** 0.5).requires_grad_()
    bias = torch.randn(c_out, requires_grad=True)
    x = torch.randn(batch, c_in, 1, length).contiguous(memory_format=torch.channels_last).requires_grad_()
    direct = torch.nn.functional.conv2d(x, weight.unsqueeze(2), bias, padding=(0, padding), dilation=(1, dilation))
    ours = winograd_conv(x, weight, bias, padding, dilation)
    assert ours.shape == direct.shape and ours.is_contiguous(memory_format=torch.channels_last)
    assert relative_error(ours, direct) < 5e-5
    up = torch.randn_like(direct)
    theirs = torch.autograd.grad(direct, (x, weight, bias), up)
    grads = torch.autograd.grad(ours, (x, weight, bias), up)
    assert grads[0].is_contiguous(memory_format=torch.channels_last)
    for name, a, b in zip(("input", "weight", "bias"), grads, theirs):
        assert a.shape == b.shape and relative_error(a, b) < 5e-5, name


def test_winograd_training_without_a_bias_or_an_input_gradient():
    torch.manual_seed(0)
    weight = torch.randn(8, 4, 3, requires_grad=True)
    x = torch.randn(1, 4, 1, 40).contiguous(memory_format=torch.channels_last)
    ours = winograd_conv(x, weight, None, 2, 2)
    direct = torch.nn.functional.conv2d(x, weight.unsqueeze(2), padding=(0, 2), dilation=(1, 2))
    up = torch.randn_like(direct)
    (grad,) = torch.autograd.grad(ours, weight, up)
    assert relative_error(grad, torch.autograd.grad(direct, weight, up)[0]) < 5e-5


def test_strided_or_grouped_convolutions_are_refused():
    with pytest.raises(ValueError, match="stride-1"):
        WinogradConv.from_conv(torch.nn.Conv1d(4, 4, 3, stride=2))
    with pytest.raises(ValueError, match="ungrouped"):
        WinogradConv.from_conv(torch.nn.Conv1d(4, 4, 3, groups=2))


def small_generator():
    from hifigan.model import Generator, HiFiGANConfig
    torch.manual_seed(0)
    return Generator(HiFiGANConfig(upsample_initial_channel=32)).eval()


@pytest.mark.parametrize("winograd_wins", [True, False])
def test_hifigan_adopts_winograd_exactly_where_it_is_timed_faster(monkeypatch, winograd_wins):
    """Every stride-1 multi-tap float32 convolution is timed once per shape, swapped when Winograd's is faster,
    left when not; the audio stays within float32 rounding of the generator's either way."""
    import hifigan.fast_inference as fast_inference
    timed = fake_timing(monkeypatch, winograd_wins)
    generator = small_generator()
    eligible = [m for m in generator.modules() if isinstance(m, torch.nn.Conv1d) and m.kernel_size[0] > 1]
    fast = fast_inference.FastHiFiGAN(generator, torch.float32, winograd=True)
    shapes = {(m.in_channels, m.out_channels, m.kernel_size, m.dilation) for m in eligible}
    assert len(timed) == len(shapes) and all(t == ["direct", "winograd"] for t in timed)
    assert fast.winograd_layers == (len(eligible) if winograd_wins else 0)
    assert fast.convolution_ms == {"direct": 1e3 * 2 * len(eligible) if winograd_wins else 1e3 * len(eligible),
                                   "winograd where faster": 1e3 * len(eligible)}
    mel = torch.randn(2, 80, 20) - 5
    with torch.no_grad():
        reference = generator(mel)[:, 0]
    assert snr_db(reference, fast(mel)) > 80
    assert not any(isinstance(m, WinogradConv) for m in fast_inference.FastHiFiGAN(generator).generator.modules())


def test_winograd_is_float32_only():
    from hifigan.fast_inference import FastHiFiGAN
    with pytest.raises(ValueError, match="float32 only"):
        FastHiFiGAN(small_generator(), torch.bfloat16, winograd=True)


def fake_timing(monkeypatch, winograd_wins: bool) -> list:
    """common.cpu.winograd's timing replaced by a verdict; returns the list of timed candidate names."""
    import common.cpu.winograd as winograd
    timed = []

    def fake_fastest(candidates, device, repeats):
        timed.append(sorted(candidates))
        seconds = {"direct": 2.0, "winograd": 1.0} if winograd_wins else {"direct": 1.0, "winograd": 2.0}
        return min(seconds, key=seconds.get), seconds
    monkeypatch.setattr(winograd, "fastest", fake_fastest)
    return timed


@pytest.mark.parametrize("winograd_wins", [True, False])
def test_waveglow_adopts_winograd_at_the_dilations_where_it_is_timed_faster(monkeypatch, winograd_wins):
    """Each dilation of the coupling networks' dilated convolutions is timed once for all flows; where Winograd's
    wins every flow's layer at that dilation is a WinogradConv, and the audio stays within float32 rounding."""
    import models
    from waveglow.fast_inference import FastWaveGlow
    timed = fake_timing(monkeypatch, winograd_wins)
    torch.manual_seed(0)
    model, _ = models.random_waveglow(16)
    model.remove_weightnorm()
    mel = torch.randn(1, 80, 6) - 5
    noise = [torch.randn(s) for s in model.noise_shapes(1, 6 * 256 // 8)]
    fast = FastWaveGlow(model, torch.float32, winograd=True)
    dilations = {layer.dilation[0] for layer in model.WN[0].in_layers}
    assert len(timed) == len(dilations) > 1
    swapped = sum(isinstance(layer, WinogradConv) for flow in fast.flows for layer in flow.in_layers)
    assert swapped == (model.n_flows * len(model.WN[0].in_layers) if winograd_wins else 0)
    with torch.no_grad():
        plain = model.infer(mel, 0.6, noise=noise)
        audio = fast.infer(mel, 0.6, noise=noise)
    assert snr_db(plain, audio) > 80
    with pytest.raises(ValueError, match="float32 only"):
        FastWaveGlow(model, torch.bfloat16, winograd=True)


@pytest.mark.parametrize("capability, channels, expected", [("AVX2", 64, True), ("AVX2", 32, False),
                                                                ("AVX512", 256, False), ("DEFAULT", 256, False)])
def test_waveglow_trains_by_winograd_on_the_cpu_kinds_where_it_was_measured_faster(monkeypatch, capability, channels,
                                                                                   expected):
    """A rule, not a timing: a training step's kernels must be the same in every process of a run (exact resume).
    A WN's `winograd` overrides it; only float32 steps with a backward pass on a CPU use it."""
    from common.cpu import cpu_features
    from waveglow import cpu_layout
    from waveglow.model import WaveGlow
    from tests.conftest import TINY_WAVEGLOW
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert cpu_features.winograd_trains_faster(channels) is expected
    config = dict(TINY_WAVEGLOW, WN_config=dict(TINY_WAVEGLOW["WN_config"], n_channels=channels))
    wn = WaveGlow(**config).WN[0]
    x = torch.randn(1, 2, 8)
    assert cpu_layout.choose(x, wn).winograd is expected
    with torch.no_grad():
        assert cpu_layout.choose(x, wn).winograd is False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cpu_layout.choose(x, wn).winograd is False
    assert cpu_layout.choose(torch.randn(1, 2, 8, device="meta"), wn).winograd is False
    wn.winograd = not expected
    assert cpu_layout.choose(x, wn).winograd is (not expected)


def test_a_waveglow_training_step_by_winograd_is_the_direct_ones_within_rounding():
    """The loss and every parameter's gradient (through weight norm) of one WaveGlow step, Winograd's dilated
    convolutions against direct ones."""
    import copy
    from loss_functions import get_loss_function
    from waveglow.model import WaveGlow
    from tests.conftest import TINY_WAVEGLOW
    torch.manual_seed(0)
    model = WaveGlow(**TINY_WAVEGLOW)
    for p in model.parameters():
        p.data.add_(torch.randn_like(p) * 0.05)  # the end layers start at zero, which would hide the layers before them
    audio = torch.rand(2, 640) * 0.2 - 0.1
    mel = torch.randn(2, TINY_WAVEGLOW["n_mel_channels"], 640 // 256 + 1) - 5
    loss_fn = get_loss_function("WaveGlow")
    results = []
    for winograd in (False, True):
        m = copy.deepcopy(model)
        for wn in m.WN:
            wn.winograd = winograd
        loss = loss_fn(m((mel, audio)), audio)
        loss.backward()
        results.append((loss.item(), {n: p.grad for n, p in m.named_parameters()}))
    (direct_loss, direct), (ours_loss, ours) = results
    assert ours_loss == pytest.approx(direct_loss, rel=1e-5)
    assert set(ours) == set(direct)
    in_layer_grads = [n for n in ours if ".in_layers." in n and direct[n].norm() > 0]
    assert in_layer_grads
    for name in ours:
        if direct[name].norm() > 0:
            assert relative_error(ours[name], direct[name]) < 1e-4, name


def test_training_keeps_direct_convolutions_where_the_tiles_would_be_mostly_padding():
    """At WaveGlow's segment 8000 (1,000 rows) every dilation up to 128 fits F(8, 3)'s tiles; at 500 rows dilation
    128 would pad one tile to 1,024 rows, and the layer computes directly (its grad_fn says which)."""
    from waveglow import cpu_layout
    assert all(tiles_fit(1000, d, d, 3) for d in (1, 2, 4, 8, 16, 32, 64, 128))
    assert tiles_fit(500, 64, 64, 3) and not tiles_fit(500, 128, 128, 3)
    layout = cpu_layout.Layout(channels_last=True, backward=True, winograd=True)
    weight = torch.randn(8, 4, 3, requires_grad=True)
    for length, dilation, winograd in ((500, 64, True), (500, 128, False)):
        x = torch.randn(1, 4, 1, length).contiguous(memory_format=torch.channels_last)
        name = type(layout.conv(x, weight, None, dilation, dilation).grad_fn).__name__
        assert ("Winograd" in name) is winograd, name


@pytest.mark.parametrize("capability, channels, expected", [("AVX2", 64, True), ("AVX2", 32, False),
                                                                ("AVX512", 256, False), ("DEFAULT", 256, False)])
def test_tacotron2_convolutions_train_by_winograd_on_the_cpu_kinds_where_it_was_measured_faster(
        monkeypatch, capability, channels, expected):
    """The encoder's and postnet's 5-tap convolutions (ConvNorm) follow WaveGlow's rule, by their narrower side
    (a postnet's 80 -> 128 counts as 80); only float32 steps with a backward pass on a CPU use it, and a layer's
    `winograd` overrides the rule. The grad_fn says which computation ran."""
    from common.layers import ConvNorm
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    conv = ConvNorm(channels, 2 * channels, kernel_size=5)
    x = torch.randn(2, channels, 40)

    def by_winograd() -> bool:
        return _graph_nodes_named(conv(x), "Winograd") == 1

    assert by_winograd() is expected
    with torch.enable_grad():  # either way, the direct convolution's values
        assert relative_error(conv(x), conv.conv(x)) < 1e-5
    with torch.no_grad():
        assert conv(x).grad_fn is None and not winograd.trains_by_winograd(x, conv.conv, True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not winograd.trains_by_winograd(x, conv.conv, True)
    conv.winograd = not expected
    assert by_winograd() is (not expected)
    strided = ConvNorm(channels, channels, kernel_size=5, stride=2)
    strided.winograd = True
    assert _graph_nodes_named(strided(x), "Winograd") == 0


def test_a_tacotron2_training_step_by_winograd_is_the_direct_ones_within_rounding():
    """The loss and every parameter's gradient of one Tacotron 2 step (dropout on, the same draws), its encoder's and
    postnet's convolutions by Winograd against direct ones. Winograd's output is channels-last rows, which the
    BatchNorm, dropout and residual layers after it take as they are."""
    import copy
    from common.layers import ConvNorm
    from loss_functions import get_loss_function
    from tacotron2.model import Tacotron2
    from tests.conftest import TINY_TACOTRON2
    torch.manual_seed(0)
    model = Tacotron2(**TINY_TACOTRON2).train()
    # lengths whose F(8, 5) tiles fit (common/cpu/winograd.tiles_fit)
    text, lengths = torch.randint(12, 60, (3, 40)), torch.tensor([40, 31, 17])
    mels, gate = torch.randn(3, 20, 48), torch.zeros(3, 48)
    results = []
    for choice in (False, True):
        m = copy.deepcopy(model)
        convs = [c for c in m.modules() if isinstance(c, ConvNorm) and c.conv.kernel_size[0] == 5]
        assert len(convs) == 8
        for c in convs:
            c.winograd = choice
        torch.manual_seed(1)
        out = m((text, lengths, mels, 40, torch.tensor([48, 40, 29])))
        assert _graph_nodes_named(out[1], "Winograd") == (8 if choice else 0)
        loss = get_loss_function("Tacotron2")(out, (mels, gate))
        loss.backward()
        results.append((loss.item(), {n: p.grad for n, p in m.named_parameters() if p.grad is not None}))
    (direct_loss, direct), (ours_loss, ours) = results
    assert ours_loss == pytest.approx(direct_loss, rel=1e-5)
    assert set(ours) == set(direct)
    # a convolution's bias before BatchNorm has a gradient of zero but for rounding: left out, by scale
    scale = max(g.norm() for g in direct.values())
    compared = [n for n in ours if direct[n].norm() > 1e-5 * scale]
    assert "postnet.convolutions.0.0.conv.weight" in compared and "encoder.convolutions.2.0.conv.weight" in compared
    for name in compared:
        assert relative_error(ours[name], direct[name]) < 1e-4, name
