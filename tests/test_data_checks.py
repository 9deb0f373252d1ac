"""Data that looks fine but is not: audio content, text files from anywhere, the dataset doctor, the cache of
checked clips, a full disk mid-run."""
import errno
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import train
from common.training import data_checks
from common.filelist import FilelistEntry, FilelistError, load_filelist

from .corpus import train_argv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 22050


def _tone(seconds=1.0, amp=0.3, dc=0.0, lead=0.0, trail=0.0):
    t = np.arange(int(seconds * SR)) / SR
    x = amp * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + dc
    return np.concatenate([np.zeros(int(lead * SR)), x, np.zeros(int(trail * SR))])


def test_measurements_of_known_signals():
    s = data_checks.measure(_tone(1.0, lead=1.5, trail=0.5), SR)
    assert s.nonfinite == 0 and abs(s.lead_silence - 1.5) < 0.02 and abs(s.trail_silence - 0.5) < 0.02
    # tone RMS 0.3 / sqrt(2) * sqrt(0.6^2 + 0.4^2 / 2) = 0.1407 (-17.0 dBFS), over 3 s of which 1 s sounds: -21.8
    assert abs(s.rms_db - (20 * math.log10(0.3 / math.sqrt(2) * math.sqrt(0.44)) - 10 * math.log10(3))) < 0.2
    assert s.clipped == 0
    silent = data_checks.measure(np.zeros(SR), SR)
    assert silent.rms_db == float("-inf") and silent.peak == 0
    clipped = data_checks.measure(np.clip(_tone(1.0, amp=3.0), -1, 1), SR)
    assert clipped.clipped > 0.2
    assert abs(data_checks.measure(_tone(1.0, dc=0.2), SR).dc_offset - 0.2) < 0.01
    x = _tone(1.0)
    x[100:110] = np.nan
    assert data_checks.measure(x, SR).nonfinite == 10


def test_judge_names_the_line_and_the_fix():
    entry = FilelistEntry("a.wav", ["text"], 7, "list.txt")
    found = data_checks.judge(entry, data_checks.measure(np.zeros(SR), SR))
    assert [f.error for f in found] == [True] and str(found[0]).startswith("error: list.txt:7: a.wav: silent")
    found = data_checks.judge(entry, data_checks.measure(_tone(1.0, lead=2.0), SR), min_samples=4 * SR)
    assert [f.error for f in found] == [False, False]
    assert "leading silence" in found[0].message and "shorter than a training segment" in found[1].message
    assert data_checks.judge(entry, data_checks.measure(_tone(1.0), SR), cps=40.0, cps_z=9.0)[0].message.startswith(
        "a.wav: 40.0 characters per second")


def _corpus_copy(corpus, tmp_path):
    root = str(tmp_path / "data")
    shutil.copytree(corpus, root)
    return root


def _train_list(root):
    return os.path.join(root, "filelists", "espeak_audio_text_train_filelist.txt")


def _line_path(root, n):
    with open(_train_list(root)) as f:
        return os.path.join(root, f.read().splitlines()[n - 1].split("|")[0])


def test_a_silent_clip_stops_training_naming_its_line(corpus, tmp_path):
    root = _corpus_copy(corpus, tmp_path)
    sf.write(_line_path(root, 3), np.zeros(2 * SR, dtype=np.int16), SR, subtype="PCM_16")
    with pytest.raises(SystemExit, match=r"espeak_audio_text_train_filelist.txt:3: .*silent"):
        train.main(train_argv(root, "Tacotron2", str(tmp_path / "out"), epochs=1))
    assert not any(f.startswith("checkpoint") for f in os.listdir(tmp_path / "out"))


def test_nan_samples_in_a_float_wav_stop_waveglow_training(corpus, tmp_path):
    root = _corpus_copy(corpus, tmp_path)
    path = _line_path(root, 2)
    x, _ = sf.read(path, dtype="float32")
    x[1000:1010] = np.nan
    sf.write(path, x, SR, subtype="FLOAT")
    with pytest.raises(SystemExit, match=r"_filelist.txt:2: .*10 NaN/inf samples"):
        train.main(train_argv(root, "WaveGlow", str(tmp_path / "out"), epochs=1))


def test_edge_silence_warns_and_strict_refuses(corpus, tmp_path, capsys):
    root = _corpus_copy(corpus, tmp_path)
    path = _line_path(root, 1)
    x, _ = sf.read(path, dtype="int16")
    sf.write(path, np.concatenate([np.zeros(int(1.5 * SR), np.int16), x]), SR, subtype="PCM_16")
    assert train.main(train_argv(root, "Tacotron2", str(tmp_path / "lenient"), epochs=1)) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "_filelist.txt:1: " in err and "of leading silence" in err
    with pytest.raises(SystemExit, match="leading silence"):
        train.main(train_argv(root, "Tacotron2", str(tmp_path / "strict"), "--data-checks", "strict", epochs=1))


