"""Checkpoint I/O: the published format, atomic writes, safe loads, key normalisation, clear refusals."""
import os

import pytest
import torch

import models
from common.checkpoint import (CheckpointError, atomic_save, check_model_kind, load_checkpoint_file, load_model_weights,
                               state_dict_from_checkpoint)
from tacotron2.model import Tacotron2
from waveglow.model import WaveGlow

from .conftest import TINY_TACOTRON2, TINY_WAVEGLOW, load_reference


def _published_structure(state_dict, config, prefix=""):
    """What NVIDIA's train.py writes: epoch, RNG states, config, state_dict, optimizer, scaler/amp."""
    return {"epoch": 1500, "cuda_rng_state_all": [], "random_rng_states_all": torch.zeros(2, 5056, dtype=torch.uint8),
            "config": config, "state_dict": {prefix + k: v for k, v in state_dict.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0]}]}, "amp": {"loss_scaler0": {}}}


@pytest.mark.parametrize("prefix", ["", "module."])
def test_published_tacotron2_checkpoint_loads_through_the_single_loader(tmp_path, prefix):
    golden = load_reference("tacotron2_small.pt")
    path = str(tmp_path / "checkpoint_Tacotron2_1500")
    torch.save(_published_structure(golden["state_dict"], golden["config"], prefix), path)
    ckpt = load_checkpoint_file(path)
    model = Tacotron2(**ckpt["config"])
    load_model_weights(model, state_dict_from_checkpoint(ckpt, path), path)
    for k, v in golden["state_dict"].items():
        assert torch.equal(model.state_dict()[k], v), k


def test_parametrized_weight_norm_keys_are_renamed(tmp_path):
    model = WaveGlow(**TINY_WAVEGLOW)
    sd = {k.replace("weight_g", "parametrizations.weight.original0").replace("weight_v",
                                                                               "parametrizations.weight.original1"): v
          for k, v in model.state_dict().items()}
    fresh = WaveGlow(**TINY_WAVEGLOW)
    load_model_weights(fresh, state_dict_from_checkpoint({"state_dict": sd}, "x"), "x")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))


def test_misfit_weights_are_named():
    big = Tacotron2(**TINY_TACOTRON2).state_dict()
    del big["embedding.weight"]
    big["decoder.extra"] = torch.zeros(1)
    big["postnet.convolutions.0.0.conv.weight"] = torch.zeros(3, 3, 3)
    with pytest.raises(CheckpointError) as err:
        load_model_weights(Tacotron2(**TINY_TACOTRON2), big, "ck.pt")
    msg = str(err.value)
    assert "ck.pt" in msg and "missing: embedding.weight" in msg and "unexpected: decoder.extra" in msg
    assert "postnet.convolutions.0.0.conv.weight: checkpoint (3, 3, 3)" in msg


def test_wrong_model_is_named():
    with pytest.raises(CheckpointError, match="this is a WaveGlow checkpoint, but a Tacotron2 was expected"):
        check_model_kind(WaveGlow(**TINY_WAVEGLOW).state_dict(), "Tacotron2", "wg.pt", models.SIGNATURE_KEYS)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_code_carrying_pickle_is_refused(tmp_path):
    marker = tmp_path / "executed"
    path = str(tmp_path / "evil.pt")
    torch.save({"state_dict": {}, "payload": _RunsCode(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint_file(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_plain_pickle_holding_code_is_named_as_such(tmp_path, protocol):
    """Written by pickle.dump, not torch.save: the safe reader stops at an instruction it lacks and was reported
    as 'not a readable PyTorch checkpoint (truncated or corrupt?)'."""
    import pickle
    marker = tmp_path / "executed"
    path = str(tmp_path / "pickled.pt")
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {}, "payload": _RunsCode(str(marker))}, f, protocol=protocol)
    with pytest.raises(CheckpointError, match="holds objects other than tensors.*convert_checkpoint --trust"):
        load_checkpoint_file(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_unreadable_files_are_named(tmp_path, content):
    path = str(tmp_path / "bad.pt")
    if content is None:  # truncated real checkpoint
        torch.save({"state_dict": Tacotron2(**TINY_TACOTRON2).state_dict()}, path)
        data = open(path, "rb").read()
        content = data[: len(data) // 2]
    with open(path, "wb") as f:
        f.write(content)
    with pytest.raises(CheckpointError, match="bad.pt: not a readable PyTorch checkpoint"):
        load_checkpoint_file(path)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint_file(str(tmp_path / "missing.pt"))


def test_atomic_save_keeps_old_file_when_writing_fails(tmp_path):
    path = str(tmp_path / "ck.pt")
    atomic_save({"a": torch.ones(2)}, path)

    class Unsavable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"a": Unsavable()}, path)
    assert torch.equal(load_checkpoint_file(path)["a"], torch.ones(2))
    assert os.listdir(tmp_path) == ["ck.pt"]  # no temp files left behind


def test_averaged_checkpoints_are_the_mean_of_the_weights_and_load_for_inference(tmp_path):
    from common.checkpoint import average_checkpoints, save_training_checkpoint
    from scripts import average_checkpoints as script
    config = {**TINY_TACOTRON2, "n_mel_channels": 80}
    weights = []
    for epoch in range(3):
        torch.manual_seed(epoch)
        model = Tacotron2(**config)
        weights.append(model.state_dict())
        save_training_checkpoint(str(tmp_path / f"checkpoint_Tacotron2_{epoch}.pt"), model=model,
                                 model_name="Tacotron2", config=config, epoch=epoch, iteration=10 * epoch,
                                 train_args={"text_frontend": "characters"})
    out = str(tmp_path / "avg.pt")
    assert script.main([str(tmp_path), "--last", "2", "-o", out]) == 0
    model, _ = models.load_model(out, "Tacotron2", torch.device("cpu"))
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, (weights[1][key] + weights[2][key]) / 2, atol=1e-7), key
    ckpt = load_checkpoint_file(out)
    assert ckpt["averaged_from"] == ["checkpoint_Tacotron2_1.pt", "checkpoint_Tacotron2_2.pt"]
    assert ckpt["train_args"] == {"text_frontend": "characters"} and ckpt["epoch"] == 2
    other = str(tmp_path / "wg.pt")
    torch.save({"state_dict": {"x": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointError, match="holds other weights"):
        average_checkpoints([str(tmp_path / "checkpoint_Tacotron2_0.pt"), other])
