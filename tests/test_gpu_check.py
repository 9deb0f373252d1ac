"""scripts/gpu_check.sh on a machine without CUDA: says so, runs its CPU parts, exits 0."""
import os
import shutil
import subprocess

import pytest
import torch

from .conftest import REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs its GPU parts (minutes)")
def test_gpu_check_without_cuda_runs_its_cpu_parts(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (the CPU parts train on a corpus it speaks)")
    res = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=REPO, capture_output=True, text=True, timeout=400,
                         env=dict(os.environ, OUT=str(tmp_path / "out")))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "no CUDA device here" in res.stdout
    summary = res.stdout.split("=== gpu_check summary")[1].splitlines()[1:]
    assert [line.split()[:2] for line in summary if line.strip()] == [
        ["t2_fp32", "PASS"], ["wg_fp32", "PASS"], ["t2_amp", "PASS"], ["wg_amp", "PASS"],
        ["dist_Tacotron2", "PASS"], ["dist_WaveGlow", "PASS"]]
    assert os.path.exists(tmp_path / "out" / "dist_WaveGlow" / "checkpoint_WaveGlow_last.pt")
