"""The random generators of one training process, saved and restored for exact resumption.

A checkpoint holds every rank's states (`rank_rng_states`, rank order) and rank 0's at the top level, as
the seed's checkpoints do. Each rank saves the CUDA generator of its own GPU only (`cuda_rng_state`),
so a run saved on 8 GPUs resumes on a machine with fewer, or under per-process CUDA_VISIBLE_DEVICES.
"""
import random
import warnings
from typing import Any, Dict, List

import numpy as np
import torch


def rng_states(device: torch.device) -> Dict[str, Any]:
    """Every generator this process draws from: torch CPU, numpy, Python, and the training GPU's."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    states = {"random_rng_state": torch.get_rng_state(),
              "numpy_rng_state": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                                  "cached_gaussian": float(cached)},
              "python_rng_state": {"version": version, "state": list(py_state), "gauss_next": gauss_next}}
    if device.type == "cuda":  # never touches CUDA (no context is made) when training on the CPU
        states["cuda_rng_state"] = torch.cuda.get_rng_state(device)
    return states


def checkpoint_rng_states(gathered: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The checkpoint's RNG entries from every rank's `rng_states`, in rank order."""
    return {"rank_rng_states": gathered, **gathered[0]}


def _cuda_state(mine: Dict[str, Any], device: torch.device):
    if mine.get("cuda_rng_state") is not None:
        return mine["cuda_rng_state"]
    saved = mine.get("cuda_rng_state_all")  # older checkpoints: one state per GPU the saving rank could see
    if saved:
        index = device.index or 0
        return saved[index] if index < len(saved) else saved[0]
    return None


def restore_rng_states(ckpt: Dict[str, Any], rank: int, device: torch.device) -> None:
    """Set this rank's generators from a checkpoint (a rank the checkpoint did not have takes rank 0's)."""
    states = ckpt.get("rank_rng_states")
    if states and rank >= len(states):
        warnings.warn(f"the checkpoint holds RNG states of {len(states)} ranks; rank {rank} continues with rank "
                      "0's (the run is no longer bit-for-bit that of an uninterrupted one)")
    mine = states[rank] if states and rank < len(states) else ckpt
    if "random_rng_state" in mine:
        torch.set_rng_state(mine["random_rng_state"])
    if "numpy_rng_state" in mine:
        s = mine["numpy_rng_state"]
        np.random.set_state(("MT19937", np.array(s["keys"], dtype=np.uint32), s["pos"], s["has_gauss"],
                             s["cached_gaussian"]))
    if "python_rng_state" in mine:
        s = mine["python_rng_state"]
        random.setstate((s["version"], tuple(s["state"]), s["gauss_next"]))
    if device.type == "cuda":
        state = _cuda_state(mine, device)
        if state is not None:
            torch.cuda.set_rng_state(state, device)
