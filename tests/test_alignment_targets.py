"""Guided attention along the teacher's own segment times (tacotron2/alignment_targets.py): the symbols matched to
festival's segments, frame positions, the loss's path, the data path into training, and bad segments refused."""
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from common.audio import AudioConfig
from common.filelist import FilelistError
from tacotron2.alignment_targets import (SegmentsError, frame_positions, read_segments, step_positions,
                                         symbol_spans, write_segments)
from tacotron2.data_function import TextMelCollate, TextMelLoader, batch_to_device
from tacotron2.loss_function import Tacotron2Loss, guided_attention_loss
from tacotron2.text import text_to_sequence
from tacotron2.text.phonemizers import _parse_reports
from tacotron2.text.symbols import symbols as SYMBOLS
from tests.corpus import TINY_T2_FLAGS, run_python

LINE = "{AH0} {K AE1 T}, {S AE1 T}."
# festival's segments of LINE: a leading pause, the phones, the comma's pause, a trailing pause (ends, seconds)
SEGMENTS = (("pau", 0.05), ("ax", 0.10), ("k", 0.16), ("ae", 0.30), ("t", 0.35), ("pau", 0.50), ("s", 0.60),
            ("ae", 0.75), ("t", 0.80), ("pau", 0.85))


def symbols_of(line: str):
    return [SYMBOLS[i] for i in text_to_sequence(line, ["english_cleaners"])]


def test_each_symbol_gets_its_segment_marks_the_pauses_and_word_boundaries_no_time():
    symbols = symbols_of(LINE)
    assert symbols == ["@AH0", " ", "@K", "@AE1", "@T", ",", " ", "@S", "@AE1", "@T", "."]
    spans = symbol_spans(symbols, SEGMENTS, seconds=0.9)
    expected = [(0.0, 0.10), (0.10, 0.10), (0.10, 0.16), (0.16, 0.30), (0.30, 0.35), (0.35, 0.50), (0.50, 0.50),
                (0.50, 0.60), (0.60, 0.75), (0.75, 0.80), (0.80, 0.90)]
    np.testing.assert_allclose(spans, expected)


def test_phones_that_do_not_match_the_segments_are_refused():
    with pytest.raises(SegmentsError, match=r"where: symbol 2 is K but the segment spoken there is 'p'"):
        symbol_spans(symbols_of(LINE), SEGMENTS[:2] + (("p", 0.16),) + SEGMENTS[3:], 0.9, "where")
    with pytest.raises(SegmentsError, match="no segment left"):
        symbol_spans(symbols_of(LINE), SEGMENTS[:6], 0.9)
    with pytest.raises(SegmentsError, match="1 segments left after the last symbol"):
        symbol_spans(symbols_of(LINE), SEGMENTS[:-1] + (("d", 0.83), ("pau", 0.85)), 0.9)


def test_frame_positions_walk_through_each_symbol_in_its_own_time():
    spans = symbol_spans(symbols_of(LINE), SEGMENTS, seconds=0.9)
    hop = 0.01
    positions = frame_positions(spans, 90, hop).numpy()
    assert np.all(np.diff(positions) >= 0) and 0 <= positions[0] < 1 and 10 <= positions[-1] < 11
    symbol_at = np.floor(positions).astype(int)
    frames = np.bincount(symbol_at, minlength=11)
    np.testing.assert_array_equal(frames, np.round((spans[:, 1] - spans[:, 0]) / hop))  # 14 frames for "ae", ...
    assert frames[1] == frames[6] == 0  # the spaces are stepped over
    assert positions[23] == pytest.approx(3 + (0.235 - 0.16) / 0.14)  # frame 23's centre, inside "ae"
    np.testing.assert_allclose(step_positions(torch.from_numpy(positions)[None], 18)[0].numpy(),
                               positions.reshape(18, 5).mean(axis=1), rtol=1e-6)


