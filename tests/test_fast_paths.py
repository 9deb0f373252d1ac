"""Fast inference paths equal the plain ones; chunked vocoding equals one-shot away from the seams."""
import warnings

import pytest
import torch
import torch.nn.functional as F

from common.cpu.linear import Int8Weight, int8_available, int8_weight, onednn_available
from tacotron2.fast_inference import FastDecoder, tune_decoder
from tacotron2.static_decoder import StaticDecoder
from tacotron2.model import Tacotron2
from waveglow import fast_inference
from waveglow.autograd import gated_activation, sigmoid_gate
from waveglow.fast_inference import FastWaveGlow, Int8Conv, tune_waveglow
from waveglow.upsample import product_weight, upsample
from waveglow import cpu_layout
from waveglow.model import WaveGlow, _fold_weightnorm

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
        fast = FastWaveGlow(model, torch.float32).infer(mel, 0.7, noise=noise)
        bf16 = FastWaveGlow(model, torch.bfloat16).infer(mel, 0.7, noise=noise)
    assert torch.allclose(fast, plain, atol=1e-5 * plain.abs().max().item() + 1e-6)
    snr = 10 * torch.log10(plain.pow(2).sum() / (plain - bf16).pow(2).sum())
    assert snr > 30  # dB
    assert bf16.dtype == torch.float32


def test_sigmoid_gate_is_the_gated_activation_on_doubled_tanh_rows():
    """autograd.sigmoid_gate on inputs whose tanh half is doubled equals tanh(a + b) * sigmoid(a + b) in float32."""
    torch.manual_seed(0)
    a, b = torch.randn(2, 16, 1, 50) * 3, torch.randn(2, 16, 1, 50)
    doubled = torch.cat([torch.full((8,), 2.0), torch.ones(8)])[None, :, None, None]
    want = gated_activation(a, b, 8)
    got = sigmoid_gate((a * doubled).contiguous(memory_format=torch.channels_last), b * doubled, 8)
    assert got.shape == want.shape == (2, 8, 1, 50)
    assert (got - want).abs().max() < 1e-6


@pytest.mark.skipif(not int8_available(), reason="this torch build has no x86/fbgemm quantized engine")
def test_int8_waveglow_stays_close_to_float32():
    """The coupling networks in int8 (fbgemm products, 7-bit inputs on CPUs without VNNI): audio within 25 dB SNR
    of float32 (the benchmark's full-size models: 34-44 dB), each convolution an int8 product, float32 out; a
    dilated convolution's taps side by side give conv1d's result."""
    model = _waveglow()
    model.remove_weightnorm()
    mel = torch.randn(2, 20, 12)
    noise = [torch.randn(s) for s in model.noise_shapes(2, 12 * 32)]
    engine = FastWaveGlow(model, torch.qint8)
    assert engine.name == "qint8"
    assert all(isinstance(layer, Int8Conv) for layer in engine.flows[0].in_layers + engine.flows[0].cond_layers)
    with torch.no_grad():
        plain = model.infer(mel, 0.7, noise=noise)
        int8 = engine.infer(mel, 0.7, noise=noise)
        conv = model.WN[0].in_layers[1]  # kernel 3, dilation 2
        x = torch.randn(2, conv.in_channels, 30)
        got = fast_inference._int8_conv(fast_inference._prepared(conv, torch.qint8), cpu_layout.CHANNELS_LAST.enter(x))
        want = F.conv1d(x, conv.weight, conv.bias, padding=conv.padding, dilation=conv.dilation)
    assert int8.dtype == torch.float32 and int8.shape == plain.shape
    snr = 10 * torch.log10(plain.pow(2).sum() / (plain - int8).pow(2).sum())
    assert 25 < snr < 100  # dB: close, and not float32 (the int8 products really ran)
    assert conv.dilation == (2,) and got.shape == (2, conv.out_channels, 1, 30)
    assert (got[:, :, 0] - want).abs().max() < 0.03 * want.abs().max()


