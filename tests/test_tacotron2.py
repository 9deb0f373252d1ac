"""Tacotron 2 against the reference goldens: shapes, teacher-forced outputs, greedy inference, the loss."""
import argparse
import json
import warnings

import pytest
import torch

from common.utils import mask_from_lengths
from tacotron2.loss_function import Tacotron2Loss
from tacotron2.model import Tacotron2

from .conftest import TINY_TACOTRON2, assert_close_rel, load_reference, reference_file


@pytest.fixture(scope="module")
def golden():
    return load_reference("tacotron2_small.pt")


def _golden_model(golden, **overrides):
    model = Tacotron2(**{**golden["config"], **overrides})
    model.load_state_dict(golden["state_dict"])
    model.eval()
    model.set_modes(prenet_dropout=False)  # the goldens were made with the prenet dropout off
    return model


def _golden_batch(golden):
    i = golden["inputs"]
    return (i["text_padded"], i["input_lengths"], i["mel_padded"], i["max_len"], i["output_lengths"]), \
        (i["mel_padded"], i["gate_padded"])


def test_default_state_dict_matches_published_names_and_shapes():
    with open(reference_file("tacotron2_state_dict.json")) as f:
        ref = json.load(f)
    with torch.device("meta"):
        model = Tacotron2(**ref["config"])
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(ref["state_dict"])
    assert ours == ref["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == ref["n_parameters"] == 28193153


def test_encoder_matches_golden(golden):
    model = _golden_model(golden)
    i = golden["inputs"]
    with torch.no_grad():
        assert_close_rel(model.encode(i["text_padded"], i["input_lengths"]), golden["encoder_outputs"])


@pytest.mark.parametrize("mask_padding,out_key,loss_key", [
    (False, "forward_outputs", "loss"),
    (True, "forward_outputs_mask_padding_true", "loss_mask_padding_true")])
def test_teacher_forced_outputs_and_loss_match_golden(golden, mask_padding, out_key, loss_key):
    model = _golden_model(golden, mask_padding=mask_padding)
    x, y = _golden_batch(golden)
    with torch.no_grad():
        outputs = model(x)
        loss = Tacotron2Loss()(outputs, y)
    for tensor, key in zip(outputs, ["mel_out", "mel_out_postnet", "gate_out", "alignments"]):
        assert_close_rel(tensor, golden[out_key][key], name=key)
    assert abs(loss.item() - float(golden[loss_key])) <= 1e-6 * abs(float(golden[loss_key])) + 1e-6


def test_capped_inference_matches_golden(golden):
    model = _golden_model(golden)
    ref = golden["infer"]
    with pytest.warns(UserWarning, match="max_decoder_steps=25"):
        out = model.generate(ref["inputs"]["text"], ref["inputs"]["input_lengths"])
    assert out.mel_lengths.dtype == torch.int32
    assert out.mel_lengths.tolist() == ref["mel_lengths"].tolist()
    assert out.reached_max.tolist() == [True, True]
    assert_close_rel(out.mel_outputs_postnet, ref["mel_outputs_postnet"], name="mel")
    assert_close_rel(out.mel_outputs, ref["decoder_mel_outputs"], name="decoder mel")
    assert_close_rel(out.gate_outputs, ref["gate_outputs"], name="gate")
    assert_close_rel(out.alignments, ref["alignments"], name="alignments")


def test_gate_stopped_inference_matches_golden(golden):
    model = _golden_model(golden)
    ref, fired = golden["infer"], golden["infer_gate_fires"]
    with torch.no_grad():
        model.decoder.gate_layer.linear_layer.bias.copy_(torch.as_tensor(fired["gate_layer_bias"]).reshape(1))
    mel, lengths, alignments = model.infer(ref["inputs"]["text"], ref["inputs"]["input_lengths"])
    assert lengths.tolist() == fired["mel_lengths"].tolist() == [3, 2]
    assert mel.size(2) == fired["n_steps_run"] == 4
    assert_close_rel(mel, fired["mel_outputs_postnet"], name="mel")
    assert_close_rel(alignments, fired["alignments"], name="alignments")


def _tiny(**overrides):
    torch.manual_seed(0)
    return Tacotron2(**{**TINY_TACOTRON2, **overrides})


def _random_batch(lengths, out_lengths, n_mel=20, r=1):
    B = len(lengths)
    T_in = max(lengths)
    text = torch.zeros(B, T_in, dtype=torch.long)
    for b, n in enumerate(lengths):
        text[b, :n] = torch.randint(12, 60, (n,))
    T_out = max(out_lengths)
    T_out += (-T_out) % r
    mels = torch.randn(B, n_mel, T_out) * mask_from_lengths(torch.tensor(out_lengths), T_out)[:, None, :]
    gate = (torch.arange(T_out)[None, :] >= torch.tensor(out_lengths)[:, None] - 1).float()
    return (text, torch.tensor(lengths), mels, T_in, torch.tensor(out_lengths)), (mels, gate)


def test_masked_training_backpropagates():
    """The reference's in-place masking breaks autograd on torch 2.x; here it trains."""
    model = _tiny(mask_padding=True)
    model.train()
    x, y = _random_batch([9, 7, 4], [12, 15, 6])
    outputs = model(x)
    pad = ~mask_from_lengths(x[4], 15)
    assert torch.all(outputs[0].masked_select(pad[:, None, :]) == 0)
    assert torch.all(outputs[2].masked_select(pad) == 1e3)
    Tacotron2Loss()(outputs, y).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.embedding.weight.grad.abs().sum() > 0


def test_unsorted_batch_equals_sorted_and_padding_is_ignored():
    model = _tiny().eval()
    model.set_modes(prenet_dropout=False)
    model.set_modes(batch_invariant=True)
    x, _ = _random_batch([5, 9, 7], [10, 10, 10])
    perm = torch.tensor([1, 2, 0])
    xs = (x[0][perm], x[1][perm], x[2][perm], x[3], x[4][perm])
    with torch.no_grad():
        a, b = model(x), model(xs)
        for ta, tb in zip(a, b):
            assert torch.allclose(ta[perm], tb, atol=1e-6)
        # attention never looks at padded text
        assert torch.all(a[3][0, :, 5:] == 0)
        # extra padding columns change nothing
        padded = torch.nn.functional.pad(x[0], (0, 4))
        c = model((padded, x[1], x[2], x[3] + 4, x[4]))
    assert torch.allclose(c[1], a[1], atol=1e-6)


@pytest.mark.parametrize("r", [2, 3])
def test_reduction_factor_shapes_and_loss(r):
    model = _tiny(n_frames_per_step=r)
    x, y = _random_batch([8, 6], [13, 10], r=r)
    T_out = x[2].size(2)
    assert T_out % r == 0
    mel_out, mel_post, gate, align = model(x)
    assert mel_out.shape == mel_post.shape == (2, 20, T_out)
    assert gate.shape == (2, T_out // r) and align.shape == (2, T_out // r, 8)
    loss = Tacotron2Loss()((mel_out, mel_post, gate, align), y)
    loss.backward()
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="not a multiple"):
        model((x[0], x[1], x[2][:, :, :-1], x[3], x[4]))


def _force_gate(model, fire_after_steps):
    """Make item b's gate fire at its own step by hooking the gate layer (per-item stopping)."""
    state = {"step": 0}

    def hook(_module, _inputs, output):
        step = state["step"]
        state["step"] += 1
        fire = torch.tensor([step >= n for n in fire_after_steps])
        return torch.where(fire[:, None], torch.full_like(output, 10.0), torch.full_like(output, -10.0))

    return model.decoder.gate_layer.register_forward_hook(hook)


@pytest.mark.parametrize("r", [1, 3])
def test_each_item_stops_on_its_own_gate(r):
    model = _tiny(n_frames_per_step=r).eval()
    x, _ = _random_batch([8, 6, 5], [4, 4, 4])
    handle = _force_gate(model, [4, 1, 6])
    out = model.generate(x[0], x[1])
    handle.remove()
    assert out.gate_outputs.shape[1] == 7  # the loop ends after the last item fires
    assert out.mel_lengths.tolist() == [(n + 1) * r - 1 for n in [4, 1, 6]]
    assert not out.reached_max.any()
    assert out.mel_outputs_postnet.shape == (3, 20, 7 * r)


def test_no_early_stopping_runs_all_steps():
    model = _tiny(decoder_no_early_stopping=True, max_decoder_steps=12).eval()
    x, _ = _random_batch([8, 6], [4, 4])
    handle = _force_gate(model, [2, 3])
    out = model.generate(x[0], x[1])
    handle.remove()
    assert out.mel_outputs.shape[2] == 12
    assert out.mel_lengths.tolist() == [2, 3]


def test_batched_inference_equals_per_item():
    model = _tiny().eval()
    model.set_modes(prenet_dropout=False)
    model.set_modes(batch_invariant=True)
    x, _ = _random_batch([9, 4, 7], [4, 4, 4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batched = model.generate(x[0], x[1])
        for b in range(3):
            n = int(x[1][b])
            single = model.generate(x[0][b:b + 1, :n], x[1][b:b + 1])
            L = int(single.mel_lengths[0])
            assert int(batched.mel_lengths[b]) == L
            assert torch.allclose(batched.mel_outputs[b, :, :L + 1], single.mel_outputs[0, :, :L + 1], atol=1e-5)
            assert torch.allclose(batched.mel_outputs_postnet[b, :, :L], single.mel_outputs_postnet[0, :, :L],
                                  atol=1e-5)
            assert torch.allclose(batched.alignments[b, :L + 1, :n], single.alignments[0, :L + 1], atol=1e-6)


def test_reference_encoder_depends_on_padding_without_the_switch():
    """Documents why the batch_invariant mode exists: the reference's convs see the pad embedding."""
    model = _tiny().eval()
    x, _ = _random_batch([6], [4])
    with torch.no_grad():
        alone = model.encode(x[0], x[1])
        padded = model.encode(torch.nn.functional.pad(x[0], (0, 3)), x[1])
        assert not torch.allclose(alone, padded, atol=1e-6)
        model.set_modes(batch_invariant=True)
        assert torch.allclose(model.encode(x[0], x[1]), model.encode(torch.nn.functional.pad(x[0], (0, 3)), x[1]),
                              atol=1e-6)


def test_prenet_dropout_switch():
    model = _tiny().eval()
    x, _ = _random_batch([6], [4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = model.infer(x[0], x[1])[0]
        b = model.infer(x[0], x[1])[0]
        assert not torch.allclose(a, b)  # paper behaviour: dropout on at inference
        model.set_modes(prenet_dropout=False)
        c = model.infer(x[0], x[1])[0]
        d = model.infer(x[0], x[1])[0]
    assert torch.equal(c, d)


def test_teacher_frame_dropout_replaces_frames_by_the_mean_and_leaves_go_and_padding_alone():
    from tacotron2.model import drop_teacher_frames
    torch.manual_seed(0)
    groups = torch.randn(3, 400, 6)
    groups[:, 0] = 0  # the go frame
    groups[1, 300:] = 0  # padding
    out = drop_teacher_frames(groups, 0.3)
    assert torch.equal(out[:, 0], groups[:, 0]) and torch.equal(out[1, 300:], groups[1, 300:])
    changed = (out != groups).any(dim=2)
    valid = (groups != 0).any(dim=2)
    assert abs(float(changed[valid].float().mean()) - 0.3) < 0.05
    mean_1 = groups[1, 1:300].mean(dim=0)
    assert torch.allclose(out[1][changed[1]], mean_1.expand(int(changed[1].sum()), 6), atol=1e-6)


def _flags(**overrides):
    """Tacotron 2's flags at their defaults, some set otherwise (what train.py hands prepare_training)."""
    from models import default_flags
    return argparse.Namespace(**{**vars(default_flags("Tacotron2")), **overrides})


def test_teacher_frame_dropout_acts_in_training_only_and_is_set_from_the_flag():
    from tacotron2.package import PACKAGE
    torch.manual_seed(0)
    model = Tacotron2(**{**TINY_TACOTRON2, "n_mel_channels": 20})
    model.set_modes(prenet_dropout=False)
    PACKAGE.prepare_training(model, _flags(teacher_frame_dropout=0.5))
    assert model.decoder.p_teacher_frame_dropout == 0.5
    text = torch.randint(1, 40, (2, 12))
    mel = torch.randn(2, 20, 24)
    batch = (text, torch.tensor([12, 12]), mel, 24, torch.tensor([24, 24]))
    outputs = {}
    for training in (False, True):  # inference first: a training pass moves the batch-norm statistics
        for p in (0.0, 0.5):
            model.set_modes(teacher_frame_dropout=p)
            model.train(training)
            torch.manual_seed(1)  # the same dropout draws elsewhere
            with torch.no_grad():
                outputs[p, training] = model(batch)[0]
    assert torch.equal(outputs[0.0, False], outputs[0.5, False])  # inference: untouched
    assert not torch.allclose(outputs[0.0, True], outputs[0.5, True])  # training: other inputs
    with pytest.raises(ValueError):
        model.set_modes(teacher_frame_dropout=1.0)


def test_conv_dropouts_are_set_from_the_flags_and_act_in_training_only():
    from tacotron2.package import PACKAGE
    model = Tacotron2(**{**TINY_TACOTRON2, "n_mel_channels": 20})
    PACKAGE.prepare_training(model, _flags(p_encoder_dropout=0.0, p_postnet_dropout=0.0))
    assert model.encoder.p_dropout == model.postnet.p_dropout == 0.0
    mel, text = torch.randn(2, 20, 24), torch.randn(2, TINY_TACOTRON2["encoder_embedding_dim"], 12)
    lengths = torch.tensor([12, 10])
    model.train()
    # no dropout left: the same outputs twice
    assert torch.equal(model.postnet(mel), model.postnet(mel))
    assert torch.equal(model.encoder(text, lengths), model.encoder(text, lengths))
    model.set_modes(encoder_dropout=0.5, postnet_dropout=0.5)
    out = model.postnet(mel)
    assert not torch.allclose(out, model.postnet(mel))
    assert not torch.allclose(model.encoder(text, lengths), model.encoder(text, lengths))
    # the last convolution's output is dropped: about half of its elements are exactly zero
    assert 0.4 < float((out == 0).float().mean()) < 0.6
    model.eval()
    assert torch.equal(model.encoder(text, lengths), model.encoder(text, lengths))
    with pytest.raises(ValueError):
        model.set_modes(encoder_dropout=0.5, postnet_dropout=1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_keeps_one_minus_p_scaled_and_passes_gradients_through_the_mask(dtype):
    from common.cpu.dropout import dropout
    torch.manual_seed(0)
    x = (torch.rand(64, 128, 100) + 1).to(dtype).requires_grad_()  # no zeros of its own
    y = dropout(x, 0.3, True)
    kept = y != 0
    assert abs(float(kept.float().mean()) - 0.7) < 0.005
    assert torch.allclose(y[kept].float(), (x[kept] / 0.7).float(), rtol=1e-2 if dtype == torch.bfloat16 else 1e-6)
    y.sum().backward()
    assert torch.allclose(x.grad.float(), kept.float() / 0.7, rtol=1e-2 if dtype == torch.bfloat16 else 1e-6)
    assert torch.equal(dropout(x, 0.3, False), x)  # not training: the input itself
    torch.manual_seed(1)
    a = dropout(x, 0.3, True)
    torch.manual_seed(1)
    assert torch.equal(a, dropout(x, 0.3, True))  # seeded like every other draw


@pytest.mark.parametrize("mel_loss", ["mse", "l1"])
def test_real_frames_loss_is_the_mean_over_real_frames_whatever_the_padding(mel_loss):
    """With padding masked, the reference's mean shrinks with the share of padding; over real frames it does not:
    the same item padded to 12 or to 40 frames gives the same loss."""
    torch.manual_seed(0)
    mel = torch.randn(1, 80, 12)
    out, post = mel + 0.3 * torch.randn_like(mel), mel + 0.1 * torch.randn_like(mel)
    gate_out = torch.full((1, 12), -1000.0)
    gate_out[0, -1] = 1000.0

    def loss(pad: int, real_frames: bool) -> float:
        def padded(t):
            return torch.nn.functional.pad(t, (0, pad))
        gate_target = padded(torch.zeros(1, 12))
        gate_target[0, 11:] = 1
        gates = torch.nn.functional.pad(gate_out, (0, pad), value=1000.0)
        criterion = Tacotron2Loss(mel_loss=mel_loss, real_frames=real_frames)
        return criterion((padded(out), padded(post), gates, None),
                         (padded(mel), gate_target, torch.tensor([5]), torch.tensor([12]))).item()
    assert loss(28, True) == pytest.approx(loss(0, True), rel=1e-5)
    assert loss(0, True) == pytest.approx(loss(0, False), rel=1e-6)  # no padding: the reference's mean
    assert loss(28, False) == pytest.approx(loss(0, False) * 12 / 40, rel=1e-4)


def test_modes_set_in_a_with_block_are_restored_after_it_even_on_an_exception():
    from tacotron2.model import Modes
    model = _tiny()
    assert model.modes == Modes()  # the paper's and the reference's
    model.set_modes(teacher_frame_dropout=0.2)
    with model.using(prenet_dropout=False, batch_invariant=True) as inside:
        assert inside == Modes(batch_invariant=True, prenet_dropout=False, teacher_frame_dropout=0.2)
        assert model.encoder.mask_padding_in_convs and not model.decoder.prenet.always_dropout
    assert model.modes == Modes(teacher_frame_dropout=0.2)
    with pytest.raises(RuntimeError):
        with model.using(encoder_dropout=0.0):
            raise RuntimeError("inside")
    assert model.modes.encoder_dropout == 0.5 and not model.encoder.mask_padding_in_convs
    with pytest.raises(ValueError):
        model.set_modes(prenet=False)  # a misspelt mode is refused, not set