def test_guided_loss_along_positions_is_the_diagonals_on_a_diagonal_path_and_prefers_the_true_path():
    N, T = 8, 16
    lengths, steps = torch.tensor([N]), torch.tensor([T])
    diagonal_path = (torch.arange(T) * N / T + 0.5)[None]
    attention = torch.softmax(torch.randn(1, T, N, generator=torch.Generator().manual_seed(0)), dim=2)
    assert guided_attention_loss(attention, lengths, steps, 0.1, diagonal_path).item() == pytest.approx(
        guided_attention_loss(attention, lengths, steps, 0.1).item(), rel=1e-5)
    # a path that lingers on symbol 2 for half the steps: attention that follows it costs less along it
    path = torch.tensor([[0.5, 1.5] + [2.5] * 8 + [3.5, 4.5, 5.5, 6.5, 7.5, 7.5]])
    follows = torch.nn.functional.one_hot(path[0].long(), N).float()[None]
    assert guided_attention_loss(follows, lengths, steps, 0.1, path).item() < 1e-6
    assert guided_attention_loss(follows, lengths, steps, 0.1).item() > 0.2


def write_corpus(root, lines, segments):
    """A corpus of tones named by lines ({id: arpabet}) with a segments.csv; returns the filelist's path."""
    os.makedirs(os.path.join(root, "wavs"), exist_ok=True)
    rate = 22050
    with open(os.path.join(root, "list.txt"), "w") as f:
        for utt_id, line in lines.items():
            seconds = 0.9
            t = np.arange(int(seconds * rate)) / rate
            sf.write(os.path.join(root, "wavs", utt_id + ".wav"), 0.3 * np.sin(2 * np.pi * 220 * t), rate,
                     subtype="PCM_16")
            f.write(f"wavs/{utt_id}.wav|{line}\n")
    write_segments(os.path.join(root, "segments.csv"), segments)
    return os.path.join(root, "list.txt")


def test_items_carry_frame_positions_into_the_loss(tmp_path):
    filelist = write_corpus(str(tmp_path), {"A": LINE, "B": "{K AE1 T}."},
                            {"A": SEGMENTS, "B": (("k", 0.2), ("ae", 0.5), ("t", 0.6), ("pau", 0.9))})
    audio = AudioConfig()
    dataset = TextMelLoader(str(tmp_path), filelist, audio, ["english_cleaners"],
                            segments=read_segments(str(tmp_path / "segments.csv")))
    text, mel, n, positions = dataset[0]
    assert positions.shape == (mel.size(1),) and positions[0] < 1 and 10 <= positions[-1] < 11
    batch = TextMelCollate(5)([dataset[1], dataset[0]])
    assert len(batch) == 6 and batch[5].shape == batch[3].shape
    assert torch.equal(batch[5][0, :mel.size(1)], positions)  # sorted by text length: A first
    x, y, _ = batch_to_device(batch, torch.device("cpu"))
    assert len(y) == 5
    steps = batch[2].size(2) // 5
    attention = torch.full((2, steps, x[3]), 1.0 / x[3], requires_grad=True)
    outputs = (batch[2], batch[2], torch.zeros(2, steps), attention)
    loss = Tacotron2Loss(guided_attention_weight=1.0, guided_attention_sigma=0.1)
    along, diagonal = loss(outputs, y), loss(outputs, y[:4])
    assert along.item() != pytest.approx(diagonal.item())
    along.backward()
    # the gradient pushes the attention off where the durations say the step is not: at A's first step the
    # symbols far from 0 cost most
    assert attention.grad[0, 0, 0] < attention.grad[0, 0, 5]


def test_the_durations_path_and_the_diagonal_have_their_own_widths():
    """A corpus without segment times falls back to the diagonal, a guess: it keeps the diagonal's width, not
    the narrow band that the known path is given (the fallback once trained LJSpeech along a 0.03-wide diagonal)."""
    steps, symbols = 12, 10
    attention = torch.softmax(torch.randn(1, steps, symbols, generator=torch.Generator().manual_seed(0)), -1)
    lengths, frames = torch.tensor([symbols]), torch.tensor([steps * 5])
    outputs = (torch.zeros(1, 80, steps * 5),) * 2 + (torch.zeros(1, steps), attention)
    positions = torch.linspace(0, symbols - 0.01, steps * 5)[None]
    y = (torch.zeros(1, 80, steps * 5), torch.zeros(1, steps * 5), lengths, frames)
    loss = Tacotron2Loss(guided_attention_weight=1.0, guided_attention_sigma=0.2, guided_attention_durations_sigma=0.03)
    base = Tacotron2Loss()(outputs, y).item()
    step_path = step_positions(positions, steps)
    assert loss(outputs, y).item() - base == pytest.approx(
        guided_attention_loss(attention, lengths, torch.tensor([steps]), 0.2).item(), rel=1e-5)
    assert loss(outputs, y + (positions,)).item() - base == pytest.approx(
        guided_attention_loss(attention, lengths, torch.tensor([steps]), 0.03, step_path).item(), rel=1e-5)