def test_fast_engines_refuse_to_run_on_weights_that_changed_since_they_were_built():
    """An engine is a snapshot: after an optimizer step or load_state_dict it must be built again, not run stale."""
    model = _waveglow()
    mel = torch.randn(1, 20, 6)
    noise = [torch.randn(s) for s in model.noise_shapes(1, 6 * 32)]
    with torch.no_grad():
        engine = FastWaveGlow(model, torch.float32)
        before = engine.infer(mel, 0.5, noise=noise)
        model.convinv[0].conv.weight.mul_(1.1)
        with pytest.raises(RuntimeError, match="changed"):
            engine.infer(mel, 0.5, noise=noise)
        fast = FastWaveGlow(model, torch.float32).infer(mel, 0.5, noise=noise)
        plain = model.infer(mel, 0.5, noise=noise)
    assert not torch.allclose(before, plain) and torch.allclose(fast, plain, atol=1e-5)
    t2, text, lengths = _gated_model(1.2)
    decoder = FastDecoder(t2.decoder, torch.float32)
    t2.generate(text, lengths, decode=decoder.infer)
    t2.load_state_dict({k: v + 0.01 if v.is_floating_point() else v for k, v in t2.state_dict().items()})
    with pytest.raises(RuntimeError, match="changed"):
        t2.generate(text, lengths, decode=decoder.infer)


