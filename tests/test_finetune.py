"""A new voice from a trained model: warm starts across voices, their warnings, and scripts/finetune_demo.sh."""
import argparse
import copy
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import models
import train
from common.checkpoint import load_checkpoint_file, save_training_checkpoint
from common.dllog import read_log
from common.training.anchor import WarmStartAnchor
from common.training.lr_scale import ScaledSteps, parse_scale
from common.training.dist_utils import init_distributed
from common.training.train_step import make_adam
from common.training.resume import audio_mismatches
from common.training.run_lock import RunLock
from common.training.warm_start import adopt_checkpoint_shape
from corpora import voices

from .conftest import REPO
from .corpus import train_argv


def _checkpoint(corpus, tmp_path) -> str:
    """A one-epoch Tacotron 2 of the tiny corpus: the "old voice"."""
    out = str(tmp_path / "old")
    assert train.main(train_argv(corpus, "Tacotron2", out, epochs=1)) == 0
    return os.path.join(out, "checkpoint_Tacotron2_last.pt")


def _built(argv):
    """The run as build_run leaves it, before the first step."""
    args = train.parse_args(argv)
    lock = RunLock(args.output)
    try:
        run, _ = train.build_run(args, init_distributed(cpu=True), lock)
        run.logger.close()
        return run
    finally:
        lock.release()


def _warm_started(argv):
    """The model's weights as build_run leaves them, before the first step."""
    return _built(argv).model.state_dict()


def test_warm_start_keeps_every_weight_but_the_ignored_ones(corpus, tmp_path):
    old = load_checkpoint_file(_checkpoint(corpus, tmp_path))["state_dict"]
    new = _warm_started(train_argv(corpus, "Tacotron2", str(tmp_path / "new"), "--warm-start",
                                   str(tmp_path / "old" / "checkpoint_Tacotron2_last.pt"),
                                   "--warm-start-ignore", "embedding.weight", "decoder.gate_layer", epochs=1))
    ignored = [k for k in new if k == "embedding.weight" or k.startswith("decoder.gate_layer")]
    assert sorted(ignored) == ["decoder.gate_layer.linear_layer.bias", "decoder.gate_layer.linear_layer.weight",
                               "embedding.weight"]
    for key, value in new.items():
        assert torch.equal(value, old[key]) != (key in ignored), key  # kept, or reset to a fresh model's values
    fresh = _warm_started(train_argv(corpus, "Tacotron2", str(tmp_path / "fresh"), epochs=1))
    assert all(torch.equal(new[k], fresh[k]) for k in ignored)  # the same seed: a fresh start's initial values


def test_a_warm_start_takes_the_checkpoints_shape_and_the_runs_other_flags(corpus, tmp_path, capsys):
    """A config written for another width (the demo's config file against an older demo model, NVIDIA's defaults
    against the demo's) used to stop the fine-tune with "weights do not fit": the checkpoint's shape flags win, are
    logged, and are what the new checkpoints record; flags that shape no weight (dropout) stay the run's, and so
    does a flag whose weights are all under --warm-start-ignore (a new embedding for another symbol set)."""
    ckpt = _checkpoint(corpus, tmp_path)
    old = load_checkpoint_file(ckpt)
    width, n_symbols = old["config"]["encoder_embedding_dim"], old["config"]["n_symbols"]
    out = tmp_path / "new"
    run = _built(train_argv(corpus, "Tacotron2", str(out), "--warm-start", ckpt, "--encoder-embedding-dim",
                            str(2 * width), "--symbols-embedding-dim", str(2 * width), "--p-decoder-dropout", "0.3",
                            "--n-symbols", str(n_symbols + 5), "--warm-start-ignore", "embedding", epochs=1))
    assert run.args.encoder_embedding_dim == width and run.args.p_decoder_dropout == 0.3
    assert run.args.n_symbols == n_symbols + 5
    state = run.model.state_dict()
    assert state["embedding.weight"].shape[0] == n_symbols + 5
    for key, value in old["state_dict"].items():
        if not key.startswith("embedding"):
            assert torch.equal(state[key], value), key
    assert (f"the model's shape from the checkpoint: --symbols-embedding-dim {width} (the flags said {2 * width}); "
            f"--encoder-embedding-dim {width} (the flags said {2 * width})\n") in capsys.readouterr().out
    parameters = {k: v for r in read_log(str(out / "nvlog.json")) if r.get("step") == "PARAMETER"
                  for k, v in r["data"].items()}
    assert parameters["encoder_embedding_dim"] == width  # the log's flags are the model's
    # trained on: the checkpoints it writes carry the shape it has
    assert train.main(train_argv(corpus, "Tacotron2", str(tmp_path / "trained"), "--warm-start", ckpt,
                                 "--encoder-embedding-dim", str(2 * width), epochs=1)) == 0
    config = load_checkpoint_file(str(tmp_path / "trained" / "checkpoint_Tacotron2_last.pt"))["config"]
    assert config == old["config"]


