"""Small-data training aids and quality metrics: corpus builder, guided attention, alignment metrics."""
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from tacotron2 import metrics
from tacotron2.loss_function import Tacotron2Loss, guided_attention_loss


def test_corpus_builder_writes_ljspeech_format(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (bash scripts/setup.sh installs it)")
    from corpora.build import build_corpus
    from corpora.sentences import make_sentences
    root = str(tmp_path / "c")
    sentences = build_corpus(root, 5, "espeak", seed=3, val_fraction=0.2, test_fraction=0.2, jobs=2).sentences
    assert sentences == make_sentences(5, 3)  # deterministic for a seed
    with open(os.path.join(root, "metadata.csv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("|") for line in f]
    assert [r[0] for r in rows] == [f"ES-{i:05d}" for i in range(5)]
    assert all(len(r) == 3 and r[1] == s and r[2] == r[2].lower() for r, s in zip(rows, sentences))
    for r in rows:
        info = sf.info(os.path.join(root, "wavs", r[0] + ".wav"))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert 0.5 < info.duration < 10
    splits = {}
    for name in ("train", "val", "test"):
        with open(os.path.join(root, "filelists", f"espeak_audio_text_{name}_filelist.txt")) as f:
            splits[name] = {line.split("|")[0] for line in f if line.strip()}
    assert sum(map(len, splits.values())) == 5
    assert not splits["test"] & splits["train"] and not splits["val"] & splits["train"]


def test_sentence_generator_is_varied():
    from corpora.sentences import make_sentences
    s = make_sentences(1000, 1)
    assert len(set(s)) == 1000
    text = " ".join(s)
    assert any(c.isdigit() for c in text) and "$" in text and "Dr." in text and "?" in text and "!" in text
    assert make_sentences(50, 2) != make_sentences(50, 1)


def test_metrics_on_synthetic_alignments():
    diag = torch.eye(20)
    assert metrics.diagonality(diag) == 1.0 and metrics.focus(diag) == 1.0
    stretched = torch.eye(10).repeat_interleave(3, dim=0)  # 30 steps over 10 tokens
    assert metrics.diagonality(stretched) == 1.0
    flat = torch.full((30, 10), 0.1)
    assert metrics.focus(flat) == pytest.approx(0.1)
    assert metrics.diagonality(flat) < 0.3  # argmax stuck at token 0
    stuck_at_end = torch.zeros(30, 10)
    stuck_at_end[:, -1] = 1
    assert metrics.diagonality(stuck_at_end) < 0.2


def test_mcd_dtw_of_a_time_stretched_copy_is_near_zero():
    rng = np.random.default_rng(0)
    mel = np.cumsum(rng.normal(size=(80, 60)), axis=1) * 0.1 - 5
    stretched = np.repeat(mel, 2, axis=1)  # twice as slow
    other = np.cumsum(rng.normal(size=(80, 70)), axis=1) * 0.1 - 5
    assert metrics.mcd_dtw(stretched, mel) < 0.5
    assert metrics.mcd_dtw(other, mel) > 5 * max(metrics.mcd_dtw(stretched, mel), 0.1)


def test_guided_attention_is_zero_on_the_diagonal_and_positive_off_it():
    lengths = torch.tensor([12])
    diag = torch.eye(12)[None]
    assert guided_attention_loss(diag, lengths, lengths).item() == pytest.approx(0.0, abs=1e-7)
    anti = torch.eye(12).flip(1)[None]
    assert guided_attention_loss(anti, lengths, lengths).item() > 0.5
    uniform = torch.full((1, 12, 12), 1 / 12)
    assert 0 < guided_attention_loss(uniform, lengths, lengths).item() < guided_attention_loss(anti, lengths,
                                                                                              lengths).item()


def test_guided_attention_ignores_padding_and_decays():
    a = torch.eye(6).repeat(2, 1, 1)
    a[1, :, 4:] = 0.0
    padded = torch.nn.functional.pad(a, (0, 3, 0, 2), value=0.7)  # garbage beyond the lengths
    lengths = torch.tensor([6, 6])
    assert guided_attention_loss(padded, lengths, lengths).item() == pytest.approx(
        guided_attention_loss(a, lengths, lengths).item(), abs=1e-7)
    loss = Tacotron2Loss(guided_attention_weight=4.0, guided_attention_half_life=100)
    loss.set_iteration(200)
    assert loss.current_guided_weight() == pytest.approx(1.0)


def test_guided_loss_term_is_added_with_lengths():
    B, T_out, T_in = 2, 6, 5
    outputs = (torch.zeros(B, 4, T_out), torch.zeros(B, 4, T_out), torch.zeros(B, T_out), torch.full((B, T_out, T_in),
                                                                                                     1 / T_in))
    gate = torch.zeros(B, T_out)
    targets = (torch.zeros(B, 4, T_out), gate, torch.tensor([5, 5]), torch.tensor([6, 6]))
    plain = Tacotron2Loss()(outputs, targets)
    guided = Tacotron2Loss(guided_attention_weight=2.0)(outputs, targets)
    assert guided.item() > plain.item() + 0.1


def test_l1_mel_loss_is_the_mean_absolute_error_of_both_outputs():
    g = torch.Generator().manual_seed(0)
    mel, post, target = (torch.randn(2, 4, 6, generator=g) for _ in range(3))
    gate_out, gate = torch.zeros(2, 6), torch.zeros(2, 6)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(gate_out, gate)
    l1 = Tacotron2Loss(mel_loss="l1")((mel, post, gate_out), (target, gate))
    mse = Tacotron2Loss()((mel, post, gate_out), (target, gate))
    assert l1.item() == pytest.approx(float((mel - target).abs().mean() + (post - target).abs().mean() + bce))
    assert mse.item() == pytest.approx(float(((mel - target) ** 2).mean() + ((post - target) ** 2).mean() + bce))
    with pytest.raises(ValueError, match="mel_loss"):
        Tacotron2Loss(mel_loss="huber")
