"""x W^T + b for the small-batch matrix products of recurrent steps, through oneDNN on a CPU.

aten's float32 `mm` on a CPU goes to MKL's sgemm, whose kernels for a handful of rows against a
large weight run far below memory speed on some CPUs (the benchmark's "Tacotron 2 decoder" groups; the
figures per CPU kind are in docs/performance.md). oneDNN's linear is what torch.compile emits for
CPU linears; it has no autograd formula, so it is used only where no gradient is being recorded,
and aten's own `linear` everywhere else (GPU, other dtypes, autograd). On other CPUs MKL is the
faster, so callers that can time both (tacotron2/fast_inference.py: tune_decoder) pass `onednn` explicitly.

`Int8Weight`: a weight quantized to int8 per output row, multiplied by fbgemm's dynamically quantized product
(each call quantizes its input rows to 8 bits, 7 on CPUs without VNNI, multiplies in int32, rescales to
float32): a quarter of float32's bytes, for the batch-1 recurrent steps that stream their weights from memory
every step.
"""
import functools
import warnings
from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F

from common.cpu.cpu_features import bf16_native


def _runs(fn) -> bool:
    try:
        fn()
        return True
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


@functools.lru_cache(maxsize=None)
def onednn_available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether oneDNN's private linear multiplies `dtype` on this CPU: tried once on a 2x2 input (it refuses
    bfloat16 where the CPU has no bf16 instructions), and never bfloat16 without native support."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    if dtype == torch.bfloat16 and not bf16_native():
        return False
    x = torch.ones(2, 2, dtype=dtype)
    return _runs(lambda: torch.ops.mkldnn._linear_pointwise(x, x, None, "none", [], ""))


class Int8Weight(NamedTuple):
    """x W^T + b with W (out, in) in int8, one symmetric scale per output row, prepacked for fbgemm."""
    packed: torch.ScriptObject  # quantized::linear_prepack of the int8 weight (out, in) and the float32 bias
    dtype: torch.dtype = torch.qint8


def _quantize(weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.ScriptObject:
    weight = weight.detach().float().cpu()
    scales = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
    with warnings.catch_warnings():  # quantized tensors are deprecated in favour of torchao, not installed here
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(weight, scales, torch.zeros(weight.size(0), dtype=torch.long), 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(q, None if bias is None else bias.detach().float().cpu())


@functools.lru_cache(maxsize=None)
def _int8_reduce_range() -> Optional[bool]:
    """None where fbgemm's dynamically quantized linear does not run here; else whether its inputs must be
    quantized to 7 bits. Without VNNI (AVX2 CPUs) fbgemm adds pairs of u8 x s8 products in int16, which
    saturates for 8-bit inputs: probed once, ones (1, 64) x ones (4, 64)^T is 64 exactly, or ~32 saturated."""
    try:
        y = torch.ops.quantized.linear_dynamic(torch.ones(1, 64), _quantize(torch.ones(4, 64), None), False)
    except (RuntimeError, AttributeError, NotImplementedError):  # no x86/fbgemm quantized engine in this build
        return None
    return not bool(torch.allclose(y, torch.full_like(y, 64.0)))


def int8_available() -> bool:
    """Whether this build has fbgemm's dynamically quantized linear and it runs on this CPU (tried once)."""
    return _int8_reduce_range() is not None


def int8_weight(weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> Int8Weight:
    """weight (out, in) and bias (out,) prepared for `linear` as int8 (CPU only)."""
    return Int8Weight(_quantize(weight, bias))


def transposed(weight: torch.Tensor, onednn: bool) -> torch.Tensor:
    """weight^T (in, out) for `linear(y, weight^T, onednn=onednn)` = y weight: a contiguous copy for oneDNN, which
    reads (out, in) rows; a view for aten, whose sgemm then reads `weight`'s own rows without transposing (given the
    copy it would transpose it back, slower: docs/performance.md)."""
    return weight.t().contiguous() if onednn else weight.t()


def linear(x: torch.Tensor, weight: Union[torch.Tensor, Int8Weight], bias: Optional[torch.Tensor] = None,
           onednn: bool = True) -> torch.Tensor:
    """(N, in) x (out, in)^T + (out,) -> (N, out); same value as F.linear within float rounding.

    onednn: use oneDNN where it applies (CPU, float32/bfloat16, no autograd); False: always aten.
    An Int8Weight carries its bias and returns float32 (x quantized per call, 8 bits).
    """
    if isinstance(weight, Int8Weight):
        if bias is not None:
            raise ValueError("an Int8Weight carries its own bias")
        return torch.ops.quantized.linear_dynamic(x.float().contiguous(), weight.packed, bool(_int8_reduce_range()))
    if (onednn and x.device.type == "cpu" and x.dim() == 2 and x.dtype in (torch.float32, torch.bfloat16)
            and x.dtype == weight.dtype and weight.is_contiguous() and (bias is None or bias.dtype == x.dtype)
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                                  or (bias is not None and bias.requires_grad)))
            and onednn_available(x.dtype)):
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")
    return F.linear(x, weight, bias)
