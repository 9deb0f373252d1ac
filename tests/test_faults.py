"""A fourth set of faults, each made real (a file-size limit or a small tmpfs for a short write, a read-only mount
or a path under a file for an output, out-of-range numbers, bytes that are not UTF-8) and checked at every entry
point where it can occur: a clear message naming the file or flag, no traceback, nothing already written lost."""
import argparse
import importlib
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys

import pytest

import train
from common.training import flags
from common.checkpoint import CheckpointError, load_checkpoint_file, save_training_checkpoint
from common.dllog import read_log
from common.flag_types import Number
from tacotron2.model import Tacotron2

from .conftest import REPO, TINY_TACOTRON2
from .corpus import train_argv


def _limit_file_size(limit: int):
    """preexec_fn: files of this process may not grow past `limit` bytes; a write past it fails with EFBIG
    (SIGXFSZ ignored, as a daemon would), exactly where a full disk fails with ENOSPC."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _python(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=300, **kw)


def _clean_refusal(res: subprocess.CompletedProcess, *expected: str) -> None:
    assert res.returncode != 0, res.stdout[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    for text in expected:
        assert text in res.stderr, (text, res.stderr[-3000:])


@pytest.fixture(scope="module")
def t2_checkpoint(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("t2") / "t2.pt")
    config = {**TINY_TACOTRON2, "n_mel_channels": 80, "max_decoder_steps": 20}
    save_training_checkpoint(path, model=Tacotron2(**config), model_name="Tacotron2", config=config, epoch=0,
                             iteration=0)
    return path


# 1. A write that comes up short in the middle of a checkpoint

def test_a_checkpoint_write_cut_short_ends_in_the_clear_message_and_a_resume_works(corpus, tmp_path):
    out = str(tmp_path / "run")
    assert _python(["train.py", *train_argv(corpus, "Tacotron2", out, epochs=1)]).returncode == 0
    last = os.path.join(out, "checkpoint_Tacotron2_last.pt")
    size = os.path.getsize(last)
    # the next checkpoint cannot grow past half the size of the last one: the zip writer fails part-way
    res = _python(["train.py", *train_argv(corpus, "Tacotron2", out, "--resume-from-last", epochs=2)],
                  preexec_fn=_limit_file_size(size // 2))
    _clean_refusal(res, "larger than this system allows", "nothing was half-written", f"{last}, is intact")
    assert "inline_container" not in res.stderr
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    assert load_checkpoint_file(last)["epoch"] == 0
    # space freed: the run resumes from the intact checkpoint
    res = _python(["train.py", *train_argv(corpus, "Tacotron2", out, "--resume-from-last", epochs=2)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert load_checkpoint_file(last)["epoch"] == 1


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


def test_a_disk_that_fills_mid_checkpoint_on_a_real_tmpfs(corpus, tmp_path):
    """The same fault on a real file system: a tmpfs with room for two and a half checkpoints. Epochs 0 and 1
    write one each (the last checkpoint is a second name of the numbered one), epoch 2's runs out part-way."""
    if not _can_mount():
        pytest.skip("needs a private mount namespace (unshare -m), which this machine does not allow")
    probe = str(tmp_path / "probe")
    assert train.main(train_argv(corpus, "Tacotron2", probe, epochs=1)) == 0
    size = os.path.getsize(os.path.join(probe, "checkpoint_Tacotron2_last.pt"))
    out = tmp_path / "small"
    out.mkdir()
    argv = " ".join(shlex.quote(a) for a in train_argv(corpus, "Tacotron2", str(out), "--log-file",
                                                        str(tmp_path / "log.json"), epochs=3))
    script = f"mount -t tmpfs -o size={(5 * size // 2) // 1024}k tmpfs {out} && {sys.executable} train.py {argv}"
    res = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    _clean_refusal(res, "the disk is full", "checkpoint_Tacotron2_last.pt, is intact")
    assert "inline_container" not in res.stderr


