"""common.cpu.host_memory: a CPU run keeps the memory it frees (no page faults when a step allocates it again)."""
import json
import os
import platform
import subprocess
import sys

import pytest
import torch

from common.cpu.host_memory import MALLOC_ENV, keep_freed_memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Allocate ~180 MiB of tensors in 1-4 MiB pieces and one of 64 MiB (above glibc's largest own mmap threshold), touch
# them, free them all: what a training step does
CYCLES = r"""
import json, resource, sys
import torch
from common.cpu.host_memory import keep_freed_memory
kept = keep_freed_memory(torch.device("cpu")) if sys.argv[1] == "keep" else None
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    pieces = [torch.empty(n).fill_(1.0) for n in [1 << 18, 1 << 19, 1 << 20] * 15 + [1 << 24]]
    del pieces
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""


def _cycles(mode: str, **env_extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(env_extra, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", CYCLES, mode], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_memory_is_kept_and_not_faulted_in_again():
    default, kept = _cycles("default"), _cycles("keep")
    assert kept["kept"] is True
    # glibc's own thresholds hand at least the 64 MiB block (16,384 pages) back to the kernel every cycle; kept, the
    # heap grows for a cycle or two and is then reused
    assert min(default["faults"][3:]) >= 16_000, default
    assert sorted(kept["faults"][3:])[2] < 2_000 and sum(kept["faults"][-3:]) < 4_000, kept


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_the_users_malloc_settings_stand():
    chosen = _cycles("keep", MALLOC_TRIM_THRESHOLD_="0")
    assert chosen["kept"] is False
    assert min(chosen["faults"][3:]) >= 16_000, chosen


def test_other_devices_are_left_alone():
    assert keep_freed_memory(torch.device("meta")) is False


def test_user_choice_is_read_from_the_environment(monkeypatch):
    for k in MALLOC_ENV + ("GLIBC_TUNABLES",):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    assert keep_freed_memory(torch.device("cpu")) is False
