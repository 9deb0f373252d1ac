"""Failure is boring: numerical faults, kills at random moments, bad config, determinism."""
import dataclasses
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

import models
import train
from common.checkpoint import load_checkpoint_file
from common.dllog import read_log

from .conftest import REPO
from .corpus import PoisonedLoss, train_argv


def _poisoned_loss(monkeypatch, bad_iterations):
    """Make the loss non-finite at the given (0-based) iterations, as an fp16 overflow would."""
    poison = (lambda i: True) if bad_iterations is None else (lambda i: i in bad_iterations)
    package = models.package("Tacotron2")
    monkeypatch.setitem(models.MODELS, "Tacotron2",
                        dataclasses.replace(package, loss=lambda args: PoisonedLoss(package.loss(args), poison)))


def _iter_records(out):
    return [r for r in read_log(os.path.join(out, "nvlog.json")) if isinstance(r.get("step"), list) and len(r["step"]) == 2]


@pytest.mark.parametrize("amp_dtype", ["fp16", "bf16"])
def test_nonfinite_gradients_skip_the_step_and_back_off_the_scale(corpus, tmp_path, monkeypatch, amp_dtype):
    out = str(tmp_path / "o")
    _poisoned_loss(monkeypatch, {1, 2})
    assert train.main(train_argv(corpus, "Tacotron2", out, "--amp-run", "--amp-dtype", amp_dtype, epochs=1,
                                 bs=2)) == 0
    recs = _iter_records(out)
    assert [r["data"]["skipped_steps"] for r in recs[:4]] == [0, 1, 2, 2]
    if amp_dtype == "fp16":
        scales = [r["data"]["loss_scale"] for r in recs[:4]]
        assert scales[1] == scales[0] / 2 and scales[2] == scales[0] / 4  # backoff after each bad step
    ckpt = load_checkpoint_file(os.path.join(out, "checkpoint_Tacotron2_last.pt"))
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_persistently_nonfinite_loss_stops_the_run(corpus, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "o")
    _poisoned_loss(monkeypatch, None)
    assert train.main(train_argv(corpus, "Tacotron2", out, "--max-nonfinite-steps", "3", epochs=5)) == 1
    assert "3 consecutive steps with a non-finite loss" in capsys.readouterr().err
    assert len(_iter_records(out)) == 3


def test_seed_gives_identical_first_epoch_losses(corpus, tmp_path):
    losses = []
    for name in ("a", "b"):
        out = str(tmp_path / name)
        assert train.main(train_argv(corpus, "Tacotron2", out, epochs=1, bs=2)) == 0
        losses.append([r["data"]["train_loss"] for r in _iter_records(out)])
    assert losses[0] == losses[1] and len(losses[0]) >= 4