def test_the_last_checkpoint_is_the_numbered_one_under_a_second_name(corpus, tmp_path, monkeypatch):
    """One epoch's checkpoint is written once (a hard link, as NVIDIA's `_last` is a symlink), and the next
    epoch's `_last` replaces the name only: the numbered file it pointed at keeps its bytes. Where the file system
    has no hard links, `_last` is written out in full."""
    out = str(tmp_path / "run")
    assert train.main(train_argv(corpus, "Tacotron2", out, epochs=1)) == 0
    last, first = os.path.join(out, "checkpoint_Tacotron2_last.pt"), os.path.join(out, "checkpoint_Tacotron2_0.pt")
    assert os.path.samefile(last, first)
    with open(first, "rb") as f:
        first_bytes = f.read()
    assert train.main(train_argv(corpus, "Tacotron2", out, "--resume-from-last", epochs=2)) == 0
    assert os.path.samefile(last, os.path.join(out, "checkpoint_Tacotron2_1.pt"))
    with open(first, "rb") as f:
        assert f.read() == first_bytes
    assert load_checkpoint_file(first)["epoch"] == 0 and load_checkpoint_file(last)["epoch"] == 1
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]

    def no_links(src, dst):
        raise OSError(1, "Operation not permitted")
    monkeypatch.setattr(os, "link", no_links)
    assert train.main(train_argv(corpus, "Tacotron2", out, "--resume-from-last", epochs=3)) == 0
    assert not os.path.samefile(last, os.path.join(out, "checkpoint_Tacotron2_2.pt"))
    assert load_checkpoint_file(last)["epoch"] == 2
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


