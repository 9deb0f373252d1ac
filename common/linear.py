"""x W^T + b for the small-batch matrix products of recurrent steps, through oneDNN on a CPU.

aten's float32 `mm` on a CPU goes to MKL's sgemm, whose kernels for a handful of rows against a
large weight run far below memory speed on some CPUs. Measured on this project's 2-core AMD EPYC
(weights cycled through memory, not cache): batch 1 against a (4096, 2560) weight, MKL 1.97 ms,
oneDNN 0.85 ms; batch 8, 3.4 ms against 1.1 ms. oneDNN's linear is what torch.compile emits for
CPU linears; it has no autograd formula, so it is used only where no gradient is being recorded,
and aten's own `linear` everywhere else (GPU, other dtypes, autograd). On other CPUs MKL is the
faster (an Intel Xeon of the same machine kind: batch 1, float32, MKL 0.76 ms against 0.83 ms), so
callers that can time both (Decoder.tune_fast_inference) pass `onednn` explicitly.

`Int8Weight`: a weight quantized to int8 per output row, multiplied by fbgemm's dynamically quantized product
(each call quantizes its input rows to 8 bits, multiplies in int32, rescales to float32): a quarter of float32's
bytes, for the batch-1 recurrent steps that stream their weights from memory every step.
"""
import warnings
from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F


def _onednn_linear_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


ONEDNN_AVAILABLE = _onednn_linear_available()  # a fact of the installed build, not state


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


def _int8_available() -> bool:
    try:
        _quantize(torch.ones(2, 2), None)
        return True
    except (RuntimeError, AttributeError):  # no x86/fbgemm quantized engine in this build
        return False


INT8_AVAILABLE = _int8_available()  # a fact of the installed build


def int8_weight(weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> Int8Weight:
    """weight (out, in) and bias (out,) prepared for `linear` as int8 (CPU only)."""
    return Int8Weight(_quantize(weight, bias))


def linear(x: torch.Tensor, weight: Union[torch.Tensor, Int8Weight], bias: Optional[torch.Tensor] = None,
           onednn: bool = True) -> torch.Tensor:
    """(N, in) x (out, in)^T + (out,) -> (N, out); same value as F.linear within float rounding.

    onednn: use oneDNN where it applies (CPU, float32/bfloat16, no autograd); False: always aten.
    An Int8Weight carries its bias and returns float32 (x quantized per call, 8 bits).
    """
    if isinstance(weight, Int8Weight):
        if bias is not None:
            raise ValueError("an Int8Weight carries its own bias")
        return torch.ops.quantized.linear_dynamic(x.float().contiguous(), weight.packed, False)
    if (onednn and ONEDNN_AVAILABLE and x.device.type == "cpu" and x.dim() == 2 and x.dtype in (torch.float32, torch.bfloat16)
            and x.dtype == weight.dtype and weight.is_contiguous() and (bias is None or bias.dtype == x.dtype)
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                                  or (bias is not None and bias.requires_grad)))):
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")
    return F.linear(x, weight, bias)