def test_filelists_from_other_platforms(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(str(wav), (_tone(0.5) * 32767).astype(np.int16), SR, subtype="PCM_16")
    (tmp_path / "bom.txt").write_bytes("\ufeffa.wav|Hello there.  \r\nb.wav|Second.\r".encode("utf-8"))
    entries = load_filelist(str(tmp_path / "bom.txt"), str(tmp_path))
    assert entries[0].path == str(wav) and entries[0].fields == ["Hello there."] and entries[1].line == 2
    (tmp_path / "latin1.txt").write_bytes("a.wav|fine\nb.wav|caf\xe9\n".encode("latin-1"))
    with pytest.raises(FilelistError, match=r"latin1.txt:2: not UTF-8 text \(byte 0xe9\)"):
        load_filelist(str(tmp_path / "latin1.txt"), str(tmp_path))


def test_config_file_with_a_byte_order_mark(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_bytes("\ufeff{\"batch_size\": 3}\r\n".encode("utf-8"))
    args = train.parse_args(["-m", "Tacotron2", "-o", "o", "--epochs", "1", "-lr", "1e-3", "--config-file", str(cfg)])
    assert args.batch_size == 3


def test_the_manifest_spares_measuring_unchanged_clips(corpus, tmp_path, monkeypatch):
    calls = []
    real = data_checks._measure_file
    monkeypatch.setattr(data_checks, "_measure_file", lambda p: calls.append(p) or real(p))
    entries = load_filelist(_train_list(corpus), corpus)
    manifest_path = str(tmp_path / "m.json")
    first, _ = data_checks.check_corpus(entries, data_checks.Manifest(manifest_path), jobs=1)
    assert len(calls) == len(entries)
    again, _ = data_checks.check_corpus(entries, data_checks.Manifest(manifest_path), jobs=1)
    assert len(calls) == len(entries) and again == first  # nothing measured again
    os.utime(entries[0].path, ns=(0, 10 ** 9))  # a changed file is measured again
    data_checks.check_corpus(entries, data_checks.Manifest(manifest_path), jobs=1)
    assert calls[-1] == entries[0].path and len(calls) == len(entries) + 1


def test_a_nonfinite_validation_loss_is_said_loudly(corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train, "validate", lambda *a, **k: (float("nan"), 1.0))  # (loss, items per second)
    assert train.main(train_argv(corpus, "Tacotron2", str(tmp_path / "out"), epochs=1)) == 0
    assert "WARNING: epoch 0: the validation loss is nan" in capsys.readouterr().err


def test_a_full_disk_mid_run_keeps_the_last_good_checkpoint(corpus, tmp_path, monkeypatch):
    from common import checkpoint
    out = str(tmp_path / "out")
    real = checkpoint.torch.save
    saves = []

    def save(obj, f, *a, **k):
        saves.append(1)
        if len(saves) > 1:  # epoch 0 wrote checkpoint_0 (_last is its second name); epoch 1 finds the disk full
            f.write(b"partial")  # a torn temporary file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)
    monkeypatch.setattr(checkpoint.torch, "save", save)
    with pytest.raises(SystemExit, match=r"the disk is full .*checkpoint_Tacotron2_last.pt, is intact"):
        train.main(train_argv(corpus, "Tacotron2", out, epochs=2))
    monkeypatch.setattr(checkpoint.torch, "save", real)
    ckpt = checkpoint.load_checkpoint_file(os.path.join(out, "checkpoint_Tacotron2_last.pt"))
    assert ckpt["epoch"] == 0 and not [f for f in os.listdir(out) if f.endswith(".tmp")]


def _doctor(*argv):
    return subprocess.run([sys.executable, "-m", "scripts.check_dataset", *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_the_doctor_reports_a_corrupted_corpus_and_fixes_it(corpus, tmp_path):
    root = _corpus_copy(corpus, tmp_path)
    train_list = _train_list(root)
    val_list = os.path.join(root, "filelists", "espeak_audio_text_val_filelist.txt")
    sf.write(_line_path(root, 1), np.zeros(SR, dtype=np.int16), SR, subtype="PCM_16")  # silent
    x, _ = sf.read(_line_path(root, 2), dtype="float64")
    sf.write(_line_path(root, 2), np.concatenate([np.zeros(2 * SR), x]) + 0.1, SR, subtype="PCM_16")  # edge, DC
    with open(val_list) as f, open(train_list, "a") as t:  # a validation clip trained on
        t.write(f.readline())
    report = _doctor("-d", root, "--filelist", train_list, val_list, "--png", str(tmp_path / "r.png"))
    assert report.returncode == 1, report.stderr
    out = report.stdout
    assert "_train_filelist.txt:1: " in out and "silent" in out and "of leading silence" in out
    assert "DC offset +0.10" in out and "clip(s) in both" in out and "duplicates: " in out
    assert os.path.getsize(tmp_path / "r.png") > 5000
    fixed = tmp_path / "fixed"
    assert _doctor("-d", root, "--filelist", train_list, val_list, "--fix", str(fixed)).returncode == 1
    new_list = str(fixed / os.path.basename(train_list))
    with open(new_list) as f, open(train_list) as g:  # the silent line and the validation clip dropped
        assert len(f.readlines()) == len(g.readlines()) - 2
    again = _doctor("-d", str(fixed), "--filelist", new_list, str(fixed / os.path.basename(val_list)))
    assert again.returncode == 0, again.stdout[-2000:]
    assert "of leading silence" not in again.stdout and "DC offset +" not in again.stdout
    assert "problems: 0 line(s) that cannot train" in again.stdout
    trimmed = data_checks.measure(sf.read(str(fixed / os.path.relpath(_line_path(root, 2), root)))[0], SR)
    assert trimmed.lead_silence < 0.2 and abs(trimmed.dc_offset) < 0.01 and math.isfinite(trimmed.rms_db)