def test_a_published_waveglow_gives_its_width_to_a_warm_start():
    """NVIDIA's published WaveGlow (weights only, 256 WN channels) warm-starts a run whose flags say 512: its
    architecture is read off the weights; the flags round-trip through each package's config."""
    package = models.package("WaveGlow")
    args = models.default_flags("WaveGlow")
    model, config = models.random_waveglow(n_channels=256)
    assert args.wn_channels == 512
    adopted = adopt_checkpoint_shape(package, args, {"state_dict": model.state_dict()}, "nvidia_waveglow256.pt")
    assert adopted == ["--wn-channels 256 (the flags said 512)"] and args.wn_layers == 8
    assert package.config_from_args(args) == config
    assert adopt_checkpoint_shape(package, args, {"config": config}, "again.pt") == []
    for name in models.MODELS:
        flags = models.default_flags(name)
        config = models.get_model_config(name, flags)
        rebuilt = argparse.Namespace(**{**vars(flags), **models.package(name).flags_from_config(config)})
        assert models.get_model_config(name, rebuilt) == config


def test_frozen_weights_stay_as_loaded_and_the_rest_trains(corpus, tmp_path):
    """--freeze embedding encoder: a fine-tune that keeps the base model's reading of text; a prefix that names no
    parameter is refused before anything is written."""
    ckpt = _checkpoint(corpus, tmp_path)
    old = load_checkpoint_file(ckpt)["state_dict"]
    out = tmp_path / "frozen"
    assert train.main(train_argv(corpus, "Tacotron2", str(out), "--warm-start", ckpt, "--freeze", "embedding",
                                 "encoder", epochs=1)) == 0
    new = load_checkpoint_file(str(out / "checkpoint_Tacotron2_last.pt"))["state_dict"]
    frozen = [k for k in new if k.startswith(("embedding", "encoder")) and "running_" not in k and
              "num_batches" not in k]
    assert "embedding.weight" in frozen and any(k.startswith("encoder.lstm") for k in frozen)
    for key in frozen:
        assert torch.equal(new[key], old[key]), key
    trained = [k for k in new if k.startswith(("decoder", "postnet")) and "running_" not in k and
               "num_batches" not in k]
    assert sum(not torch.equal(new[k], old[k]) for k in trained) == len(trained)
    with pytest.raises(SystemExit, match="--freeze encoders: no parameter of the model starts with it"):
        train.main(train_argv(corpus, "Tacotron2", str(tmp_path / "bad"), "--freeze", "encoders", epochs=1))
    assert not os.path.exists(tmp_path / "bad")


