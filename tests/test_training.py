"""Training: loss falls, AMP, resume equivalence, DDP on gloo, kills, bad data, logs."""
import os
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
from loss_functions import get_loss_function

from .conftest import REPO, TINY_TACOTRON2, TINY_WAVEGLOW
from .corpus import run_python as _run
from .corpus import train_argv


@pytest.mark.parametrize("model_name,config", [("Tacotron2", TINY_TACOTRON2), ("WaveGlow", TINY_WAVEGLOW)])
@pytest.mark.parametrize("amp", [False, True])
def test_loss_falls_on_a_repeated_batch(model_name, config, amp):
    torch.manual_seed(0)
    model = models.get_model(model_name, config)
    crit = get_loss_function(model_name)
    if model_name == "Tacotron2":
        text = torch.randint(12, 60, (2, 9))
        t, c = torch.arange(12.0), torch.arange(20.0)
        mels = torch.sin(0.3 * t[None, None, :] + 0.2 * c[None, :, None]).repeat(2, 1, 1) * 2 - 3
        gate = torch.zeros(2, 12)
        gate[:, -1] = 1
        x, y = (text, torch.tensor([9, 9]), mels, 9, torch.tensor([12, 12])), (mels, gate)
    else:
        audio = torch.rand(2, 2048) * 0.2 - 0.1
        x, y = (torch.randn(2, 20, 9), audio), audio
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = crit(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(map(lambda v: v == v, losses))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.1 * abs(first), losses


def test_lr_schedule_table():
    from common.training.lr_schedule import LRSchedule, anneal_lr, budget_progress
    table = [(0, [], 0.1, 1.0), (5, [5, 10], 0.1, 0.1), (12, [5, 10], 0.1, 0.01), (4, [5], 0.1, 1.0),
             (5, [5, 10, 15], 0.3, 0.3), (10, [5, 10, 15], 0.3, 0.1), (15, [5, 10, 15], 0.3, 0.03)]
    for epoch, steps, factor, expected in table:
        assert anneal_lr(epoch, 1.0, steps, factor) == pytest.approx(expected)
        # NVIDIA's schedule ignores the budget
        assert LRSchedule(1.0, "anneal", steps, factor).at(epoch, 10 ** 6, 0.7) == pytest.approx(expected)
    cosine = LRSchedule(2e-3, "cosine", warmup_steps=100, final_factor=0.01)
    assert cosine.at(0, 0, 0.0) == pytest.approx(2e-5)  # warm-up from 1/100 of the peak
    assert cosine.at(0, 49, 0.0) == pytest.approx(1e-3)
    assert cosine.at(3, 99, 0.0) == pytest.approx(2e-3)
    assert cosine.at(3, 500, 0.5) == pytest.approx(2e-3 * (0.01 + 0.99 * 0.5))
    assert cosine.at(3, 500, 1.0) == cosine.at(3, 500, 7.0) == pytest.approx(2e-5)  # the floor after the budget
    rates = [cosine.at(0, 1000, p / 20) for p in range(21)]
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert LRSchedule(1.0, "linear", final_factor=0.0).at(0, 5, 0.25) == pytest.approx(0.75)
    assert budget_progress(90.0, 3.0, 10, 100) == pytest.approx(0.5)  # minutes when there is a time budget
    assert budget_progress(90.0, 0.0, 10, 100) == pytest.approx(0.1)  # else steps
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        LRSchedule(1.0, "exponential")


def _logged_rates(out: str):
    records = read_log(os.path.join(out, "nvlog.json"))
    return [r["data"]["lr"] for r in records
            if r["type"] == "LOG" and isinstance(r.get("step"), list) and len(r["step"]) == 2 and "lr" in r["data"]]


def test_cosine_over_epochs_warms_up_decays_and_resumes_exactly(corpus, tmp_path):
    flags = ["--lr-schedule", "cosine", "--warmup-steps", "3", "--lr-final-factor", "0.1"]
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    assert train.main(train_argv(corpus, "Tacotron2", straight, *flags, epochs=3)) == 0
    rates = _logged_rates(straight)
    lr = 1e-3  # train_argv's
    from common.training.lr_schedule import LRSchedule
    schedule = LRSchedule(lr, "cosine", warmup_steps=3, final_factor=0.1)
    n = len(rates)  # 3 epochs of equal length; the progress is the steps taken of all the run's steps
    assert n % 3 == 0 and rates == pytest.approx([schedule.at(i // (n // 3), i, i / n) for i in range(n)])
    assert rates[0] == pytest.approx(lr / 3) and rates[-1] < 0.2 * lr
    assert all(a >= b for a, b in zip(rates[3:], rates[4:]))  # after the warm-up, only down
    # resumed after the first epoch, with the same flags: the same rates, the same weights
    first_epoch = os.path.join(straight, "checkpoint_Tacotron2_0.pt")
    assert train.main(train_argv(corpus, "Tacotron2", split, *flags, "--checkpoint-path", first_epoch,
                                 epochs=3)) == 0
    assert _logged_rates(split) == pytest.approx(rates[n // 3:])
    a = load_checkpoint_file(os.path.join(straight, "checkpoint_Tacotron2_last.pt"))
    b = load_checkpoint_file(os.path.join(split, "checkpoint_Tacotron2_last.pt"))
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_a_time_budgeted_schedule_keeps_its_clock_across_a_resume(corpus, tmp_path):
    """The decay spans --lr-decay-minutes of training in all: a resumed run goes on from the seconds its
    checkpoint recorded, rather than warming up to the peak again."""
    out = str(tmp_path / "timed")
    flags = ["--lr-schedule", "linear", "--lr-decay-minutes", "0.05", "--lr-final-factor", "0"]
    assert train.main(train_argv(corpus, "Tacotron2", out, *flags, epochs=1)) == 0
    first = load_checkpoint_file(os.path.join(out, "checkpoint_Tacotron2_last.pt"))["trained_seconds"]
    assert first > 0
    assert train.main(train_argv(corpus, "Tacotron2", out, *flags, "--resume-from-last", epochs=2)) == 0
    second = load_checkpoint_file(os.path.join(out, "checkpoint_Tacotron2_last.pt"))["trained_seconds"]
    assert second > first
    rates = _logged_rates(out)
    n = len(rates) // 2  # two epochs of equal length
    lr = 1e-3  # train_argv's: the first step, with no time spent yet, takes the peak
    assert rates[0] == pytest.approx(lr) and all(r <= lr for r in rates)
    # each resumed step's rate is the line's at a time later than the first run's end
    assert all(r <= lr * max(0.0, 1 - first / 3.0) + 1e-12 for r in rates[n:])


@pytest.mark.parametrize("model_name", ["Tacotron2", "WaveGlow"])
def test_cli_trains_logs_and_resumes_exactly(corpus, tmp_path, model_name):
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    assert train.main(train_argv(corpus, model_name, straight, epochs=3)) == 0
    assert train.main(train_argv(corpus, model_name, split, epochs=1)) == 0
    assert train.main(train_argv(corpus, model_name, split, "--resume-from-last", epochs=3)) == 0
    a = load_checkpoint_file(os.path.join(straight, f"checkpoint_{model_name}_last.pt"))
    b = load_checkpoint_file(os.path.join(split, f"checkpoint_{model_name}_last.pt"))
    assert a["epoch"] == b["epoch"] == 2
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    # the published structure
    assert {"epoch", "config", "state_dict", "optimizer", "scaler", "random_rng_state"} <= set(a)
    records = read_log(os.path.join(straight, "nvlog.json"))
    iters = [r for r in records if r["type"] == "LOG" and isinstance(r.get("step"), list) and len(r["step"]) == 2]
    epochs = [r for r in records if r["type"] == "LOG" and isinstance(r.get("step"), list) and len(r["step"]) == 1]
    assert len(epochs) == 3 and all("val_loss" in r["data"] and "train_epoch_time" in r["data"]
                                     for r in epochs)
    for key in ("train_loss", "train_items_per_sec", "train_iter_time", "lr", "skipped_steps"):
        assert all(key in r["data"] for r in iters), key
    assert epochs[-1]["data"]["val_loss"] < epochs[0]["data"]["val_loss"]
    assert sorted(os.listdir(straight)) == sorted(
        [f"checkpoint_{model_name}_{e}.pt" for e in range(3)] + [f"checkpoint_{model_name}_last.pt", "nvlog.json", "data_checks.json", ".train.lock"])


def test_amp_run_on_cpu_trains(corpus, tmp_path):
    out = str(tmp_path / "amp")
    assert train.main(train_argv(corpus, "Tacotron2", out, "--amp-run", epochs=1)) == 0
    ckpt = load_checkpoint_file(os.path.join(out, "checkpoint_Tacotron2_last.pt"))
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_published_checkpoint_resume_points_to_warm_start(corpus, tmp_path):
    out = str(tmp_path / "ws")
    published = str(tmp_path / "published.pt")
    model = models.get_model("Tacotron2", {**TINY_TACOTRON2, "n_mel_channels": 80})
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, published)
    with pytest.raises(SystemExit, match="--warm-start"):
        train.main(train_argv(corpus, "Tacotron2", out, "--checkpoint-path", published, epochs=1))
    cfg_flags = ["--symbols-embedding-dim", "16", "--encoder-embedding-dim", "16"]
    assert train.main(train_argv(corpus, "Tacotron2", out, "--warm-start", published, *cfg_flags, epochs=1)) == 0


def test_two_gloo_processes_keep_identical_weights(corpus, tmp_path):
    """With a learning rate that follows the clock, too: the ranks agree on one clock every step."""
    out = str(tmp_path / "ddp")
    res = _run(["-m", "multiproc", "--nproc-per-node", "2", "train.py"] +
               train_argv(corpus, "Tacotron2", out, "--cpu", "--check-replicas", "--lr-schedule", "cosine",
                          "--lr-decay-minutes", "0.1", epochs=1, bs=2))
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = load_checkpoint_file(os.path.join(out, "checkpoint_Tacotron2_last.pt"))
    assert len(ckpt["rank_rng_states"]) == 2


def test_failing_rank_stops_the_others(corpus, tmp_path):
    out = str(tmp_path / "fail")
    env = dict(os.environ, TACOTRON2_TEST_FAIL_RANK="1")
    start = time.time()
    res = _run(["-m", "multiproc", "--nproc-per-node", "2", "tests/rank_faults.py"] +
               train_argv(corpus, "Tacotron2", out, "--cpu", epochs=1, bs=2), env=env, timeout=120)
    assert res.returncode != 0
    assert "rank 1 exited" in res.stderr and "injected failure on rank 1" in res.stderr
    assert time.time() - start < 90


def test_sigkill_mid_epoch_leaves_a_loadable_checkpoint(corpus, tmp_path):
    out = str(tmp_path / "kill")
    assert train.main(train_argv(corpus, "Tacotron2", out, epochs=1)) == 0
    proc = subprocess.Popen([sys.executable, "train.py"] + train_argv(corpus, "Tacotron2", out, "--resume-from-last",
                                                                      epochs=50),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(8)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpt = load_checkpoint_file(os.path.join(out, "checkpoint_Tacotron2_last.pt"))
    assert ckpt["epoch"] >= 0
    assert train.main(train_argv(corpus, "Tacotron2", out, "--resume-from-last", epochs=ckpt["epoch"] + 2)) == 0


def test_sigterm_saves_and_resume_continues_exactly(corpus, tmp_path, monkeypatch):
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    assert train.main(train_argv(corpus, "Tacotron2", straight, epochs=2)) == 0
    proc = subprocess.Popen([sys.executable, "train.py"] + train_argv(corpus, "Tacotron2", split, epochs=2),
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = os.path.join(split, "nvlog.json")
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for the first logged iteration
        if os.path.exists(log) and sum(1 for r in read_log(log) if isinstance(r.get("step"), list)) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "resume with --resume-from-last" in err
    interrupted = load_checkpoint_file(os.path.join(split, "checkpoint_Tacotron2_last.pt"))
    resume_epoch, resume_batch = interrupted["resume_epoch"], interrupted["resume_batch"]
    assert (resume_epoch, resume_batch) != (2, 0)
    from tacotron2.data_function import TextMelLoader
    loaded = []
    real = TextMelLoader.get_mel
    monkeypatch.setattr(TextMelLoader, "get_mel", lambda self, entry: loaded.append(entry.where) or real(self, entry))
    assert train.main(train_argv(corpus, "Tacotron2", split, "--resume-from-last", epochs=2)) == 0
    # the batches trained before the interruption are not even loaded again
    with open(os.path.join(corpus, "filelists", "espeak_audio_text_train_filelist.txt")) as f:
        n_batches = len(f.readlines()) // 4
    train_loads = [w for w in loaded if "train_filelist" in w]
    assert len(train_loads) == 4 * (n_batches * (2 - resume_epoch) - resume_batch)
    a = load_checkpoint_file(os.path.join(straight, "checkpoint_Tacotron2_last.pt"))["state_dict"]
    b = load_checkpoint_file(os.path.join(split, "checkpoint_Tacotron2_last.pt"))["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_small_data_options_train_and_log_quality_metrics(corpus, tmp_path):
    out = str(tmp_path / "small")
    assert train.main(train_argv(corpus, "Tacotron2", out, "--n-frames-per-step", "3", "--guided-attention-weight",
                                 "5", "--gate-pos-weight", "5", "--mask-padding", "--bucket-batches", "--cache-mels",
                                 "--val-metrics", "2", epochs=2, bs=2)) == 0
    epochs = [r for r in read_log(os.path.join(out, "nvlog.json"))
              if r["type"] == "LOG" and isinstance(r.get("step"), list) and len(r["step"]) == 1]
    assert len(epochs) == 2
    for key in ("val_diagonality", "val_focus", "val_stop_ratio", "val_mcd_dtw", "val_reached_max"):
        assert key in epochs[-1]["data"], key
    assert 0.0 <= epochs[-1]["data"]["val_diagonality"] <= 1.0
    assert epochs[-1]["data"]["val_loss"] < epochs[0]["data"]["val_loss"] + 1.0
    ckpt = load_checkpoint_file(os.path.join(out, "checkpoint_Tacotron2_last.pt"))
    assert ckpt["config"]["n_frames_per_step"] == 3 and ckpt["config"]["mask_padding"] is True


def test_quality_metrics_every_n_epochs(corpus, tmp_path):
    """--epochs-per-val-metrics 2: the free-running metrics in epochs 0 and 2 only; the validation loss every epoch."""
    out = str(tmp_path / "every2")
    assert train.main(train_argv(corpus, "Tacotron2", out, "--val-metrics", "1", "--epochs-per-val-metrics", "2",
                                 "--max-steps-per-epoch", "1", epochs=3, bs=2)) == 0
    epochs = [r["data"] for r in read_log(os.path.join(out, "nvlog.json"))
              if r["type"] == "LOG" and isinstance(r.get("step"), list) and len(r["step"]) == 1]
    assert ["val_mcd_dtw" in e for e in epochs] == [True, False, True]
    assert all("val_loss" in e for e in epochs)


def test_tensorboard_option(corpus, tmp_path, capsys):
    out = str(tmp_path / "tb")
    argv = train_argv(corpus, "Tacotron2", out, "--tensorboard", "--val-metrics", "1", epochs=1)
    try:
        import tensorboard  # noqa: F401
    except ImportError:  # refused while the flags are read, before anything starts
        with pytest.raises(SystemExit):
            train.main(argv)
        assert "--tensorboard needs the tensorboard package, which is not installed: pip install tensorboard" in \
            capsys.readouterr().err and not os.path.exists(out)
        return
    assert train.main(argv) == 0
    events = os.listdir(os.path.join(out, "tensorboard"))
    assert any(name.startswith("events.out.tfevents") for name in events)
    assert os.path.getsize(os.path.join(out, "tensorboard", events[0])) > 10000  # scalars and a picture


def _adam_and_grads(bad_value: float):
    from common.training.train_step import make_adam
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    opt = make_adam(layer.parameters(), 0.1, 0.0, torch.device("cpu"))
    layer(torch.randn(2, 4)).sum().backward()
    return layer, opt, torch.tensor(bad_value)


@pytest.mark.parametrize("bad_value", [0.0, 1.0])
def test_optimizer_step_skips_on_the_device_flag(bad_value):
    from common.training.train_step import optimizer_step
    layer, opt, bad = _adam_and_grads(bad_value)
    assert opt.param_groups[0]["fused"]
    before = [p.detach().clone() for p in layer.parameters()]
    optimizer_step(opt, torch.amp.GradScaler("cpu", enabled=False), bad, device_skip=True)
    changed = [not torch.equal(b, p) for b, p in zip(before, layer.parameters())]
    assert changed == [bad_value == 0.0] * 2
    # a skipped step does not count as a step either (Adam's bias correction stays in step)
    assert all(float(s["step"]) == (1.0 if bad_value == 0.0 else 0.0) for s in opt.state.values())
    assert not hasattr(opt, "found_inf")


def _single_process():
    from common.training.dist_utils import DistInfo
    return DistInfo(0, 0, 1, torch.device("cpu"))


def test_pending_steps_read_once_per_flush():
    from common.training.train_step import PendingSteps
    pending = PendingSteps()
    for b, (loss, bad) in enumerate([(1.5, 0.0), (float("nan"), 1.0), (0.5, 0.0)]):
        pending.add(0, b, 1e-3 * (b + 1), torch.tensor(loss), torch.tensor(2.0 * b), torch.tensor(bad), torch.tensor(100 + b),
                    torch.tensor(1.0))
    assert len(pending) == 3
    steps = pending.flush(_single_process())
    assert len(pending) == 0 and pending.flush(_single_process()) == []
    assert [s.batch for s in steps] == [0, 1, 2] and [s.finite for s in steps] == [True, False, True]
    assert steps[0].loss == 1.5 and steps[2].grad_norm == 4.0 and [s.items for s in steps] == [100, 101, 102]
    assert steps[0].seconds == steps[2].seconds > 0
    assert [s.lr for s in steps] == [1e-3, 2e-3, 3e-3]


def test_log_interval_keeps_one_line_per_step(corpus, tmp_path):
    out = str(tmp_path / "interval")
    assert train.main(train_argv(corpus, "Tacotron2", out, "--log-interval", "3", epochs=1)) == 0
    records = read_log(os.path.join(out, "nvlog.json"))
    iters = [r["step"] for r in records if r["type"] == "LOG" and isinstance(r.get("step"), list) and len(r["step"]) == 2]
    assert iters == [[0, b] for b in range(len(iters))] and len(iters) == 3  # the corpus makes 3 batches
    with pytest.raises(SystemExit):
        train.parse_args(["-m", "Tacotron2", "-o", out, "-lr", "1e-3", "--epochs", "1", "-bs", "2",
                          "--training-files", "x", "--log-interval", "0"])


def test_cached_mels_are_computed_once_with_workers(corpus, tmp_path, monkeypatch):
    """--cache-mels with --num-workers: the workers (and their caches) outlive the epoch."""
    from tacotron2.data_function import TextMelLoader
    calls = tmp_path / "mel_calls.txt"
    real = TextMelLoader.get_mel

    def logged(self, entry):  # the workers are forked: each call appends a line to a shared file
        with open(calls, "a") as f:
            f.write(entry.path + "\n")
        return real(self, entry)
    monkeypatch.setattr(TextMelLoader, "get_mel", logged)
    assert train.main(train_argv(corpus, "Tacotron2", str(tmp_path / "o"), "--num-workers", "1", "--cache-mels",
                                 "--validation-files", "", epochs=3, bs=4)) == 0
    paths = calls.read_text().split()
    assert len(paths) > 4 and len(paths) == len(set(paths)), f"{len(paths)} mel computations, {len(set(paths))} files"


@pytest.mark.parametrize("device_skip", [True, False])
def test_a_fused_optimizer_step_invalidates_what_was_computed_from_the_weights(device_skip):
    """The fused kernel writes the weights without autograd's version counter: caches keyed on it (WaveGlow's
    W^-1, the engines' ParameterVersions) went stale in training, so validation resynthesised with the inverse of
    the first epoch's weights."""
    from common.training.train_step import make_adam, optimizer_step
    from common.utils import ParameterVersions
    from waveglow.model import Invertible1x1Conv
    torch.manual_seed(0)
    conv = Invertible1x1Conv(8)
    opt = make_adam(conv.parameters(), 0.1, 0.0, torch.device("cpu"))
    assert opt.param_groups[0]["fused"]
    versions = ParameterVersions(conv)  # as a fast inference engine built before the step would hold
    stale = conv.inverse_weight().clone()
    conv(torch.randn(2, 8, 16))[0].sum().backward()
    optimizer_step(opt, torch.amp.GradScaler("cpu", enabled=False), torch.tensor(0.0), device_skip=device_skip)
    expected = conv.conv.weight.detach().squeeze(2).inverse().unsqueeze(2)
    assert not torch.allclose(stale, expected)
    assert torch.allclose(conv.inverse_weight(), expected, atol=1e-5)
    with pytest.raises(RuntimeError, match="weights that have changed"):
        versions.check("an engine")
