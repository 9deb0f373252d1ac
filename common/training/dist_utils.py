"""torch.distributed set-up from torchrun's environment variables (RANK, LOCAL_RANK, WORLD_SIZE), and the
collectives the training loop uses, each checked for the device its backend needs.

NCCL (GPUs) takes only CUDA tensors on the rank's own GPU, gloo (CPU) takes CPU tensors. Every
collective here refuses a tensor that is not on the training device, in a single process too (where
it reduces nothing), so a CPU tensor meant for an NCCL all-reduce fails on a laptop, in the tests,
not after an hour in a queue for eight GPUs.
"""
import datetime
import gc
import os
import socket
from typing import Any, List, NamedTuple

import torch
import torch.distributed as dist


class DeviceMismatchError(RuntimeError):
    """A tensor handed to a collective is not on the device its process group works on."""


class DistInfo(NamedTuple):
    rank: int
    local_rank: int
    world_size: int
    device: torch.device  # the training device; collectives take tensors on it only

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """A process group exists (world size > 1, or one rank forced through the collectives)."""
        return dist.is_available() and dist.is_initialized()

    def check_device(self, t: torch.Tensor, what: str) -> None:
        if t.device.type != self.device.type or (self.device.index is not None and t.device != self.device):
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            raise DeviceMismatchError(f"{what}: tensor on {t.device}, but the training device is {self.device} "
                                      f"(its backend, {backend}, takes tensors on that device only)")

    def barrier(self) -> None:
        """Wait for every rank (a no-op in a single process)."""
        if self.distributed:
            dist.barrier()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum over ranks, as a new tensor (the same values in a single process)."""
        self.check_device(t, "all_reduce_sum")
        t = t.clone()
        if self.distributed:
            dist.all_reduce(t)
        return t

    def all_reduce_max(self, t: torch.Tensor) -> torch.Tensor:
        """Element-wise maximum over ranks, as a new tensor."""
        self.check_device(t, "all_reduce_max")
        t = t.clone()
        if self.distributed:
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t

    def all_gather(self, t: torch.Tensor) -> List[torch.Tensor]:
        """Every rank's copy of `t` (same shape on every rank), in rank order."""
        self.check_device(t, "all_gather")
        if not self.distributed:
            return [t.clone()]
        out = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(out, t.contiguous())
        return out

    def all_gather_object(self, obj: Any) -> List[Any]:
        """Every rank's picklable object, in rank order (NCCL moves it through the current GPU)."""
        if not self.distributed:
            return [obj]
        out: List[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Rank `src`'s picklable object, on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]


@torch.no_grad()
def check_replicas_in_sync(model: torch.nn.Module, info: DistInfo, iteration: int) -> None:
    """Raise if any rank's weights differ from rank 0's (exact comparison of a float64 checksum)."""
    flat = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64, device=flat.device)
    mine = torch.stack([flat.sum(), (flat * weights).sum()])
    gathered = info.all_gather(mine)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"iteration {iteration}: ranks hold different weights: {[g.tolist() for g in gathered]}")


def init_distributed(cpu: bool = False, timeout_s: float = 600.0, force: bool = False) -> DistInfo:
    """Join the process group described by the environment (a single process when WORLD_SIZE is unset).

    NCCL on GPUs, gloo on CPU. LOCAL_RANK picks the GPU; RANK is the global rank. `force` makes a
    process group of one rank too, so that one GPU runs the multi-GPU code path (DDP, NCCL collectives).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = not cpu and torch.cuda.is_available()
    if use_cuda:
        n_gpus = torch.cuda.device_count()
        if local_rank >= n_gpus:
            raise SystemExit(f"error: local rank {local_rank} but this machine shows {n_gpus} GPU(s): one process "
                             f"per GPU at most (NCCL cannot put two ranks on one GPU); start at most {n_gpus} "
                             "processes per node, or pass --cpu")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not use_cuda and "OMP_NUM_THREADS" not in os.environ:
        # Several CPU processes each running one thread per core slow each other down by
        # orders of magnitude (spinning OpenMP threads): share the cores instead.
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    if (world_size > 1 or force) and not dist.is_initialized():
        if world_size == 1:  # a lone process: rendezvous with itself
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ.setdefault("MASTER_PORT", str(free_port()))
        kwargs = {"device_id": device} if use_cuda else {}
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    return DistInfo(rank, local_rank, world_size, device)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for a rendezvous on this machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cleanup() -> None:
    """Leave the process group. Call it after dropping the DDP models: a process group still referenced from
    a reference cycle outlives destroy_process_group and dies with the interpreter, where gloo may abort."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()  # no rank closes its connections while another is still in a collective
        dist.destroy_process_group()