def test_an_unfinished_write_left_by_a_killed_run_is_removed_on_resume(corpus, tmp_path):
    out = str(tmp_path / "run")
    assert train.main(train_argv(corpus, "Tacotron2", out, epochs=1)) == 0
    # what SIGKILL in the middle of atomic_save leaves beside the checkpoints
    stale = os.path.join(out, "checkpoint_Tacotron2_last.pt.k9x2m1.tmp")
    with open(stale, "wb") as f:
        f.write(b"PK\x03\x04 half a zip")
    other = os.path.join(out, "notes.tmp")  # not ours: left alone
    open(other, "w").close()
    res = _python(["train.py", *train_argv(corpus, "Tacotron2", out, "--resume-from-last", epochs=2)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert not os.path.exists(stale) and os.path.exists(other)
    assert f"removed {stale}, an unfinished checkpoint write" in res.stderr


@pytest.mark.parametrize("tool", ["convert_checkpoint", "preprocess_audio2mel", "export"])
def test_other_writers_report_a_short_write_clearly(corpus, t2_checkpoint, tmp_path, tool):
    """export.py was worse than a traceback: TorchScript's writer ended the process in `terminate called`."""
    if tool == "export":
        argv, target = ["export.py", "--tacotron2", t2_checkpoint, "-o", str(tmp_path / "out")], "tacotron2_encoder.pt"
    elif tool == "convert_checkpoint":
        src = str(tmp_path / "model.pt")
        save_training_checkpoint(src, model=Tacotron2(**TINY_TACOTRON2), model_name="Tacotron2",
                                 config=TINY_TACOTRON2, epoch=0, iteration=0)
        argv, target = ["-m", "scripts.convert_checkpoint", src, str(tmp_path / "out.pt")], "out.pt"
    else:  # the corpus's wavs copied (the mels are written beside them)
        shutil.copytree(os.path.join(corpus, "wavs"), tmp_path / "wavs")
        wavs = os.path.join(corpus, "filelists", "espeak_audio_text_train_filelist.txt")
        with open(wavs, encoding="utf-8") as f:
            (tmp_path / "mels.txt").write_text("".join(f"mels/{i}.pt|x\n" for i, _ in enumerate(f)))
        argv = ["preprocess_audio2mel.py", "-d", str(tmp_path), "--wav-files", wavs,
                "--mel-files", str(tmp_path / "mels.txt")]
        target = "mels.txt:1: cannot write"
    res = _python(argv, preexec_fn=_limit_file_size(2048))
    _clean_refusal(res, "cannot write", target)
    assert not [f for _, _, files in os.walk(tmp_path) for f in files if f.endswith(".tmp")]


# 2. Resuming an epoch with other settings

def _stopped_after_one_step(corpus, out, *extra):
    """A run that stops (with a mid-epoch checkpoint) right after its first step: its time budget is used up (and
    read after every step)."""
    assert train.main(train_argv(corpus, "Tacotron2", out, "--max-minutes", "1e-6", "--log-interval", "1", *extra,
                                 epochs=2)) == 0
    ckpt = load_checkpoint_file(os.path.join(out, "checkpoint_Tacotron2_last.pt"))
    assert (ckpt["resume_epoch"], ckpt["resume_batch"]) == (0, 1)


def test_resuming_mid_epoch_with_another_batch_size_is_refused_naming_both(corpus, tmp_path):
    out = str(tmp_path / "run")
    _stopped_after_one_step(corpus, out)
    with pytest.raises(SystemExit, match=r"middle of epoch 0 \(after 1 batches\).*--batch-size was 4, now 2"):
        train.main(train_argv(corpus, "Tacotron2", out, "--resume-from-last", epochs=2, bs=2))
    # the same settings finish the epoch
    assert train.main(train_argv(corpus, "Tacotron2", out, "--resume-from-last", epochs=2)) == 0


def test_resuming_mid_epoch_on_another_number_of_processes_is_refused(corpus, tmp_path):
    from common.training import resume
    out = str(tmp_path / "run")
    _stopped_after_one_step(corpus, out)
    ckpt = load_checkpoint_file(os.path.join(out, "checkpoint_Tacotron2_last.pt"))
    ckpt["rank_rng_states"] = ckpt["rank_rng_states"] * 2  # as two processes wrote it
    with pytest.raises(CheckpointError, match="the number of processes was 2, now 1"):
        resume.check_epoch_shape(ckpt, "ck.pt", ckpt["train_args"], 1, resume.Position(0, 1, 1))


def test_an_epoch_resumed_after_its_last_batch_logs_no_loss_it_did_not_compute(corpus, tmp_path):
    out = str(tmp_path / "run")
    # one batch per epoch: the stop after the first step is at the epoch's last batch
    assert train.main(train_argv(corpus, "Tacotron2", out, "--max-minutes", "1e-6", "--max-steps-per-epoch", "1",
                                 epochs=2)) == 0
    assert train.main(train_argv(corpus, "Tacotron2", out, "--resume-from-last", "--max-steps-per-epoch", "1",
                                 epochs=2)) == 0
    epochs = {r["step"][0]: r["data"] for r in read_log(os.path.join(out, "nvlog.json"))
              if r["type"] == "LOG" and isinstance(r.get("step"), list) and len(r["step"]) == 1}
    assert "train_loss" not in epochs[0] and epochs[0]["val_loss"] > 0
    assert epochs[1]["train_loss"] > 0


# 4 and 6. Outputs that cannot be written, for every entry point that writes

def _entry_points(corpus, ckpt, out):
    """(module, argv with OUT where the output goes, the flag named): every entry point that writes files."""
    t2 = ckpt
    return [
        ("train", train_argv(corpus, "Tacotron2", out, epochs=1), "-o"),
        ("inference", ["--tacotron2", t2, "--vocoder", "griffin-lim", "-i", "phrases/demo.txt", "-o", out, "--cpu"],
         "-o"),
        ("test_infer", ["--tacotron2", t2, "--vocoder", "griffin-lim", "--cpu", "--log-file",
                        os.path.join(out, "log.json")], "--log-file"),
        ("export", ["--tacotron2", t2, "-o", out], "-o"),
        ("scripts.evaluate_tacotron2", ["--tacotron2", t2, "-d", corpus, "--filelist", "x.txt", "-o", out], "-o"),
        ("scripts.make_corpus", ["-o", out, "--voice", "espeak"], "-o"),
        ("scripts.write_filelists", ["--metadata", os.path.join(corpus, "metadata.csv"), "-o", out], "-o"),
        ("scripts.convert_checkpoint", [t2, os.path.join(out, "c.pt")], "output"),
        ("scripts.listen_curve", [corpus, "-d", corpus, "--filelist", "x.txt", "-o", os.path.join(out, "c.json")],
         "-o"),
        ("scripts.phonemize", ["in.txt", os.path.join(out, "p.txt")], "output"),
        ("scripts.frontend_check", ["--tacotron2", t2, "-d", corpus, "--filelist", "x.txt", "-o",
                                    os.path.join(out, "f.json")], "-o"),
        ("scripts.check_dataset", ["-d", corpus, "--filelist", "x.txt", "--fix", out], "--fix"),
        ("scripts.export_samples", [corpus, out], "out_dir"),
        ("scripts.gpu_checks", ["--out", out], "--out"),
        ("scripts.demo_page", [out], "output"),
        ("scripts.average_checkpoints", [t2, t2, "-o", os.path.join(out, "avg.pt")], "-o"),
    ]


def _refused(module: str, argv, capsys) -> str:
    """Run an entry point's main in this process; the message it exits with (stderr included)."""
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code not in (0, None)
    return f"{stop.value.code}\n{capsys.readouterr().err}"


@pytest.mark.parametrize("index", range(16))
def test_every_writer_refuses_an_output_under_a_file_before_its_work(corpus, t2_checkpoint, tmp_path, capsys,
                                                                     index):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = str(blocker / "out")
    module, argv, flag = _entry_points(corpus, t2_checkpoint, out)[index]
    message = _refused(module, argv, capsys)
    assert f"{flag} " in message and str(blocker) in message and "a part of the path is a file" in message, message


@pytest.mark.parametrize("module,flag", [("export", "-o"), ("inference", "-o"), ("scripts.evaluate_tacotron2", "-o"),
                                         ("scripts.make_corpus", "-o"), ("train", "-o")])
def test_a_file_where_a_folder_is_expected_is_refused(corpus, t2_checkpoint, tmp_path, capsys, module, flag):
    target = tmp_path / "some_file"
    target.write_text("precious")
    argv = next(a for m, a, _ in _entry_points(corpus, t2_checkpoint, str(target)) if m == module)
    message = _refused(module, argv, capsys)
    assert f"{flag} {target}: cannot write in this folder: it is a file" in message, message
    assert target.read_text() == "precious"


@pytest.mark.parametrize("module", ["train", "inference", "export", "scripts.make_corpus"])
def test_a_read_only_mount_is_refused_before_the_work(corpus, t2_checkpoint, tmp_path, module):
    if not _can_mount():
        pytest.skip("needs a private mount namespace (unshare -m), which this machine does not allow")
    ro = tmp_path / "ro"
    ro.mkdir()
    argv = next(a for m, a, _ in _entry_points(corpus, t2_checkpoint, str(ro / "out")) if m == module)
    code = f"import sys, {module} as m; sys.exit(m.main({argv!r}))"
    script = (f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
              f"{sys.executable} -c {shlex.quote(code)}")
    res = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    _clean_refusal(res, f"{ro / 'out'}", "Read-only file system")


# 5. Numbers out of range

def _parsers():
    """Every entry point's parser, caught as it parses `--help`."""

    modules = ["inference", "test_infer", "export", "serve", "preprocess_audio2mel", "scripts.evaluate_tacotron2",
               "scripts.make_corpus", "scripts.listen_curve", "scripts.check_dataset", "scripts.convert_checkpoint",
               "scripts.write_filelists", "scripts.phonemize", "scripts.export_samples", "scripts.load_test",
               "scripts.parse_log", "scripts.average_checkpoints", "scripts.waveglow_round_trip"]
    caught = {}
    real = argparse.ArgumentParser.parse_args

    def catch(self, args=None, namespace=None):
        caught.setdefault(current, self)
        raise SystemExit(0)
    argparse.ArgumentParser.parse_args = catch
    try:
        for current in modules:
            try:
                importlib.import_module(current).main([])
            except SystemExit:
                pass
    finally:
        argparse.ArgumentParser.parse_args = real
    caught["train (Tacotron2)"] = flags.build_parser("Tacotron2")
    caught["train (WaveGlow)"] = flags.build_parser("WaveGlow")
    return caught


def test_every_numeric_flag_has_a_range():
    parsers = _parsers()
    assert len(parsers) >= 16
    plain = [f"{name}: {action.option_strings or action.dest}" for name, parser in parsers.items()
             for action in parser._actions if action.type in (int, float) and action.choices is None]
    assert not plain, plain
    ranged = sum(isinstance(a.type, Number) for p in parsers.values() for a in p._actions)
    assert ranged > 100


@pytest.mark.parametrize("module,argv,message", [
    ("test_infer", ["-bs", "0", "--cpu"], "argument -bs/--batch-size: 0 is out of range: expected an integer >= 1"),
    ("train", ["-m", "Tacotron2", "-o", "x", "-lr", "1e-3", "--epochs", "1", "-bs", "2", "--seed", str(2 ** 64)],
     "argument --seed: 18446744073709551616 is out of range: expected an integer >= 0 and <= 2147483647"),
    ("train", ["-m", "Tacotron2", "-o", "x", "-lr", "0", "--epochs", "1", "-bs", "2"],
     "argument -lr/--learning-rate: 0 is out of range: expected a number > 0"),
    ("train", ["-m", "Tacotron2", "-o", "x", "-lr", "nan", "--epochs", "1", "-bs", "2"],
     "argument -lr/--learning-rate: expected a number > 0, got 'nan'"),
    ("train", ["-m", "Tacotron2", "-o", "x", "-lr", "1", "--epochs", "1", "-bs", "2", "--p-decoder-dropout", "1"],
     "argument --p-decoder-dropout: 1 is out of range: expected a number >= 0 and < 1"),
    ("inference", ["--tacotron2", "x", "-i", "x", "-o", "x", "--gate-threshold", "-0.5"],
     "argument --gate-threshold: -0.5 is out of range"),
    ("serve", ["--tacotron2", "x", "--port", "70000"], "argument --port: 70000 is out of range"),
])
def test_numbers_out_of_range_are_refused_naming_the_flag(module, argv, message, capsys):
    err = _refused(module, argv, capsys)
    assert message in err and "Traceback" not in err, err


def test_a_config_value_out_of_range_names_the_file_line_and_key(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{\n  "batch_size": 8,\n  "seed": 18446744073709551616\n}\n')
    err = _refused("train", ["-m", "Tacotron2", "-o", str(tmp_path), "-lr", "1", "--epochs", "1",
                             "--config-file", str(cfg)], capsys)
    assert f"--config-file {cfg}:3: 'seed' (--seed): 18446744073709551616 is out of range" in err, err
    cfg.write_text('{"batch_size": 2.5}')
    err = _refused("train", ["-m", "Tacotron2", "-o", str(tmp_path), "-lr", "1", "--epochs", "1",
                             "--config-file", str(cfg)], capsys)
    assert "'batch_size' (--batch-size): expected an integer >= 1, got 2.5" in err, err


# 7. Text that is not UTF-8

def test_write_filelists_names_the_file_and_line_of_bytes_that_are_not_utf8(tmp_path, capsys):
    from scripts import write_filelists
    metadata = tmp_path / "metadata.csv"
    metadata.write_bytes(b"LJ001-0001|Fine.|Fine.\nLJ001-0002|Caf\xe9 au lait.|Cafe au lait.\n")
    with pytest.raises(SystemExit) as stop:
        write_filelists.main(["--metadata", str(metadata), "-o", str(tmp_path / "lists")])
    assert f"{metadata}:2: not UTF-8 text (byte 0xe9)" in str(stop.value.code)
    split = tmp_path / "split"
    split.mkdir()
    (split / "train.ids").write_bytes(b"LJ001-0001\n\xff\n")
    metadata.write_text("LJ001-0001|Fine.|Fine.\n")
    with pytest.raises(SystemExit) as stop:
        write_filelists.main(["--metadata", str(metadata), "--split", str(split), "-o", str(tmp_path / "lists")])
    assert f"{split / 'train.ids'}:2: not UTF-8 text (byte 0xff)" in str(stop.value.code)