def test_scaled_steps_are_the_steps_of_a_parameter_group_at_that_rate():
    """--lr-scale shrinks a step after the optimizer took it; with Adam (weight decay included) that is the step of
    a parameter group at FACTOR x the rate, while the optimizer keeps one group."""
    torch.manual_seed(0)
    grouped = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Linear(4, 3))
    scaled, plain = copy.deepcopy(grouped), copy.deepcopy(grouped)
    by_groups = make_adam([{"params": grouped[0].parameters(), "lr": 1e-2 * 0.1},
                           {"params": grouped[1].parameters()}], 1e-2, 1e-3, torch.device("cpu"))
    one_group = make_adam(scaled.parameters(), 1e-2, 1e-3, torch.device("cpu"))
    unscaled = make_adam(plain.parameters(), 1e-2, 1e-3, torch.device("cpu"))
    steps = ScaledSteps(scaled, [("0.", 0.1)])
    assert [p for p, _ in steps.pairs] == [scaled[0].weight, scaled[0].bias] and steps.n_weights == 28
    for _ in range(5):
        x = torch.randn(8, 6)
        for model, optimizer in ((grouped, by_groups), (scaled, one_group), (plain, unscaled)):
            optimizer.zero_grad()
            model(x).pow(2).sum().backward()
            if model is scaled:
                steps.before()
            optimizer.step()
            if model is scaled:
                steps.after()
    for a, b in zip(grouped.parameters(), scaled.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(plain[0].weight, scaled[0].weight, atol=1e-3)  # the full rate went further
    assert parse_scale("decoder.prenet=0.1") == ("decoder.prenet", 0.1)
    for bad in ("decoder.prenet", "=0.1", "decoder.prenet=-1", "decoder.prenet=x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_scale(bad)


def test_a_weight_scaled_to_zero_stays_and_the_rest_trains(corpus, tmp_path):
    """--lr-scale decoder.prenet=0 from the command line, or as a config file's list of strings: the prenet
    stays as loaded while the rest of the decoder trains; a prefix that names no parameter is refused before
    anything is written."""
    ckpt = _checkpoint(corpus, tmp_path)
    old = load_checkpoint_file(ckpt)["state_dict"]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"lr_scale": ["decoder.prenet=0"]}))
    for name, flags in (("flag", ["--lr-scale", "decoder.prenet=0"]), ("config", ["--config-file", str(config)])):
        out = tmp_path / name
        assert train.main(train_argv(corpus, "Tacotron2", str(out), "--warm-start", ckpt, *flags, epochs=1)) == 0
        new = load_checkpoint_file(str(out / "checkpoint_Tacotron2_last.pt"))["state_dict"]
        prenet = [k for k in new if k.startswith("decoder.prenet")]
        assert prenet and all(torch.equal(new[k], old[k]) for k in prenet)
        assert not torch.equal(new["decoder.attention_rnn.weight_ih"], old["decoder.attention_rnn.weight_ih"])
    with pytest.raises(SystemExit, match="--lr-scale decoders=0.1: no parameter of the model starts with it"):
        train.main(train_argv(corpus, "Tacotron2", str(tmp_path / "bad"), "--lr-scale", "decoders=0.1", epochs=1))
    assert not os.path.exists(tmp_path / "bad")


