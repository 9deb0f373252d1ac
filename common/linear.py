"""x W^T + b for the small-batch matrix products of recurrent steps, through oneDNN on a CPU.

aten's float32 `mm` on a CPU goes to MKL's sgemm, whose kernels for a handful of rows against a
large weight run far below memory speed on some CPUs. Measured on this project's 2-core AMD EPYC
(weights cycled through memory, not cache): batch 1 against a (4096, 2560) weight, MKL 1.97 ms,
oneDNN 0.85 ms; batch 8, 3.4 ms against 1.1 ms. oneDNN's linear is what torch.compile emits for
CPU linears; it has no autograd formula, so it is used only where no gradient is being recorded,
and aten's own `linear` everywhere else (GPU, other dtypes, autograd). On other CPUs MKL is the
faster (an Intel Xeon of the same machine kind: batch 1, float32, MKL 0.76 ms against 0.83 ms), so
callers that can time both (Decoder.tune_fast_inference) pass `onednn` explicitly.
"""
from typing import Optional

import torch
import torch.nn.functional as F


def _onednn_linear_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


ONEDNN_AVAILABLE = _onednn_linear_available()  # a fact of the installed build, not state


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
           onednn: bool = True) -> torch.Tensor:
    """(N, in) x (out, in)^T + (out,) -> (N, out); same value as F.linear within float rounding.

    onednn: use oneDNN where it applies (CPU, float32/bfloat16, no autograd); False: always aten.
    """
    if (onednn and ONEDNN_AVAILABLE and x.device.type == "cpu" and x.dim() == 2 and x.dtype in (torch.float32, torch.bfloat16)
            and x.dtype == weight.dtype and weight.is_contiguous() and (bias is None or bias.dtype == x.dtype)
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                                  or (bias is not None and bias.requires_grad)))):
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")
    return F.linear(x, weight, bias)
