"""Timing code on a device, and picking the fastest of several ways to run the same thing.

Which kernels are fastest depends on the processor more than on the code: oneDNN's small-batch products
beat MKL's on one CPU kind and lose on another, and bfloat16 convolutions are twice float32's speed on one
and slower on another (docs/performance.md). The fast inference paths therefore time
their candidates once, on the real weights and shapes, and keep the fastest (`fastest`).
"""
import time
from typing import Callable, Dict, Iterator, Mapping, Tuple

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of fn() over `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def dtype_name(dtype: torch.dtype) -> str:
    """"float32", "bfloat16", ...: how timed candidates are named."""
    return str(dtype).replace("torch.", "")


def fastest(candidates: Mapping[str, Callable[[], object]], device: torch.device, repeats: int = 3
            ) -> Tuple[str, Dict[str, float]]:
    """The name of the fastest candidate and every candidate's median seconds."""
    if not candidates:
        raise ValueError("no candidates to time")
    seconds = {name: median_seconds(fn, device, repeats) for name, fn in candidates.items()}
    return min(seconds, key=seconds.get), seconds


def first_item_seconds(start: Callable[[], Iterator], device: torch.device, runs: int = 1) -> float:
    """Mean seconds from calling start() to the first item of the iterator it returns (a stream's first audio
    piece), over `runs` calls; the rest of each stream is closed unread."""
    seconds = []
    for _ in range(max(runs, 1)):
        sync(device)
        t0 = time.perf_counter()
        items = start()
        next(items)
        sync(device)
        seconds.append(time.perf_counter() - t0)
        close = getattr(items, "close", None)
        if close:
            close()
    return sum(seconds) / len(seconds)