def test_repeated_sigkill_never_leaves_an_unreadable_checkpoint(corpus, tmp_path):
    """Kill training at random moments (checkpoint writes included) until enough kills have been survived.

    Counted in kills, not seconds: on a loaded machine start-up takes longer and a fixed window held too few."""
    out = str(tmp_path / "k")
    last = os.path.join(out, "checkpoint_Tacotron2_last.pt")
    rng = random.Random(0)
    kills = resumes = 0
    want_kills, want_resumes, limit_s = 6, 4, 300
    deadline = time.time() + limit_s
    argv = [sys.executable, "train.py"] + train_argv(corpus, "Tacotron2", out, "--resume-from-last",
                                                      "--iters-per-checkpoint", "1", epochs=1000, bs=2)
    log = os.path.join(out, "nvlog.json")
    while kills < want_kills or resumes < want_resumes:
        if time.time() > deadline:
            pytest.fail(f"only {kills} kills and {resumes} verified checkpoints in {limit_s} s")
        launched = time.time()
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Start-up (imports, data checks) takes seconds on a slow machine: kill at a random moment
        # after the run has started logging, i.e. among its steps and checkpoint writes.
        while proc.poll() is None and not (os.path.exists(log) and os.path.getmtime(log) >= launched):
            if time.time() - launched > 60:
                pytest.fail("training did not start logging within 60 s")
            time.sleep(0.05)
        time.sleep(rng.uniform(0.5, 3.0))
        if proc.poll() is not None:
            pytest.fail(f"training exited by itself with code {proc.returncode}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if os.path.exists(last):
            ckpt = load_checkpoint_file(last)  # must always load
            assert "optimizer" in ckpt and "state_dict" in ckpt
            resumes += 1
    print(f"sigkill test: {kills} kills survived, {resumes} checkpoints verified after a kill")
    # resuming works after the last kill
    resume_epoch = load_checkpoint_file(last)["resume_epoch"]
    assert train.main(train_argv(corpus, "Tacotron2", out, "--resume-from-last", epochs=resume_epoch + 1, bs=2)) == 0
    assert load_checkpoint_file(last)["epoch"] == resume_epoch


@pytest.mark.parametrize("content,message", [
    ('{"batch_size": 2,', "invalid JSON"),
    ('{"batch_sise": 2}', "unknown keys ['batch_sise']"),
    ('[1, 2]', "expected a JSON object"),
    # a value of the wrong kind is refused before anything starts, naming the line and the key
    ('{"epochs": 1,\n "postnet_n_convolutions": [5]}', "cfg.json:2: 'postnet_n_convolutions' "
                                                       "(--postnet-n-convolutions): expected one value, got [5]"),
    ('{"batch_size": 2.5}', "'batch_size' (--batch-size): expected an integer >= 1, got 2.5"),
    ('{"learning_rate": true}', "'learning_rate' (--learning-rate): expected a number > 0, got True"),
    ('{"learning_rate": "fast"}', "'learning_rate' (--learning-rate): expected a number > 0, got 'fast'"),
    ('{"amp_run": 1}', "'amp_run' (--amp): expected true or false, got 1"),
    ('{"anneal_steps": 500}', "'anneal_steps' (--anneal-steps): expected a list, got 500"),
    ('{"anneal_factor": 0.5}', "'anneal_factor' (--anneal-factor): 0.5 is not one of [0.1, 0.3]"),
    ('{"training_files": 3}', "'training_files' (--training-files): expected a string, got 3"),
    ('{"mask_padding": "maybe"}', "'mask_padding' (--mask-padding): expected a boolean, got 'maybe'"),
    ('{"weight_decay": null}', "'weight_decay' (--weight-decay): null, where the flag's default is 1e-06"),
])
def test_config_file_errors_are_clear(tmp_path, capsys, content, message):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(content)
    with pytest.raises(SystemExit):
        train.parse_args(["-m", "Tacotron2", "-o", str(tmp_path), "-lr", "1", "--epochs", "1", "-bs", "1",
                          "--config-file", str(cfg)])
    assert message in capsys.readouterr().err


def test_config_file_values_arrive_as_their_flags_make_them(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"postnet_n_convolutions": 4, "batch_size": "3", "epochs": 2.0, "learning_rate": 1, '
                   '"anneal_steps": [5, "10"], "amp_run": true, "mask_padding": "yes", "amp_dtype": "bf16"}')
    args = train.parse_args(["-m", "Tacotron2", "-o", str(tmp_path), "--config-file", str(cfg)])
    got = {k: getattr(args, k) for k in ("postnet_n_convolutions", "batch_size", "epochs", "learning_rate",
                                         "anneal_steps", "amp_run", "mask_padding", "amp_dtype")}
    assert got == {"postnet_n_convolutions": 4, "batch_size": 3, "epochs": 2, "learning_rate": 1.0,
                   "anneal_steps": [5, 10], "amp_run": True, "mask_padding": True, "amp_dtype": "bf16"}
    assert type(got["epochs"]) is int and type(got["learning_rate"]) is float


def test_nvidias_grouped_config_json_is_read_as_its_flags(tmp_path, capsys):
    """NVIDIA's config.json groups command-line spellings: {"audio": {"mel-fmax": 7000.0, ...}}; unknown keys are
    refused by their group and name, values checked as ours are."""
    cfg = tmp_path / "config.json"
    cfg.write_text('{\n "audio": {\n  "max-wav-value": 32768.0,\n  "sampling-rate": 22050,\n  "filter-length": 1024,\n'
                   '  "hop-length": 256,\n  "win-length": 1024,\n  "mel-fmin": 0.0,\n  "mel-fmax": 7000.0\n }\n}\n')
    args = train.parse_args(["-m", "Tacotron2", "-o", str(tmp_path), "-lr", "1", "--epochs", "1", "-bs", "2",
                             "--config-file", str(cfg)])
    assert (args.mel_fmax, args.sampling_rate, args.hop_length, args.max_wav_value) == (7000.0, 22050, 256, 32768.0)
    for content, message in (('{"audio": {"mel-fmaxx": 7000.0}}', "unknown keys ['audio.mel-fmaxx']"),
                             ('{"audio": {\n "hop-length": "long"}}', "config.json:2: 'audio.hop-length' "
                                                                       "(--hop-length): expected an integer >= 1, got 'long'")):
        cfg.write_text(content)
        with pytest.raises(SystemExit):
            train.parse_args(["-m", "Tacotron2", "-o", str(tmp_path), "-lr", "1", "--epochs", "1", "-bs", "2",
                              "--config-file", str(cfg)])
        assert message in capsys.readouterr().err


def test_unwritable_output_fails_before_training(corpus, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit, match="cannot write in this folder: a part of the path is a file"):
        train.main(train_argv(corpus, "Tacotron2", str(blocker / "out"), epochs=1))


def test_misspelt_flag_fails(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["-m", "WaveGlow", "-o", str(tmp_path), "-lr", "1", "--epochs", "1", "-bs", "1",
                          "--wn-chanels", "256"])
    assert "unrecognized arguments: --wn-chanels" in capsys.readouterr().err


def test_one_training_run_per_output_folder(corpus, tmp_path):
    """A second run into a folder a live run is writing refuses, naming the folder and the process; once that
    process is killed, the next run takes the folder over with a warning and leaves it released."""
    out = str(tmp_path / "shared")
    lock = os.path.join(out, ".train.lock")
    first = subprocess.Popen([sys.executable, "train.py"] + train_argv(corpus, "Tacotron2", out, epochs=500),
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (os.path.exists(lock) and open(lock).read().startswith(f"pid {first.pid} ")):
            assert time.time() < deadline and first.poll() is None, "the first run never took the folder"
            time.sleep(0.2)
        with pytest.raises(SystemExit, match=f"'{out}' is in use by a training run that is still going "
                                             f"\\(pid {first.pid} on "):
            train.main(train_argv(corpus, "Tacotron2", out, epochs=1))
        assert first.poll() is None  # the refused run touched nothing of the first one's
    finally:
        first.kill()
        first.wait()
    with pytest.warns(UserWarning, match=f"taking over from a run that ended without releasing it \\(pid {first.pid} "):
        assert train.main(train_argv(corpus, "Tacotron2", out, epochs=1)) == 0
    assert open(lock).read() == ""


def test_data_loader_workers_default_to_one_on_a_gpu_as_nvidias_and_none_on_a_cpu(tmp_path):
    base = ["-m", "Tacotron2", "-o", str(tmp_path), "-lr", "1", "--epochs", "1", "-bs", "2"]
    assert train.parse_args(base).num_workers == (1 if torch.cuda.is_available() else 0)
    assert train.parse_args(base + ["--cpu"]).num_workers == 0
    assert train.parse_args(base + ["--num-workers", "3"]).num_workers == 3
