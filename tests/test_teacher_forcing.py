"""tacotron2/teacher_forcing.py: the teacher-forced loop with a hand-written backward, held to autograd's loop."""
import pytest
import torch

from common.cpu import lstm
from tacotron2 import teacher_forcing
from tacotron2.model import Tacotron2

from .conftest import TINY_TACOTRON2


def _pass(model, engine, r=1, seed=5, amp_dtype=None, onednn=None):
    """Outputs and every parameter's gradient of one training pass with a fixed draw of the dropout masks; the loss
    reads the mels, the gate and the alignments (as the guided-attention loss does)."""
    model.decoder.teacher_forcing_engine = engine
    model.decoder.teacher_forcing_onednn = onednn
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    text = torch.randint(12, 60, (3, 9))
    lengths = torch.tensor([9, 7, 4])
    mels = torch.randn(3, 20, 12 * r)
    with torch.autocast("cpu", dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
        mel, mel_post, gate, alignments = model((text, lengths, mels, 9, torch.tensor([12, 10, 7]) * r))
        position = torch.linspace(0, 1, alignments.size(2))
        loss = ((mel - mels).abs().mean() + (mel_post - mels).pow(2).mean() + gate.float().pow(2).mean()
                + (alignments.float() * position).pow(2).sum())
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return (mel_post.detach().float(), gate.detach().float(), alignments.detach().float()), grads


@pytest.mark.parametrize("r, onednn", [(1, True), (3, True), (3, False)])
def test_engine_equals_autograds_loop_values_and_gradients(r, onednn):
    """onednn: the LSTMs' products through oneDNN's linear or MKL's sgemm (common/cpu/linear.py), the same values."""
    torch.manual_seed(0)
    model = Tacotron2(**{**TINY_TACOTRON2, "n_frames_per_step": r}).train()  # dropout on: the same masks drawn
    plain_out, plain = _pass(model, engine=False, r=r)
    engine_out, engine = _pass(model, engine=True, r=r, onednn=onednn)
    for a, b in zip(plain_out, engine_out):
        assert torch.allclose(a, b, atol=1e-5)
    assert set(plain) == set(engine) and len(plain) == len(list(model.parameters()))
    scale = max(g.norm() for g in plain.values())
    errors = {n: ((engine[n] - g).norm() / g.norm()).item() for n, g in plain.items() if g.norm() > 1e-6 * scale}
    for name in ("decoder.attention_rnn.weight_hh", "decoder.decoder_rnn.bias_ih",
                 "decoder.attention_layer.location_layer.location_conv.conv.weight",
                 "decoder.attention_layer.location_layer.location_dense.linear_layer.weight",
                 "decoder.attention_layer.v.linear_layer.weight", "decoder.attention_layer.query_layer.linear_layer.weight",
                 "decoder.attention_layer.memory_layer.linear_layer.weight", "decoder.prenet.layers.0.linear_layer.weight",
                 "embedding.weight"):
        assert name in errors
    assert max(errors.values()) < 1e-4, max(errors.items(), key=lambda kv: kv[1])
    # a different dropout draw moves them: the agreement above is not an accident of the masks
    other_out, _ = _pass(model, engine=True, r=r, seed=6, onednn=onednn)
    assert not torch.allclose(other_out[0], engine_out[0], atol=1e-3)


def test_engine_applies_only_where_meant():
    model = Tacotron2(**TINY_TACOTRON2).train()
    memory = torch.zeros(1, 3, 16)
    assert teacher_forcing.applies(model.decoder, memory)
    model.decoder.teacher_forcing_engine = False
    assert not teacher_forcing.applies(model.decoder, memory)
    model.decoder.teacher_forcing_engine = None
    with torch.no_grad():
        assert not teacher_forcing.applies(model.decoder, memory)
    with torch.autocast("cpu", dtype=torch.float16):
        assert not teacher_forcing.applies(model.decoder, memory)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert teacher_forcing.applies(model.decoder, memory)
    model.decoder.attention_rnn.weight_ih.requires_grad_(False)  # a frozen part: autograd's loop knows what to skip
    assert not teacher_forcing.applies(model.decoder, memory)


@pytest.mark.parametrize("capability, threads, amp_dtype, expected", [
    ("AVX2", 1, None, False), ("AVX2", 2, None, True), ("AVX512", 1, None, True), ("AVX512", 1, torch.bfloat16, True)])
def test_the_products_kernels_follow_the_cpu_kind(monkeypatch, capability, threads, amp_dtype, expected):
    """A rule, not a timing (every process of a run computes alike): MKL's sgemm for float32 on the AVX2 kind on one
    thread with weights that stay in cache, where it was measured 1.5x faster at batch 8; oneDNN elsewhere, for
    bfloat16 and for NVIDIA's full-size matrices; the decoder's attribute overrides it. Every product of the
    forward and the backward takes the same kernel."""
    from common.cpu import cpu_features
    from common.cpu.linear import linear
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    calls = []

    def spy(x, weight, bias=None, onednn=True):
        calls.append(onednn)
        return linear(x, weight, bias, onednn=onednn)

    monkeypatch.setattr(teacher_forcing, "linear", spy)
    model = Tacotron2(**TINY_TACOTRON2).train()
    _pass(model, engine=True, amp_dtype=amp_dtype)
    assert calls and set(calls) == {expected}
    calls.clear()
    _pass(model, engine=True, amp_dtype=amp_dtype, onednn=not expected)
    assert set(calls) == {not expected or amp_dtype is not None}
    # NVIDIA's decoder LSTM, (4096, 2560) float32: oneDNN's, on any kind
    assert cpu_features.onednn_trains_faster(4096 * 2560 * 4, 1)


def test_lstm_update_backward_is_autograds():
    torch.manual_seed(0)
    gates = torch.randn(4, 12, dtype=torch.float64, requires_grad=True)
    cell = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    d_h, d_c = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    h, c = lstm.update(gates, cell)
    expected = torch.autograd.grad((h * d_h).sum() + (c * d_c).sum(), (gates, cell))
    with torch.no_grad():
        got = lstm.update_backward(d_h, d_c, lstm.update_parts(gates, cell), cell)
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("K", [3, 15, 31])
def test_location_layer_as_products_is_the_convolution(K):
    """The folded location layer's forward and input gradient, written as products and diagonal sums, are
    F.conv1d's and F.conv_transpose1d's (also for a kernel longer than the text)."""
    import torch.nn.functional as F
    from tacotron2.folded_attention import location_features, location_features_backward
    torch.manual_seed(K)
    weights_cat = torch.rand(3, 2, 11, dtype=torch.float64)
    loc_W = torch.randn(5, 2, K, dtype=torch.float64)
    d_location = torch.randn(3, 5, 11, dtype=torch.float64)
    assert torch.allclose(location_features(weights_cat, loc_W), F.conv1d(weights_cat, loc_W, padding=K // 2))
    assert torch.allclose(location_features_backward(d_location, loc_W),
                          F.conv_transpose1d(d_location, loc_W, padding=K // 2))


def test_sigmoid_form_tanh_is_tanh():
    from tacotron2.folded_attention import tanh
    x = torch.linspace(-20, 20, 10001)
    assert (tanh(x) - torch.tanh(x)).abs().max() < 3e-7


def test_engine_under_bf16_autocast_is_as_close_to_float32_as_autograds_loop():
    """--amp-run on a CPU: the LSTMs' products in bfloat16, the rest float32; every gradient at least as close to
    the float32 one as autograd's loop under the same autocast, or within 1e-2."""
    torch.manual_seed(0)
    model = Tacotron2(**TINY_TACOTRON2).train()
    _, exact = _pass(model, engine=False)
    _, plain = _pass(model, engine=False, amp_dtype=torch.bfloat16)
    _, engine = _pass(model, engine=True, amp_dtype=torch.bfloat16)
    decoder = [n for n in exact if n.startswith("decoder.") and exact[n].norm() > 0]
    assert len(decoder) >= 12
    for n in decoder:
        assert engine[n].dtype == torch.float32 and torch.isfinite(engine[n]).all()
        err_engine = ((engine[n] - exact[n]).norm() / exact[n].norm()).item()
        err_plain = ((plain[n] - exact[n]).norm() / exact[n].norm()).item()
        assert err_engine < max(2 * err_plain, 1e-2), (n, err_engine, err_plain)
