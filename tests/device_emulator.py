"""A second device on a CPU-only machine, to catch tensors left on the host where CUDA would refuse them.

Inside `emulated_device()`, `x.to("lazy")`, `torch.zeros(..., device="lazy")` and friends give an
`OnDevice` tensor: it reports `device=lazy` (a device type with a device guard in CPU builds of torch, that
this code never treats specially, and that
torch does not take for shape-only tensors as it does `meta`) but holds real CPU data, so a whole training step
computes real numbers. Every operation on such tensors checks the rule CUDA enforces: a host
tensor may not meet device tensors, except a 0-d host tensor in a pointwise operation (CUDA's
"CPU scalar"), a copy between the two, and the few arguments torch keeps on the host (a packed
sequence's batch sizes, index tensors). `.cpu()`, `.item()` and `.numpy()` work as on a GPU.

Collectives are checked by `common.training.dist_utils.DistInfo` itself (tensor on the training device), so
a run with `DistInfo.device = lazy` finds a CPU tensor headed for an NCCL all-reduce as well.
"""
import contextlib
import functools
from typing import Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

DEVICE = torch.device("lazy")
aten = torch.ops.aten

# operations that take some arguments on the host whatever the device of the others
_HOST_ARGS_OK = {aten._to_copy.default, aten.copy_.default, aten._local_scalar_dense.default,
                 aten._pack_padded_sequence.default, aten._pad_packed_sequence.default, aten.lstm.data,
                 aten.index.Tensor, aten.index_put_.default, aten.index_put.default,
                 aten.index_add.default}  # (packed-sequence backward indexes with host batch sizes)
# outputs that stay on the host: (operation, output positions)
_HOST_OUTPUTS = {aten._pack_padded_sequence.default: (1,), aten._pad_packed_sequence.default: (1,)}


class DeviceMismatch(RuntimeError):
    pass


@functools.lru_cache(maxsize=None)
def _scalars_ok(func) -> bool:
    return func in _HOST_ARGS_OK or torch.Tag.pointwise in func.tags


def _unwrap(t):
    return t.data_ if isinstance(t, OnDevice) else t


def _wrap(t):
    return OnDevice(t) if type(t) is torch.Tensor else t


class OnDevice(torch.Tensor):
    """A tensor 'on the device' (reports lazy) whose data is a CPU tensor."""

    @staticmethod
    def __new__(cls, data: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(cls, data.shape, strides=data.stride(),
                                                   storage_offset=data.storage_offset(), dtype=data.dtype,
                                                   device=DEVICE, requires_grad=data.requires_grad)

    def __init__(self, data: torch.Tensor) -> None:
        self.data_ = data

    def __repr__(self) -> str:
        return f"OnDevice({self.data_!r})"

    def __reduce_ex__(self, protocol):  # torch.save writes the data (a GPU tensor would load on the CPU too)
        return self.data_.__reduce_ex__(protocol)

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert a device tensor to numpy: use .cpu() first (as on CUDA)")

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat, _ = tree_flatten((args, kwargs))
        host = [t for t in flat if isinstance(t, torch.Tensor) and not isinstance(t, OnDevice)]
        if host and func not in _HOST_ARGS_OK:
            if any(t.dim() > 0 for t in host) or not _scalars_ok(func):
                shapes = [tuple(t.shape) for t in host]
                raise DeviceMismatch(f"Expected all tensors to be on the same device: {func} got host tensor(s) "
                                     f"of shape {shapes} with tensors on the device")
        if func is aten._to_copy.default and kwargs.get("device") is not None \
                and torch.device(kwargs["device"]).type == "cpu":
            kw = dict(kwargs)
            kw.pop("device")
            return func(_unwrap(args[0]), **kw)
        out = func(*tree_map(_unwrap, args), **tree_map(_unwrap, kwargs))
        if func is aten._local_scalar_dense.default:
            return out
        if func in _HOST_OUTPUTS:
            return tuple(o if i in _HOST_OUTPUTS[func] else _wrap(o) for i, o in enumerate(out))
        return tree_map(_wrap, out)


class _ToDevice(TorchDispatchMode):
    """Turns `device="lazy"` in factory calls and `.to("lazy")` into OnDevice tensors."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        dev = kwargs.get("device")
        if dev is not None and torch.device(dev).type == DEVICE.type:
            kw = dict(kwargs)
            if func is aten._to_copy.default:
                kw.pop("device")
                return OnDevice(func(_unwrap(args[0]), **kw))
            kw["device"] = torch.device("cpu")
            return OnDevice(func(*args, **kw))
        return func(*args, **kwargs)


def _is_emulated(device) -> bool:
    return device is not None and torch.device(device).type == DEVICE.type


class _NewOnDevice(TorchFunctionMode):
    """Calls that name the device: `Tensor.to(DEVICE)`, factories with `device=DEVICE`, `torch.tensor(...)`
    (torch would initialise the real backend before dispatch, and torch.tensor bypasses the dispatcher);
    and `.tolist()`, which refuses subclasses."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.tolist and isinstance(args[0], OnDevice):
            return args[0].data_.tolist()  # a copy to the host, as on CUDA
        if func is torch.Tensor.to:
            device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
            if _is_emulated(device):
                src = args[0]
                if isinstance(src, OnDevice):  # already there: at most a cast, through the dispatcher
                    return src if dtype is None or dtype == src.dtype else src.to(dtype)
                return OnDevice(src.detach().to(dtype=dtype or src.dtype, copy=True))  # host -> device
        elif _is_emulated(kwargs.get("device")):
            return tree_map(_wrap, func(*args, **dict(kwargs, device="cpu")))
        return func(*args, **kwargs)


@contextlib.contextmanager
def emulated_device() -> Iterator[torch.device]:
    """Within this block, DEVICE behaves like an accelerator with CUDA's placement rules."""
    with _NewOnDevice(), _ToDevice():
        yield DEVICE
