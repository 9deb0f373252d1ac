"""The optimizer update and the per-step figures of a training loop, with no host-device sync per step.

Reading a GPU value on the host (`.item()`, `float(t)`, `bool(t)`) waits for every queued kernel and
leaves the GPU idle while Python prepares the next step. Here a step's skip decision stays on the
device (fused Adam takes a `found_inf` tensor and skips in its kernel), and the step's loss, gradient
norm and flags are kept as tensors and read in one transfer every few steps (`PendingSteps.flush`).
"""
import time
from typing import Dict, List, NamedTuple

import torch

from common.training import dist_utils


def make_adam(params, lr: float, weight_decay: float, device: torch.device, fused: bool = True) -> torch.optim.Adam:
    """Adam, fused (one kernel for all parameters, device-side step skipping) where torch has it."""
    fused = fused and device.type in ("cuda", "cpu")
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def restore_fused(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """`load_state_dict` copies the saved groups' flags: keep the fused kernel for older checkpoints.

    The fused kernel reads each parameter's step counter on the parameter's device, as float32;
    a state saved by a plain Adam keeps its counters on the CPU, so they are moved too.
    """
    if device.type not in ("cuda", "cpu"):
        return
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = True, None
        for p in group["params"]:
            state = optimizer.state.get(p)
            if state and torch.is_tensor(state.get("step")):
                state["step"] = state["step"].to(p.device, torch.float32)


def device_skip_supported(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer.step()` honours a device-side skip flag (`found_inf`) on this torch.

    Fused optimizers take one through private attributes that GradScaler sets (`_step_supports_amp_scaling`,
    `found_inf`, `grad_scale`). Those are not public API, so rather than trust them this runs the same
    call on a one-element copy of the optimizer with the flag set and checks that nothing moved.
    """
    if not getattr(optimizer, "_step_supports_amp_scaling", False):
        return False
    p = torch.zeros(1, device=optimizer.param_groups[0]["params"][0].device, requires_grad=True)
    p.grad = torch.ones_like(p)
    try:
        probe = type(optimizer)([p], **optimizer.defaults)
        _step_with_flag(probe, torch.ones((), device=p.device))
        step = probe.state[p].get("step", torch.zeros(()))
        return bool(p.detach().eq(0).all()) and float(step) == 0.0
    except (TypeError, RuntimeError, AttributeError):
        return False


def _step_with_flag(optimizer: torch.optim.Optimizer, bad: torch.Tensor) -> None:
    optimizer.found_inf = bad
    optimizer.grad_scale = None
    try:
        optimizer.step()
    finally:
        del optimizer.found_inf, optimizer.grad_scale


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, bad: torch.Tensor,
                   device_skip: bool) -> None:
    """Update the weights unless `bad` (0-d, 0 or 1 on every rank: a loss or gradient was not finite),
    then update the scaler; the weights' version counters move either way.

    With a float16 GradScaler the scaler decides from its own inf check (and lowers the scale);
    otherwise, where `device_skip` (see `device_skip_supported`), a fused optimizer skips on the device,
    and elsewhere `bad` is read on the host (one sync per step).
    """
    if scaler.is_enabled():
        scaler.step(optimizer)
    elif device_skip:
        # the fused kernels subtract found_inf from the step counters: it must be exactly 0 or 1
        _step_with_flag(optimizer, bad.float().clamp(max=1.0).reshape(()))
    elif not bool(bad):
        optimizer.step()
    scaler.update()
    # A fused kernel writes the weights without moving autograd's version counters, and what is computed from the
    # weights is kept by those counters (WaveGlow's W^-1, the engines' ParameterVersions): move them (a counter
    # each on the host, no kernel; a skipped step only costs a recomputation).
    torch.autograd.graph.increment_version([p for group in optimizer.param_groups for p in group["params"]])


def loss_scale(scaler: torch.amp.GradScaler, device: torch.device) -> torch.Tensor:
    """The current loss scale as a 0-d tensor on `device` (1 without a scaler), read without a sync where
    torch offers it (the private `_get_scale_async`); otherwise through the public, syncing `get_scale`."""
    if not scaler.is_enabled():
        return torch.ones((), device=device)
    get_async = getattr(scaler, "_get_scale_async", None)
    scale = get_async() if callable(get_async) else None
    if isinstance(scale, torch.Tensor):
        return scale.detach().float().reshape(()).to(device)
    return torch.full((), float(scaler.get_scale()), device=device)


class StepFigures(NamedTuple):
    """One step's figures as read on the host."""
    epoch: int
    batch: int
    lr: float
    loss: float  # mean over ranks
    grad_norm: float
    finite: bool  # on every rank
    items: int  # over all ranks
    loss_scale: float
    seconds: float  # the step's share of the time since the previous flush


class PendingSteps:
    """Figures of the steps since the last flush, still on the device."""

    def __init__(self) -> None:
        self._rows: List[tuple] = []
        self._since = time.perf_counter()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, epoch: int, batch: int, lr: float, loss: torch.Tensor, grad_norm: torch.Tensor, bad: torch.Tensor,
            items: torch.Tensor, scale: torch.Tensor) -> None:
        # loss, grad_norm, bad, items, scale: 0-d tensors on the training device
        values = torch.stack([loss.detach().float().reshape(()), grad_norm.detach().float().reshape(()),
                              bad.float().reshape(()), items.float().reshape(()), scale.float().reshape(())])
        self._rows.append((epoch, batch, lr, values))

    def flush(self, info: dist_utils.DistInfo) -> List[StepFigures]:
        """Read every pending step in one transfer (summed over ranks: a collective, so every rank calls it)."""
        if not self._rows:
            return []
        world_size = info.world_size
        values = torch.stack([v for _, _, _, v in self._rows])  # (steps, 5)
        values = info.all_reduce_sum(values).cpu()
        now = time.perf_counter()
        seconds = (now - self._since) / len(self._rows)
        self._since = now
        out = [StepFigures(epoch, batch, lr, float(v[0]) / world_size, float(v[1]) / world_size, float(v[2]) == 0,
                           int(v[3]), float(v[4]) / world_size, seconds)
               for (epoch, batch, lr, _), v in zip(self._rows, values)]
        self._rows = []
        return out

    def restart_clock(self) -> None:
        """Exclude time spent outside the steps (validation, checkpoints) from the next interval."""
        self._since = time.perf_counter()


def as_log_fields(step: StepFigures, skipped_total: int) -> Dict[str, float]:
    """The per-iteration JSON-lines fields of the seed's log."""
    return {"train_loss": step.loss, "train_items_per_sec": step.items / max(step.seconds, 1e-9),
            "train_iter_time": step.seconds, "lr": step.lr, "grad_norm": step.grad_norm, "skipped_steps": skipped_total,
            "loss_scale": step.loss_scale}
