"""Tiny LJSpeech-format corpora for tests, spoken by espeak-ng."""
import json
import os
import shutil
import subprocess
import sys

import pytest

TINY_T2_FLAGS = {"symbols_embedding_dim": 16, "encoder_embedding_dim": 16, "attention_rnn_dim": 32,
                 "attention_dim": 8, "attention_location_n_filters": 4, "attention_location_kernel_size": 7,
                 "decoder_rnn_dim": 32, "prenet_dim": 16, "postnet_embedding_dim": 16, "max_decoder_steps": 60}
TINY_WG_FLAGS = {"flows": 4, "groups": 8, "early_every": 2, "early_size": 2, "wn_layers": 2, "wn_channels": 8,
                 "segment_length": 2048}


def build_tiny_corpus(root: str, n: int = 16) -> str:
    """n sentences spoken by espeak-ng into root; where espeak-ng is missing (a bare GPU machine), a copy of
    the corpus that TACOTRON2_TEST_CORPUS names (built elsewhere by this function with the same n)."""
    prebuilt = os.environ.get("TACOTRON2_TEST_CORPUS")
    if shutil.which("espeak-ng") is None and prebuilt:
        shutil.copytree(prebuilt, root, dirs_exist_ok=True)
    elif shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (bash scripts/setup.sh installs it)")
    else:
        from corpora.build import build_corpus
        build_corpus(root, n, "espeak", seed=7, val_fraction=0.15, test_fraction=0.1, jobs=2)
    for name, flags in (("tiny_t2.json", TINY_T2_FLAGS), ("tiny_wg.json", TINY_WG_FLAGS)):
        with open(os.path.join(root, name), "w") as f:
            json.dump(flags, f)
    return root


def train_argv(corpus: str, model: str, out: str, *extra: str, epochs: int = 2, bs: int = 4) -> list:
    cfg = "tiny_t2.json" if model == "Tacotron2" else "tiny_wg.json"
    return ["-m", model, "-o", out, "-d", corpus, "-lr", "1e-3", "--epochs", str(epochs), "-bs", str(bs),
            "--training-files", os.path.join(corpus, "filelists", "espeak_audio_text_train_filelist.txt"),
            "--validation-files", os.path.join(corpus, "filelists", "espeak_audio_text_val_filelist.txt"),
            "--config-file", os.path.join(corpus, cfg), "--epochs-per-checkpoint", "1", *extra]


def run_python(argv, timeout=240, env=None, **kw) -> subprocess.CompletedProcess:
    """`python ARGV...` in the repository root, output captured as text."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable] + argv, cwd=repo, capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)


class PoisonedLoss:
    """A training loss made non-finite on the steps `poison(i)` picks (i counts training calls from 0), as an
    fp16 overflow would; everything else (e.g. `set_iteration`) is the wrapped loss's."""

    def __init__(self, criterion, poison, value: float = float("inf")) -> None:
        self.criterion, self.poison, self.value, self.calls = criterion, poison, value, 0

    def __call__(self, y_pred, y):
        loss = self.criterion(y_pred, y)
        if not loss.requires_grad:  # validation
            return loss
        self.calls += 1
        return loss * self.value if self.poison(self.calls - 1) else loss

    def __getattr__(self, name):
        return getattr(self.criterion, name)