def test_missing_or_mismatched_segments_name_the_filelist_line(tmp_path):
    filelist = write_corpus(str(tmp_path), {"A": LINE, "B": "{K AE1 T}."}, {"A": SEGMENTS})
    with pytest.raises(FilelistError, match=r"list.txt:2: B has no line in the corpus's segments.csv"):
        TextMelLoader(str(tmp_path), filelist, AudioConfig(), ["english_cleaners"],
                      segments=read_segments(str(tmp_path / "segments.csv")))
    bad = {"A": SEGMENTS, "B": (("k", 0.2), ("iy", 0.5), ("t", 0.6))}
    with pytest.raises(FilelistError, match=r"list.txt:2: symbol 1 is AE but the segment spoken there is 'iy'"):
        TextMelLoader(str(tmp_path), filelist, AudioConfig(), ["english_cleaners"], segments=bad)


def test_a_malformed_segments_file_is_refused_with_its_line(tmp_path):
    path = tmp_path / "segments.csv"
    path.write_text("A|pau:0.05 ax:0.10\nB|k:0.2 ae:0.1\n")
    with pytest.raises(SegmentsError, match=r"segments.csv:2: 'ae:0.1' is not 'name:end' with end times in order"):
        read_segments(str(path))
    path.write_text("A pau:0.05\n")
    with pytest.raises(SegmentsError, match=r"segments.csv:1: expected 'id\|name:end"):
        read_segments(str(path))


def test_festivals_printout_gives_the_segments_of_each_sentence():
    out = "\n".join(["@U", "@S\tpau\t0.175000", "@S\tk\t0.250000", "@S\tae\t0.400000", "@S\tt\t0.450000",
                     "@S\tpau\t0.600000", "@W\tcat\t-\tk1\tae1\tt1", "@E", "@U", "@W\tdog\t-\td1\tao1\tg1", "@E"])
    cat, dog = _parse_reports(out, 2)
    assert cat.arpabet == "{K AE1 T}" and cat.segments == (("pau", 0.175), ("k", 0.25), ("ae", 0.4), ("t", 0.45),
                                                            ("pau", 0.6))
    assert dog.arpabet == "{D AO1 G}" and dog.segments == ()  # the front end alone speaks nothing


def test_training_with_durations_runs_and_falls_back_to_the_diagonal_without_them(tmp_path):
    lines = {f"U{i}": LINE for i in range(6)}
    filelist = write_corpus(str(tmp_path), lines, {k: SEGMENTS for k in lines})
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_T2_FLAGS))
    argv = ["train.py", "-m", "Tacotron2", "-o", str(tmp_path / "out"), "-d", str(tmp_path), "-lr", "1e-3",
            "--epochs", "1", "-bs", "3", "--training-files", filelist, "--validation-files", filelist,
            "--config-file", str(config), "--guided-attention-weight", "2", "--guided-attention-durations",
            "--val-metrics", "2",
            "--text-frontend", "festival"]
    done = run_python(argv)
    assert done.returncode == 0, done.stderr[-3000:]
    assert os.path.isfile(tmp_path / "out" / "checkpoint_Tacotron2_last.pt")
    os.remove(tmp_path / "segments.csv")
    diagonal = run_python(argv[:4] + [str(tmp_path / "out2")] + argv[5:])
    assert diagonal.returncode == 0, diagonal.stderr[-3000:]
    assert "segments.csv not found, so the guided attention follows the diagonal, 0.2 wide" in diagonal.stderr