def test_the_pull_towards_the_warm_start_moves_each_weight_its_share_of_the_way_back():
    """w <- w + rate * lr * (w0 - w) after a step; nothing after a skipped one; frozen weights, and those that the
    warm start did not give (absent, or another shape), are not pulled."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    start["1.weight"] = torch.zeros(5, 5)  # another shape: a layer the fine-tune replaced
    model[0].bias.requires_grad_(False)
    anchor = WarmStartAnchor(model, start, rate=2.0)
    assert [p for p, _ in anchor.pairs] == [model[0].weight, model[1].bias]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert anchor.distance() == pytest.approx(1.0)
    anchor.pull(0.1, torch.tensor(1.0))  # a skipped step
    assert torch.allclose(model[0].weight, start["0.weight"] + 1.0)
    anchor.pull(0.1, torch.tensor(0.0))
    assert torch.allclose(model[0].weight, start["0.weight"] + 0.8)  # a fifth of the way back
    assert torch.allclose(model[1].bias, start["1.bias"] + 0.8)
    assert torch.allclose(model[0].bias, start["0.bias"] + 1.0)  # frozen
    assert anchor.distance() == pytest.approx(0.8)


def test_a_fine_tune_pulled_all_the_way_back_keeps_the_base_weights(corpus, tmp_path):
    """--warm-start-pull with rate x lr >= 1 undoes every step: the fine-tune ends with the base model's weights
    (its log says it is 0 away), except the layers the warm start left fresh, which are not pulled; without the pull
    every weight moves. The pull needs --warm-start."""
    ckpt = _checkpoint(corpus, tmp_path)
    old = load_checkpoint_file(ckpt)["state_dict"]
    weights = [k for k in old if "running_" not in k and "num_batches" not in k]
    for rate, out in (("1e9", tmp_path / "pulled"), ("0", tmp_path / "free")):
        assert train.main(train_argv(corpus, "Tacotron2", str(out), "--warm-start", ckpt, "--warm-start-pull", rate,
                                     "--warm-start-ignore", "decoder.gate_layer", epochs=1)) == 0
    pulled = load_checkpoint_file(str(tmp_path / "pulled" / "checkpoint_Tacotron2_last.pt"))["state_dict"]
    free = load_checkpoint_file(str(tmp_path / "free" / "checkpoint_Tacotron2_last.pt"))["state_dict"]
    for key in weights:
        assert torch.equal(pulled[key], old[key]) != key.startswith("decoder.gate_layer"), key
        assert not torch.equal(free[key], old[key]), key
    epochs = [r["data"] for r in read_log(str(tmp_path / "pulled" / "nvlog.json")) if "warm_start_distance"
              in r.get("data", {})]
    assert [e["warm_start_distance"] for e in epochs] == [0.0]
    with pytest.raises(SystemExit):
        train.parse_args(train_argv(corpus, "Tacotron2", str(tmp_path / "bad"), "--warm-start-pull", "1", epochs=1))


def test_a_warm_start_with_other_mel_settings_warns(corpus, tmp_path):
    ckpt = _checkpoint(corpus, tmp_path)
    with pytest.warns(UserWarning, match=r"trained with mel_fmax 8000.0, this run has 7000.0: the model will have "
                                         r"to learn these mels anew \(resample the corpus, or pass --mel-fmax 8000.0\)"):
        _warm_started(train_argv(corpus, "Tacotron2", str(tmp_path / "new"), "--warm-start", ckpt,
                                 "--mel-fmax", "7000", epochs=1))
    # NVIDIA's published checkpoints carry no training flags: the reference's defaults are assumed
    published = {"state_dict": {}}
    assert audio_mismatches(published, {"sampling_rate": 22050}, "nvidia.pt") == []
    message, = audio_mismatches(published, {"sampling_rate": 16000}, "nvidia.pt")
    assert "sampling_rate 22050, this run has 16000 (no training flags in the checkpoint" in message


@pytest.mark.skipif(shutil.which("text2wave") is None or shutil.which("flite") is None
                    or not os.path.isdir(voices.SLT_VOICE_DIR), reason="needs festival's slt voice and flite")
def test_the_finetune_recipe_runs_on_a_tiny_corpus(tmp_path):
    """scripts/finetune_demo.sh end to end with seconds instead of minutes: a random "base" of the demo's
    architecture, 8 sentences of the new voice, one held-out sentence, one data size; the table has every row."""
    base = tmp_path / "base"
    with open(os.path.join(REPO, "scripts", "configs", "tacotron2_small_cpu.json")) as f:
        config = {**json.load(f), "max_decoder_steps": 8}
    with open(tmp_path / "config.json", "w") as f:
        json.dump(config, f)
    flags = models.default_flags("Tacotron2")
    for k, v in config.items():
        setattr(flags, k, v)
    model_config = models.get_model_config("Tacotron2", flags)
    os.makedirs(base / "tacotron2")
    save_training_checkpoint(str(base / "tacotron2" / "checkpoint_Tacotron2_last.pt"),
                             model=models.get_model("Tacotron2", model_config, torch.device("cpu")),
                             model_name="Tacotron2", config=model_config, epoch=0, iteration=0)
    subprocess.run([sys.executable, "-m", "scripts.make_corpus", "-o", str(base / "heldout"), "--voice", "slt",
                    "--held-out", "2", "--seed", "2"], cwd=REPO, check=True, capture_output=True)
    out = tmp_path / "out"
    env = dict(os.environ, BASE=str(base), OUT=str(out), DATA=str(tmp_path / "kal16"), NEW_N="8", HELD_N="1",
               DATA_MINUTES="0.1", MINUTES="0.1", EPOCH_CLIPS="8", CONFIG=str(tmp_path / "config.json"))
    proc = subprocess.run(["bash", "scripts/finetune_demo.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (out / "table.md").read_text().splitlines()
    assert table[2].startswith("| the base model (old voice only) |")
    assert table[3].startswith("| 0.1 min of the new voice, fine-tuned from the base |")
    assert table[4].startswith("| 0.1 min of the new voice, from scratch |")
    assert any(line.startswith("| the teacher's own mel through Griffin-Lim |") for line in table)
    own, = [line for line in table if line.startswith("The base model in its own voice")]
    heard = json.loads((out / "eval" / "base_old_voice" / "metrics.json").read_text())["calibration"]
    wer = heard["model_griffin_lim"]["wer"]
    assert f"WER {wer:.2f}," in own and f"target: WER <= {wer + 0.10:.2f}" in own
    # each run is judged as the mean of its last epochs (AVERAGE=5), trained as the demo trains (AMP=1)
    assert (out / "finetuned_0.1min_averaged.pt").is_file() and (out / "scratch_0.1min_averaged.pt").is_file()
    for run in ("finetuned_0.1min", "scratch_0.1min"):
        assert "--amp-run: " in (out / f"{run}.log").read_text()
    # the fine-tune is pulled towards the base (PULL=20); the run from scratch has nothing to be pulled to
    assert "--warm-start-pull 20: " in (out / "finetuned_0.1min.log").read_text()
    assert "--warm-start-pull" not in (out / "scratch_0.1min.log").read_text()
    assert any(name.endswith("_griffin_lim.wav") for name in os.listdir(out / "eval" / "finetuned_0.1min"))
