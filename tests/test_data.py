"""Datasets, collate and the checks that stop bad data before the first step (file:line named)."""
import os

import numpy as np
import pytest
import soundfile as sf
import torch

import train
from common.audio import AudioConfig, AudioError, load_wav
from common.filelist import FilelistError, load_filelist
from tacotron2.data_function import TextMelCollate, TextMelLoader
from waveglow.data_function import MelAudioLoader

SR = 22050


def _tone(n=SR // 2, amp=0.3):
    return (amp * np.sin(2 * np.pi * 220 * np.arange(n) / SR)).astype(np.float32)


def _write(root, name, data=None, sr=SR, subtype="PCM_16"):
    path = os.path.join(root, name)
    sf.write(path, _tone() if data is None else data, sr, subtype=subtype)
    return path


def _filelist(root, lines, name="list.txt"):
    path = os.path.join(root, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def root(tmp_path):
    _write(str(tmp_path), "good.wav")
    _write(str(tmp_path), "good2.wav", _tone(SR))
    return str(tmp_path)


def _loader(root, lines, **kw):
    return TextMelLoader(root, _filelist(root, lines), AudioConfig(), ["english_cleaners"], **kw)


def test_valid_filelist_gives_items(root):
    ds = _loader(root, ["good.wav|Hello there.", "good2.wav|A second, longer line of text."])
    text, mel, n = ds[1]
    assert mel.shape == (80, SR // 256 + 1) and n == len(text) > 20


BAD_CASES = {
    "missing wav": (lambda r: None, "nothere.wav|Some text.", "audio file not found"),
    "wrong sample rate": (lambda r: _write(r, "sr.wav", sr=16000), "sr.wav|Some text.", "16000 Hz, expected 22050"),
    "stereo": (lambda r: _write(r, "st.wav", np.stack([_tone(), _tone()], 1)), "st.wav|Some text.", "2 channels"),
    "8-bit": (lambda r: _write(r, "u8.wav", subtype="PCM_U8"), "u8.wav|Some text.", "PCM_U8"),
    "empty wav": (lambda r: _write(r, "empty.wav", np.zeros(0, np.float32)), "empty.wav|Some text.", "no samples"),
    "not audio": (lambda r: _write_text(os.path.join(r, "txt.wav"), "hello"), "txt.wav|Some text.",
                  "not a readable audio file"),
    "empty transcript": (lambda r: None, "good.wav|   ", "empty transcript"),
    "unspeakable transcript": (lambda r: None, "good.wav|%%% ###", "no speakable symbol"),
    "malformed line": (lambda r: None, "good.wav Some text without a bar", "expected 'path|text'"),
    "escaping path": (lambda r: None, "../outside.wav|Some text.", "outside the dataset path"),
    "absolute path elsewhere": (lambda r: None, "/usr/share/outside.wav|Some text.",
                                "resolves to '/usr/share/outside.wav', outside the dataset path"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_data_is_named_with_file_and_line(root, case):
    make, line, message = BAD_CASES[case]
    make(root)
    with pytest.raises((FilelistError, AudioError)) as err:
        _loader(root, ["good.wav|A fine first line.", line])
    assert "list.txt:2" in str(err.value) and message in str(err.value)


def test_absolute_paths_inside_the_dataset_folder_are_accepted(root):
    """NVIDIA's repository reads absolute filelist paths, and users' filelists hold them: one that resolves inside
    -d is the same file as its relative path (was refused as 'escapes the dataset path')."""
    absolute = os.path.join(os.path.realpath(root), "good2.wav")
    ds = _loader(root, ["good.wav|Hello there.", f"{absolute}|A second, longer line of text."])
    relative = _loader(root, ["good.wav|Hello there.", "good2.wav|A second, longer line of text."])
    assert torch.equal(ds[1][1], relative[1][1])


def _mel_root(root, mel):
    torch.save(mel, os.path.join(root, "m.pt"))
    return ["m.pt|Some text."]


@pytest.mark.parametrize("mel,message", [
    (torch.zeros(40, 10), "expected a float mel of shape (80, frames)"),
    (torch.zeros(80, 10, dtype=torch.int64), "expected a float mel"),
    ({"not": "a tensor"}, "expected a float mel"),
    (torch.zeros(80, 10).index_fill_(1, torch.tensor([3]), float("nan")), "80 non-finite values (NaN or Inf)"),
    (torch.zeros(80, 10).fill_(float("-inf")), "800 non-finite values (NaN or Inf)"),
])
def test_bad_mel_files_are_named(root, mel, message):
    lines = _mel_root(root, mel)
    with pytest.raises(FilelistError) as err:
        _loader(root, lines, load_mel_from_disk=True)
    assert "list.txt:1" in str(err.value) and message in str(err.value)


def test_train_fails_before_the_first_step_on_bad_data(root, tmp_path):
    flist = _filelist(root, ["good.wav|Fine.", "good2.wav|Also fine.", "nothere.wav|Missing."])
    out = str(tmp_path / "out")
    with pytest.raises(SystemExit, match=r"list.txt:3: .*nothere.wav: audio file not found"):
        train.main(["-m", "Tacotron2", "-o", out, "-d", root, "-lr", "1e-3", "--epochs", "1", "-bs", "2",
                    "--training-files", flist, "--validation-files", ""])
    assert not any(f.startswith("checkpoint") for f in os.listdir(out))


def test_collate_sorts_pads_and_builds_gates():
    items = [(torch.IntTensor([5, 6, 7]), torch.ones(4, 5), 3), (torch.IntTensor([5, 6, 7, 8, 9]), torch.ones(4, 7), 5)]
    text, in_len, mel, gate, out_len = TextMelCollate(n_frames_per_step=3)(items)
    assert in_len.tolist() == [5, 3] and out_len.tolist() == [7, 5]
    assert mel.shape == (2, 4, 9)  # 7 padded to a multiple of 3
    assert gate[0].tolist() == [0] * 6 + [1] * 3 and gate[1].tolist() == [0] * 4 + [1] * 5
    assert text[1].tolist() == [5, 6, 7, 0, 0] and mel[1, :, 5:].abs().sum() == 0


def test_waveglow_segments_are_seeded_by_epoch_and_index(root):
    ds = MelAudioLoader(root, _filelist(root, ["good2.wav|x", "good.wav|y"]), AudioConfig(), segment_length=4096)
    a = ds[0][1]
    assert torch.equal(a, ds[0][1])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[0][1])
    mel, audio = ds[1]
    assert audio.shape == (4096,) and mel.shape == (80, 4096 // 256 + 1)


def test_load_wav_scales_16_bit_like_the_reference(root):
    data, _ = sf.read(os.path.join(root, "good.wav"), dtype="int16")
    audio = load_wav(os.path.join(root, "good.wav"), SR)
    assert torch.allclose(audio, torch.from_numpy(data.astype(np.float32)) / 32768.0)


def test_filelist_blank_lines_are_skipped_and_lines_counted(root):
    path = _filelist(root, ["", "good.wav|a", "", "good2.wav|b"])
    entries = load_filelist(path, root)
    assert [e.line for e in entries] == [2, 4]


def test_bucket_sampler_covers_items_once_with_similar_lengths():
    from common.training.sampler import BucketBatchSampler
    lengths = [int(x) for x in torch.randint(10, 500, (203,), generator=torch.Generator().manual_seed(0))]
    ranks = [BucketBatchSampler(lengths, 4, num_replicas=2, rank=r, seed=5, bucket=8) for r in range(2)]
    batches = [list(s) for s in ranks]
    assert len(batches[0]) == len(batches[1]) == len(ranks[0])
    flat = [i for b in batches[0] + batches[1] for i in b]
    assert len(flat) == len(set(flat)) and len(flat) >= 203 - 4 * 2 - 3
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches[0]) / len(batches[0])
    assert spread < 60  # random batches of 4 from U[10, 500) spread about 290
    again = list(BucketBatchSampler(lengths, 4, num_replicas=2, rank=0, seed=5, bucket=8))
    assert again == batches[0]
    ranks[0].set_epoch(1)
    assert list(ranks[0]) != batches[0]


def test_resumable_batch_sampler_skips_once_and_forwards_the_epoch():
    from torch.utils.data import BatchSampler, DistributedSampler
    from common.training.sampler import ResumableBatchSampler
    inner = BatchSampler(DistributedSampler(range(20), num_replicas=1, rank=0, shuffle=True, seed=3), 4, True)
    sampler = ResumableBatchSampler(inner)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.skip = 3
    assert len(sampler) == 5 and list(sampler) == full[3:]
    assert list(sampler) == full  # the skip applies to one epoch only
    sampler.set_epoch(3)
    assert list(sampler) != full  # the epoch reached the shuffling sampler