@pytest.mark.parametrize("r", [1, 2])
def test_fast_decoder_equals_plain(r):
    torch.manual_seed(0)
    model = Tacotron2(**{**TINY_TACOTRON2, "n_frames_per_step": r, "max_decoder_steps": 15}).eval()
    model.set_modes(prenet_dropout=False)
    text = torch.randint(12, 60, (3, 11))
    lengths = torch.tensor([11, 8, 5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = model.generate(text, lengths)
        fast = model.generate(text, lengths, decode=FastDecoder(model.decoder, torch.float32).infer)
        bf16 = model.generate(text, lengths, decode=FastDecoder(model.decoder, torch.bfloat16).infer)
    for a, b in zip(plain, fast):
        if a.is_floating_point():
            assert torch.allclose(a, b, atol=1e-5), a.shape
        else:
            assert torch.equal(a, b)
    rel = (bf16.mel_outputs_postnet - plain.mel_outputs_postnet).abs().max() / plain.mel_outputs_postnet.abs().max()
    assert rel < 0.05


@pytest.mark.skipif(not int8_available(), reason="this torch build has no x86/fbgemm quantized engine")
def test_fused_lstm_step_is_torchs_lstm_cell():
    """common/cpu/lstm.py, which both engines build their LSTM steps on, computes nn.LSTMCell's function."""
    from common.cpu import lstm
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(12, 7)
    x, h, c = torch.randn(3, 12), torch.randn(3, 7), torch.randn(3, 7)
    W, b = lstm.fused_weights(cell)
    ours = lstm.update(F.linear(torch.cat((x, h), 1), W, b), c)
    for got, want in zip(ours, cell(x, (h, c))):
        assert torch.allclose(got, want, atol=1e-6)


def test_fast_decoder_step_is_the_decoders_step_with_its_stand_ins(monkeypatch):
    """FastDecoder.step is Decoder.step composed with the fused parts, not a second copy of the step."""
    torch.manual_seed(0)
    model = Tacotron2(**TINY_TACOTRON2).eval()
    engine = FastDecoder(model.decoder, torch.float32)
    calls = []
    real = type(model.decoder).step
    monkeypatch.setattr(type(model.decoder), "step", lambda self, *a, **kw: calls.append(a[5:]) or real(self, *a, **kw))
    text = torch.randint(1, 40, (1, 9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.generate(text, torch.tensor([9]), decode=engine.infer)
    assert calls and all(stand_ins == (engine.cells, engine._attention, engine._project) for stand_ins in calls)


def test_int8_decoder_stays_close_to_float32():
    """The LSTM matrices in int8 (one scale per row), inputs quantized per call: outputs within 1 % of float32,
    the same stop step; the int8 products really run (bias packed, float32 out)."""
    torch.manual_seed(0)
    model = Tacotron2(**{**TINY_TACOTRON2, "max_decoder_steps": 15}).eval()
    model.set_modes(prenet_dropout=False)
    text, lengths = torch.randint(12, 60, (3, 11)), torch.tensor([11, 8, 5])
    engine = FastDecoder(model.decoder, torch.qint8)
    assert isinstance(engine.weights.dec_W, Int8Weight) and engine.weights.dec_b is None
    assert engine.name.startswith("qint8/")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = model.generate(text, lengths)
        int8 = model.generate(text, lengths, decode=engine.infer)
    assert torch.equal(plain.mel_lengths, int8.mel_lengths)
    diff = (int8.mel_outputs_postnet - plain.mel_outputs_postnet).abs().max()
    assert 0 < diff < 0.01 * plain.mel_outputs_postnet.abs().max()


def _gated_model(gate_bias: float, max_steps: int = 37):
    """A tiny model whose (scaled) stop gate fires at different steps for different items under prenet dropout."""
    torch.manual_seed(0)
    model = Tacotron2(**{**TINY_TACOTRON2, "max_decoder_steps": max_steps}).eval()
    with torch.no_grad():
        model.decoder.gate_layer.linear_layer.weight.mul_(20)
        model.decoder.gate_layer.linear_layer.bias.fill_(gate_bias)
    return model, torch.randint(12, 60, (4, 11)), torch.tensor([11, 8, 5, 9])


@pytest.mark.parametrize("gate_bias,steps_per_check", [(1.2, 5), (0.9, 5), (1.2, 1), (0.9, 64)])
def test_static_decoder_equals_the_step_loop(gate_bias, steps_per_check):
    """Preallocated buffers and a host check every K steps give the loop's outputs exactly, dropout draws included."""
    model, text, lengths = _gated_model(gate_bias)
    outs = []
    for static in (False, True):
        engine = FastDecoder(model.decoder, torch.float32)
        if static:
            engine = StaticDecoder(engine, steps_per_check=steps_per_check)
        torch.manual_seed(3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outs.append(model.generate(text, lengths, decode=engine.infer))
        outs[-1] = (outs[-1], [str(w.message) for w in caught])
    (loop, loop_warnings), (static, static_warnings) = outs
    assert len(set(loop.mel_lengths.tolist())) >= 3  # the items stop at different steps
    if gate_bias == 1.2:  # every item stops early: decoding ends before max_decoder_steps
        assert not loop.reached_max.any() and loop.gate_outputs.size(1) < 37
    else:
        assert loop.reached_max.tolist() == [True, False, False, False] and loop.gate_outputs.size(1) == 37
    for a, b in zip(loop, static):
        assert a.shape == b.shape and torch.equal(a, b)
    assert loop_warnings == static_warnings


def test_static_decoder_reuses_sessions_and_pads_text_to_buckets():
    model, text, lengths = _gated_model(1.2)
    model.set_modes(prenet_dropout=False)
    loop = model.generate(text, lengths, decode=FastDecoder(model.decoder, torch.float32).infer)
    engine = StaticDecoder(FastDecoder(model.decoder, torch.float32), steps_per_check=4)
    engine.length_bucket = 8  # 11 symbols decode over 16 positions, 5 of them masked
    first = model.generate(text, lengths, decode=engine.infer)
    second = model.generate(text[:, :9], lengths.clamp(max=9), decode=engine.infer)  # 9 -> the same session
    assert len(engine.sessions) == 1
    assert first.alignments.shape == loop.alignments.shape and torch.equal(first.mel_lengths, loop.mel_lengths)
    for a, b in zip(loop, first):
        if a.is_floating_point():
            assert torch.allclose(a, b, atol=1e-5)
    assert second.alignments.size(2) == 9


def test_fast_decoder_in_float16_weights():
    """The GPU --amp-run decoder: float16 weights, float32 states; run here on the CPU's float16 kernels."""
    model, text, lengths = _gated_model(-5.0, max_steps=12)  # never stops: compare all 12 steps
    model.set_modes(prenet_dropout=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = model.generate(text, lengths, decode=FastDecoder(model.decoder, torch.float32).infer).mel_outputs
        engine = StaticDecoder(FastDecoder(model.decoder, torch.float16), steps_per_check=4)
        half = model.generate(text, lengths, decode=engine.infer).mel_outputs
    assert half.dtype == torch.float32 and half.shape == ref.shape
    assert (half - ref).abs().max() < 0.02 * ref.abs().max()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graph_decoder_equals_eager_on_gpu():
    model, text, lengths = _gated_model(1.2)
    model = model.cuda()
    model.set_modes(prenet_dropout=False)
    text, lengths = text.cuda(), lengths.cuda()
    eager = model.generate(text, lengths, decode=FastDecoder(model.decoder, torch.float32).infer)
    engine = StaticDecoder(FastDecoder(model.decoder, torch.float32), steps_per_check=8)
    graphed = model.generate(text, lengths, decode=engine.infer)
    session = next(iter(engine.sessions.values()))
    assert session.graph is not None  # captured, not the eager fallback
    assert torch.equal(eager.mel_lengths, graphed.mel_lengths)
    assert torch.allclose(eager.mel_outputs_postnet, graphed.mel_outputs_postnet, atol=1e-4)


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


def _teacher_forced_grads(model, deferred: bool, amp_dtype=None):
    """Outputs and parameter gradients of one teacher-forced pass with a fixed dropout draw."""
    model.decoder.deferred_weight_grads = deferred
    model.decoder.teacher_forcing_engine = False  # autograd's loop, with or without the deferred cells
    model.zero_grad(set_to_none=True)
    torch.manual_seed(5)
    text = torch.randint(12, 60, (3, 9))
    lengths = torch.tensor([9, 7, 4])
    mels = torch.randn(3, 20, 12)
    with torch.autocast("cpu", dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
        mel, mel_post, gate, _ = model((text, lengths, mels, 9, torch.tensor([12, 10, 7])))
        loss = (mel - mels).pow(2).mean() + (mel_post - mels).pow(2).mean() + gate.float().pow(2).mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return mel_post.detach().float(), grads


def _grad_errors(ref, test):
    """Relative error per parameter, over parameters whose gradient is not ~0 (a conv bias before a
    BatchNorm has a zero gradient up to rounding noise)."""
    scale = max(g.norm().item() for g in ref.values())
    return {n: ((test[n] - g).norm() / g.norm()).item() for n, g in ref.items() if g.norm() > 1e-6 * scale}


def test_deferred_lstm_weight_grads_equal_plain_autograd():
    torch.manual_seed(0)
    model = Tacotron2(**TINY_TACOTRON2).train()
    out_plain, plain = _teacher_forced_grads(model, deferred=False)
    out_fast, fast = _teacher_forced_grads(model, deferred=True)
    assert set(plain) == set(fast) and len(plain) == len(list(model.parameters()))
    assert torch.allclose(out_fast, out_plain, atol=1e-5)
    errors = _grad_errors(plain, fast)
    assert "decoder.decoder_rnn.weight_hh" in errors and "decoder.attention_rnn.bias_ih" in errors
    assert max(errors.values()) < 1e-4, max(errors.items(), key=lambda kv: kv[1])
    # the two biases get equal gradients, each in its own tensor (optimizers update them in place)
    rnn = model.decoder.attention_rnn
    assert torch.equal(rnn.bias_ih.grad, rnn.bias_hh.grad) and rnn.bias_ih.grad.data_ptr() != rnn.bias_hh.grad.data_ptr()


@pytest.mark.parametrize("amp_dtype", [torch.bfloat16, torch.float16])
def test_deferred_lstm_weight_grads_under_autocast(amp_dtype):
    torch.manual_seed(0)
    model = Tacotron2(**TINY_TACOTRON2).train()
    _, exact = _teacher_forced_grads(model, deferred=False)
    _, plain = _teacher_forced_grads(model, deferred=False, amp_dtype=amp_dtype)
    _, fast = _teacher_forced_grads(model, deferred=True, amp_dtype=amp_dtype)
    lstm = [n for n in exact if "_rnn." in n]
    assert len(lstm) == 8
    for n in lstm:
        assert fast[n].dtype == torch.float32 and torch.isfinite(fast[n]).all()
        # as close to the float32 gradient as plain autocast autograd is, or closer
        err_fast = ((fast[n] - exact[n]).norm() / exact[n].norm()).item()
        err_plain = ((plain[n] - exact[n]).norm() / exact[n].norm()).item()
        assert err_fast < max(2 * err_plain, 1e-3), (n, err_fast, err_plain)


@pytest.mark.parametrize("deferred, engine", [(True, False), (None, True)])
def test_deferred_grads_build_one_graph_per_pass(deferred, engine):
    """Two passes before one backward (gradient accumulation) sum both passes' gradients: the deferred LSTM cells
    and the hand-written teacher-forced backward (tacotron2/teacher_forcing.py)."""
    torch.manual_seed(0)
    model = Tacotron2(**TINY_TACOTRON2).eval()  # no dropout: both passes compute the same; gradients still flow
    model.set_modes(prenet_dropout=False)
    text = torch.randint(12, 60, (2, 6))
    mels = torch.randn(2, 20, 5)
    batch = (text, torch.tensor([6, 5]), mels, 6, torch.tensor([5, 5]))
    model.decoder.deferred_weight_grads = deferred
    model.decoder.teacher_forcing_engine = engine
    (model(batch)[0].sum() + model(batch)[0].sum()).backward()
    twice = {n: model.decoder.get_parameter(n).grad.clone() for n in ("decoder_rnn.weight_ih", "attention_rnn.weight_hh")}
    model.zero_grad(set_to_none=True)
    model.decoder.deferred_weight_grads = False
    model.decoder.teacher_forcing_engine = False
    model(batch)[0].sum().backward()
    for n, grad in twice.items():
        assert torch.allclose(grad, 2 * model.decoder.get_parameter(n).grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_linear_equals_torch_linear(dtype):
    from common.cpu.linear import linear
    x = torch.randn(5, 33).to(dtype)
    w = torch.randn(17, 33).to(dtype)
    b = torch.randn(17).to(dtype)
    with torch.no_grad():
        out = linear(x, w, b)
    ref = torch.nn.functional.linear(x.float(), w.float(), b.float())
    tol = 1e-4 if dtype == torch.float32 else 0.1
    assert out.dtype == dtype and torch.allclose(out.float(), ref, atol=tol * ref.abs().max().item())
    if int8_available():  # int8 weights, one scale per output row, 8-bit inputs: within ~2 % of the largest output
        q = linear(x.float(), int8_weight(w.float(), b.float()))
        assert q.dtype == torch.float32 and torch.allclose(q, ref, atol=0.03 * ref.abs().max().item())
        with pytest.raises(ValueError, match="bias"):
            linear(x.float(), int8_weight(w.float()), b.float())
    # with gradients recorded it falls back to an op autograd knows
    w.requires_grad_(True)
    linear(x, w, b).float().sum().backward()
    assert torch.allclose(w.grad.float(), x.float().sum(0, keepdim=True).expand(17, 33), atol=1e-2 * x.abs().max().item() * 5)


def test_fastest_keeps_the_quicker_candidate():
    import time
    from common.timing import fastest
    best, seconds = fastest({"slow": lambda: time.sleep(0.02), "quick": lambda: None}, torch.device("cpu"))
    assert best == "quick" and seconds["slow"] >= 0.02 > seconds["quick"]
    with pytest.raises(ValueError):
        fastest({}, torch.device("cpu"))


def test_decoder_tuning_keeps_the_fastest_candidate_and_its_outputs():
    model, text, lengths = _gated_model(1.2)
    model.set_modes(prenet_dropout=False)
    dtypes = [torch.float32, torch.bfloat16] + ([torch.qint8] if int8_available() else [])
    engine, timings = tune_decoder(model.decoder, 4, dtypes, text_length=11, steps=3)
    def backends(d):  # int8: the float32 products' backend
        return ["aten", "onednn"] if onednn_available(torch.float32 if d == torch.qint8 else d) else ["aten"]
    assert set(timings) == {f"{str(d).replace('torch.', '')}/{b}" for d in dtypes for b in backends(d)}
    best = min(timings, key=timings.get)
    w = engine.weights
    assert f"{str(w.att_W.dtype).replace('torch.', '')}/{'onednn' if w.onednn else 'aten'}" == best == engine.name
    tuned = model.generate(text, lengths, decode=engine.infer)
    explicit = model.generate(text, lengths, decode=FastDecoder(model.decoder, w.att_W.dtype, onednn=w.onednn).infer)
    for a, b in zip(tuned, explicit):
        assert torch.equal(a, b)


def test_waveglow_tuning_keeps_the_fastest_candidate_and_its_outputs():
    model = _waveglow()
    model.remove_weightnorm()
    int8 = [torch.qint8] if int8_available() else []
    engine, timings = tune_waveglow(model, [None, torch.float32, torch.bfloat16, *int8], frames=4)
    best = min(timings, key=timings.get)
    assert set(timings) == {"plain", "float32", "bfloat16", *(["qint8"] if int8 else [])}
    assert (engine is model) == (best == "plain")
    if best != "plain":
        end = engine.flows[0].end
        assert engine.dtype == getattr(torch, best)
        assert isinstance(end, Int8Conv) if best == "qint8" else end.weight.dtype == getattr(torch, best)
    mel = torch.randn(1, 20, 6)
    noise = [torch.randn(s) for s in model.noise_shapes(1, 6 * 32)]
    with torch.no_grad():
        tuned = engine.infer(mel, 0.5, noise=noise)
        explicit = (model if best == "plain" else FastWaveGlow(model, getattr(torch, best))).infer(mel, 0.5, noise=noise)
    assert torch.equal(tuned, explicit)


@pytest.mark.parametrize("kernel,stride", [(1024, 256), (12, 4), (5, 5)])
def test_upsampling_as_one_product_equals_the_transposed_convolution_and_its_gradients(kernel, stride):
    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose1d(20, 20, kernel, stride=stride)
    mel = torch.randn(2, 20, 9, requires_grad=True)
    plain = conv(mel)
    grads_plain = torch.autograd.grad(plain.square().sum(), (mel, conv.weight, conv.bias))
    fast = upsample(mel, conv)
    assert product_weight(conv) is not None  # the product, not the module
    grads_fast = torch.autograd.grad(fast.square().sum(), (mel, conv.weight, conv.bias))
    assert fast.shape == plain.shape == (2, 20, 8 * stride + kernel)
    assert torch.allclose(fast, plain, atol=1e-5)
    for a, b in zip(grads_fast, grads_plain):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel,bias", [(10, True), (8, False)])
def test_upsampling_falls_back_to_the_module_where_the_product_does_not_apply(kernel, bias):
    """A kernel that is not whole strides, or an upsampler without bias."""
    conv = torch.nn.ConvTranspose1d(4, 4, kernel, stride=4, bias=bias)
    mel = torch.randn(1, 4, 5)
    assert product_weight(conv) is None
    assert torch.equal(upsample(mel, conv), conv(mel))


def _wn_as_conv1d(wn, audio, spect):
    """WN as the paper writes it: its layers' conv1d on (B, C, L) (their default layout), channels sliced."""
    n = wn.n_channels
    audio = wn.start(audio)
    output = 0
    for i in range(wn.n_layers):
        in_act = wn.in_layers[i](audio) + wn.cond_layers[i](spect)
        res_skip = wn.res_skip_layers[i](torch.tanh(in_act[:, :n]) * torch.sigmoid(in_act[:, n:]))
        if i < wn.n_layers - 1:
            audio = audio + res_skip[:, :n]
        output = output + (res_skip[:, n:] if i < wn.n_layers - 1 else res_skip)
    return wn.end(output)


@pytest.mark.parametrize("folded, winograd", [(False, False), (True, False), (False, True)])
def test_wn_in_channels_last_rows_equals_conv1d(folded, winograd):
    """On a CPU, WN computes on (B, C, 1, L) channels-last rows: the same values and gradients as conv1d (with
    Winograd's dilated convolutions, as float32 training takes them on some CPU kinds, within its rounding)."""
    torch.manual_seed(0)
    wn = WaveGlow(**TINY_WAVEGLOW).WN[0]
    wn.winograd = winograd
    for p in wn.parameters():
        p.data.uniform_(-0.5, 0.5)  # the end layer starts at zero, which would hide the layers before it
    audio = torch.randn(2, wn.start.weight_v.size(1), 30, requires_grad=True)
    spect = torch.randn(2, wn.cond_layers[0].weight_v.size(1), 30, requires_grad=True)
    if folded:
        _fold_weightnorm(wn)
    ours, paper = wn((audio, spect)), _wn_as_conv1d(wn, audio, spect)
    atol = 1e-4 if winograd else 1e-5  # Winograd's rounding: ~1e-5 of the norm (tests/test_winograd.py)
    assert ours.shape == paper.shape and torch.allclose(ours, paper, atol=atol)
    inputs = [audio, spect] + list(wn.parameters())
    up = torch.randn_like(paper)
    for a, b in zip(torch.autograd.grad(ours, inputs, up), torch.autograd.grad(paper, inputs, up)):
        assert torch.allclose(a, b, rtol=1e-4, atol=atol)


def test_wn_gradients_stay_channels_last(monkeypatch):
    """Every gradient reaching a WN convolution's output in backward is channels-last, as its input is; one in
    the default layout (what a channel slice's backward makes) costs oneDNN a reorder each way, which made the
    training step slower than conv1d's."""
    layouts = []
    real_conv = cpu_layout.Layout.conv

    def recording_conv(*args, **kwargs):
        out = real_conv(*args, **kwargs)
        if out.requires_grad:
            out.register_hook(lambda g: layouts.append(g.is_contiguous(memory_format=torch.channels_last)))
        return out
    monkeypatch.setattr(cpu_layout.Layout, "conv", recording_conv)
    torch.manual_seed(0)
    wn = WaveGlow(**TINY_WAVEGLOW).WN[0]
    wn.end.weight.data.uniform_(-0.5, 0.5)
    n_in = wn.start.weight_v.size(1)
    out = wn((torch.randn(2, n_in, 30), torch.randn(2, wn.cond_layers[0].weight_v.size(1), 30)))
    out.square().sum().backward()
    n_convs = 2 + 3 * wn.n_layers
    assert len(layouts) == n_convs and all(layouts), layouts


def test_wn_calls_its_layers_so_their_hooks_fire():
    """WN.forward computes through its submodules (waveglow.model.wavenet), so forward hooks on them fire, in the
    paper's order, with the layer's own output."""
    torch.manual_seed(0)
    wn = WaveGlow(**TINY_WAVEGLOW).WN[0]
    seen = []
    names = {m: n for n, m in wn.named_modules() if n}
    for m in names:
        if not isinstance(m, torch.nn.ModuleList):
            m.register_forward_hook(lambda mod, args, out: seen.append((names[mod], tuple(out.shape))))
    audio = torch.randn(2, wn.start.weight_v.size(1), 30)
    spect = torch.randn(2, wn.cond_layers[0].weight_v.size(1), 30)
    out = wn((audio, spect))
    order = ["start"] + [f"{kind}.{i}" for i in range(wn.n_layers)
                         for kind in ("in_layers", "cond_layers", "res_skip_layers")] + ["end"]
    assert [name for name, _ in seen] == order
    assert seen[-1][1][:2] + seen[-1][1][-1:] == tuple(out.shape)


def test_wn_layout_is_chosen_from_device_grad_and_autocast():
    """cpu_layout.choose: rows on a CPU; the hand-written backward passes only where a backward pass follows and no
    trace is recorded; autocast's dtype where it is on."""
    wn = WaveGlow(**TINY_WAVEGLOW).WN[0]
    wn.winograd = False  # by CPU kind where None: tests/test_winograd.py
    x = torch.randn(1, 2, 8)
    assert cpu_layout.choose(x, wn) == cpu_layout.Layout(channels_last=True, backward=True, autocast=None)
    with torch.no_grad():
        assert cpu_layout.choose(x, wn).backward is False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cpu_layout.choose(x, wn).autocast == torch.bfloat16
    wn.requires_grad_(False)
    assert cpu_layout.choose(x, wn).backward is False
    assert cpu_layout.choose(x.requires_grad_(), wn).backward is True
    assert cpu_layout.choose(torch.randn(1, 2, 8, device="meta"), wn).channels_last is False


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [False, True])
def test_gated_activation_backward_is_autograds(dtype, rows):
    """The gated activation's written-out backward gives autograd's gradients, in the inputs' layout, for one input
    or both."""
    torch.manual_seed(0)
    shape = (2, 12, 1, 17) if rows else (2, 12, 17)
    layout = torch.channels_last if rows else torch.contiguous_format
    a0, b0 = (torch.randn(shape, dtype=dtype).contiguous(memory_format=layout) for _ in range(2))
    up = torch.randn(shape[:1] + (6,) + shape[2:], dtype=dtype)
    for needs_b in (True, False):
        a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_(needs_b)
        ours = cpu_layout.Layout(channels_last=rows, backward=True).gate(a, b, 6)
        assert "GatedActivation" in type(ours.grad_fn).__name__
        t_act, s_act = (a + b).split(6, dim=1)
        plain = torch.tanh(t_act) * torch.sigmoid(s_act)
        assert torch.equal(ours, plain)
        inputs = [a, b] if needs_b else [a]
        for got, want in zip(torch.autograd.grad(ours, inputs, up), torch.autograd.grad(plain, inputs, up)):
            assert got.dtype == dtype and torch.equal(got, want)  # the same operations in the same order
            assert got.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize("with_bias", [True, False])
def test_pointwise_conv_channels_last_gives_autograds_gradients(amp, with_bias):
    """WN's 1x1 convolutions on channels-last rows take their weight gradient from one matrix product: the values
    and gradients of conv2d's own backward (float32; bf16 autocast within its rounding), gradients in the
    parameters' float32 and the input's layout, for an input that needs no gradient too. WN uses it under autocast
    only (in float32 oneDNN's weight gradient is faster)."""
    from waveglow.autograd import pointwise_conv_channels_last
    torch.manual_seed(0)
    x0 = torch.randn(2, 24, 1, 37).contiguous(memory_format=torch.channels_last)
    w = torch.randn(40, 24, 1, requires_grad=True)
    b = torch.randn(40, requires_grad=True) if with_bias else None
    up = torch.randn(2, 40, 1, 37).contiguous(memory_format=torch.channels_last)
    for x_needs_grad in (True, False):
        x = x0.clone().requires_grad_(x_needs_grad)
        params = [t for t in (x, w, b) if t is not None and t.requires_grad]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            ours = pointwise_conv_channels_last(x, w.squeeze(2), b, torch.bfloat16 if amp else torch.float32)
            plain = F.conv2d(x, w.unsqueeze(2), b)
            layout = cpu_layout.Layout(channels_last=True, backward=True, autocast=torch.bfloat16 if amp else None)
            assert ("PointwiseConvRows" in type(layout.conv(x, w, b).grad_fn).__name__) == amp
        assert ours.dtype == plain.dtype and ours.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(ours, plain)  # the same oneDNN forward
        wanted = torch.autograd.grad(plain, params, up)
        if amp:  # against float64 on the bf16-rounded operands: conv2d's own bf16 weight gradient is less exact
            # under AVX2 (0.080 against our 0.062 here), so the two bf16 results are not compared with each other
            x64 = x.detach().bfloat16().double().requires_grad_(x_needs_grad)
            w64 = w.detach().bfloat16().double().requires_grad_()
            b64 = None if b is None else b.detach().double().requires_grad_()
            wanted = torch.autograd.grad(F.conv2d(x64, w64.unsqueeze(2), b64),
                                         [t for t in (x64, w64, b64) if t is not None and t.requires_grad],
                                         up.bfloat16().double())
        for got, want in zip(torch.autograd.grad(ours, params, up), wanted):
            assert got.dtype == torch.float32 and got.shape == want.shape
            tol = 4e-3 * want.abs().max() if amp else 1e-5 * (1 + want.abs())
            assert ((got - want).abs() <= tol).all(), (got - want).abs().max()
        if x_needs_grad:
            assert torch.autograd.grad(pointwise_conv_channels_last(x, w.squeeze(2), b, x.dtype), x, up)[0].is_contiguous(
                memory_format=torch.channels_last)


def test_static_decoder_follows_later_changes_of_decoder_settings():
    """A session holds buffers sized by max_decoder_steps and the step's constants (gate threshold, prenet
    dropout): changing them after a first call must not reuse the old session."""
    model, text, lengths = _gated_model(-5.0, max_steps=10)  # never stops: decodes max_decoder_steps
    model.set_modes(prenet_dropout=False)
    engine = StaticDecoder(FastDecoder(model.decoder, torch.float32), steps_per_check=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert model.generate(text, lengths, decode=engine.infer).gate_outputs.size(1) == 10
        model.decoder.max_decoder_steps = 23
        assert model.generate(text, lengths, decode=engine.infer).gate_outputs.size(1) == 23
        model.decoder.gate_threshold = -1.0  # sigmoid > -1 always: every item stops at its first step
        assert model.generate(text, lengths, decode=engine.infer).gate_outputs.size(1) == 1
    assert len(engine.sessions) == 3


def test_waveglow_keeps_its_1x1_inverses_until_the_weights_change(monkeypatch):
    """Inverting on every call is a host-device sync per flow on CUDA; a stale inverse would be wrong."""
    model = _waveglow()
    model.remove_weightnorm()
    calls = []
    real = torch.Tensor.inverse
    monkeypatch.setattr(torch.Tensor, "inverse", lambda self: calls.append(1) or real(self))
    mel = torch.randn(1, 20, 6)
    noise = [torch.randn(s) for s in model.noise_shapes(1, 6 * 32)]
    with torch.no_grad():
        first = model.infer(mel, 0.6, noise=noise)
        assert len(calls) == len(model.convinv)
        assert torch.equal(model.infer(mel, 0.6, noise=noise), first) and len(calls) == len(model.convinv)
        model.convinv[0].conv.weight.mul_(1.5)  # an optimizer step or load_state_dict writes in place
        changed = model.infer(mel, 0.6, noise=noise)
    assert len(calls) == len(model.convinv) + 1 and not torch.allclose(changed, first)


@pytest.mark.skipif(not int8_available(), reason="this torch build has no x86/fbgemm quantized engine")
def test_int8_linear_does_not_saturate():
    """Large inputs against all-positive rows: where fbgemm adds u8 x s8 pairs in int16 (AVX2, no VNNI) 8-bit
    inputs saturate (ones x ones gave 32 instead of 64); `linear` must quantize them to 7 bits there."""
    from common.cpu.linear import linear
    torch.manual_seed(0)
    x, w = torch.rand(3, 256) + 1.0, torch.rand(40, 256) + 1.0
    got, want = linear(x, int8_weight(w)), x @ w.t()
    assert ((got - want).abs() / want).max() < 0.02
