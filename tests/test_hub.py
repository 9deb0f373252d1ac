"""torch.hub.load(<this repository>, ...) with NVIDIA's entry points and call shapes, from a local checkout."""
import os
import shutil
import subprocess
import sys

import pytest
import soundfile as sf
import torch

from common.checkpoint import save_training_checkpoint
from tacotron2.model import Tacotron2
from tacotron2.text.phonemizers import SLT_VOICE_DIR
from waveglow.model import WaveGlow

from .conftest import REPO, TINY_TACOTRON2, TINY_WAVEGLOW, checkout_after_demo, readme_block


def test_nvidias_hub_example_runs_on_local_checkpoints(tmp_path):
    """NVIDIA's documented sequence of calls, on checkpoints given as files (nothing downloaded)."""
    torch.manual_seed(0)
    t2_config = {**TINY_TACOTRON2, "n_mel_channels": 80, "max_decoder_steps": 12}
    wg_config = {**TINY_WAVEGLOW, "n_mel_channels": 80}
    paths = {}
    for name, cls, config in (("Tacotron2", Tacotron2, t2_config), ("WaveGlow", WaveGlow, wg_config)):
        paths[name] = str(tmp_path / f"{name}.pt")
        save_training_checkpoint(paths[name], model=cls(**config), model_name=name, config=config, epoch=0,
                                 iteration=0)
    tacotron2 = torch.hub.load(REPO, "nvidia_tacotron2", source="local", checkpoint=paths["Tacotron2"])
    waveglow = torch.hub.load(REPO, "nvidia_waveglow", source="local", checkpoint=paths["WaveGlow"])
    waveglow = waveglow.remove_weightnorm(waveglow)
    utils = torch.hub.load(REPO, "nvidia_tts_utils", source="local")
    sequences, lengths = utils.prepare_input_sequence(["Hi.", "Hello world, again."], cpu_run=True)
    assert lengths.tolist() == sorted(lengths.tolist(), reverse=True) and sequences.dtype == torch.long
    assert sequences.shape == (2, int(lengths[0])) and (sequences[1, int(lengths[1]):] == 0).all()
    with torch.no_grad():
        mel, mel_lengths, alignments = tacotron2.infer(sequences, lengths)
        audio = waveglow.infer(mel)
    assert mel.shape[:2] == (2, 80) and alignments.shape[0] == 2 and audio.shape == (2, mel.size(2) * 256)
    assert torch.isfinite(audio).all()
    with pytest.raises(ValueError):
        waveglow.remove_weightnorm(WaveGlow(**wg_config))


def test_the_hubs_default_architectures_without_weights():
    tacotron2 = torch.hub.load(REPO, "nvidia_tacotron2", source="local", pretrained=False, max_decoder_steps=7)
    assert tacotron2.decoder.max_decoder_steps == 7 and tacotron2.embedding.weight.shape == (148, 512)
    waveglow = torch.hub.load(REPO, "nvidia_waveglow", source="local", pretrained=False, n_channels=256)
    assert waveglow.WN[0].n_channels == 256
    with pytest.raises(TypeError, match="no setting 'n_chanels'"):
        torch.hub.load(REPO, "nvidia_waveglow", source="local", pretrained=False, n_chanels=256)
    with pytest.raises(ValueError, match="model_math"):
        torch.hub.load(REPO, "nvidia_tacotron2", source="local", pretrained=False, model_math="int8")


def test_the_readmes_cpu_hub_snippet_runs_as_printed(tmp_path):
    """The snippet, verbatim, in a folder laid out as this checkout after the demo (the repository's files linked,
    a small Tacotron 2 at demo_output/tacotron2_averaged.pt that says its front end), on a CPU."""
    frontend = "festival" if shutil.which("festival") and os.path.isdir(SLT_VOICE_DIR) else "characters"
    checkout_after_demo(tmp_path, frontend)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    run = subprocess.run([sys.executable, "-c", readme_block("python", '"hifigan", source="local"')], cwd=tmp_path,
                         capture_output=True, text=True, env={**env, "CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    info = sf.info(str(tmp_path / "hello.wav"))
    assert info.samplerate == 22050 and info.frames == 12 * 256
