"""LSTM gate pre-activations whose weight gradients are computed once per sequence, not once per step.

A teacher-forced decoder runs its LSTM cells step by step. Plain autograd then forms, at every
step, the full weight gradient g_t^T x_t of each (4H, in) matrix from a batch of only B rows and
adds it to the running sum: for Tacotron 2's two cells that is ~70 MB written and re-read per step,
most of a CPU training step. The gradient is the same sum over steps, so here each step's backward
only keeps (g_t, [x_t, h_t]); one matmul over all steps, G^T [X, H], gives it when the backward
reaches the weights. Input and recurrent matrices are fused into one product per step (through
oneDNN on a CPU, see common.cpu.linear). Values equal `torch.lstm_cell`'s within float rounding.

Ordering comes from autograd itself: every step's node takes a `token` produced from the weights
by one `_WeightTap` node, so the engine runs that node only after every step's backward is done.
"""
from typing import List, Optional, Tuple

import torch
from torch import nn

from common.cpu import lstm
from common.precision import active_autocast_dtype
from common.cpu.linear import linear


class _Record:
    """Weights prepared for one sequence, and what the steps' backward passes leave for the tap."""

    def __init__(self, cell: nn.LSTMCell, dtype: torch.dtype) -> None:
        with torch.no_grad():  # cast once per sequence; autocast would cast at every step
            w, b = lstm.fused_weights(cell)
            self.w = w.to(dtype)  # (4H, in + H)
            self.w_t = self.w.t().contiguous()  # (in + H, 4H) for the input gradients
            self.b = b.to(dtype)  # (4H,)
        self.in_dim = cell.input_size
        self.grads: List[torch.Tensor] = []  # (B, 4H) per step, in backward order
        self.inputs: List[torch.Tensor] = []  # (B, in + H) = [x, h]


class _WeightTap(torch.autograd.Function):
    """Links the cell's parameters to a zero token; its backward turns the record into their gradients."""

    @staticmethod
    def forward(ctx, record: _Record, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
                b_hh: torch.Tensor) -> torch.Tensor:
        ctx.record = record
        ctx.param_dtype = w_ih.dtype
        return w_ih.new_zeros(())

    @staticmethod
    def backward(ctx, _token_grad: torch.Tensor):
        rec: _Record = ctx.record
        if not rec.grads:
            return None, None, None, None, None
        G, XH = torch.cat(rec.grads), torch.cat(rec.inputs)  # (steps * B, 4H), (steps * B, in + H)
        rec.grads, rec.inputs = [], []
        if G.dtype == torch.float16:
            # A sum over hundreds of steps can overflow float16 where each step's share does not
            # (GradScaler scales the loss up to the edge of the range): sum in float32.
            G, XH = G.float(), XH.float()
        d_w = (G.t() @ XH).to(ctx.param_dtype)  # (4H, steps * B) x (steps * B, in + H) -> (4H, in + H)
        d_b = G.sum(0, dtype=torch.float32).to(ctx.param_dtype)
        n = rec.in_dim
        # each parameter owns its gradient (optimizers and clipping work in place)
        return None, d_w[:, :n].contiguous(), d_w[:, n:].contiguous(), d_b, d_b.clone()


class _Gates(torch.autograd.Function):
    """[x, h] [W_ih, W_hh]^T + b_ih + b_hh for one step; backward gives input gradients and records."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, h: torch.Tensor, token: torch.Tensor, record: _Record) -> torch.Tensor:
        xh = torch.cat((x, h), 1).to(record.w.dtype)  # (B, in + H)
        ctx.record = record
        ctx.save_for_backward(xh)
        return linear(xh, record.w, record.b)  # (B, 4H)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        xh, = ctx.saved_tensors
        rec: _Record = ctx.record
        grad = grad.to(rec.w.dtype)
        rec.grads.append(grad)
        rec.inputs.append(xh)
        d_xh = linear(grad, rec.w_t)  # (B, 4H) x (4H, in + H) -> (B, in + H)
        # autograd casts each input gradient back to its input's dtype
        return d_xh[:, :rec.in_dim], d_xh[:, rec.in_dim:], grad.new_zeros(()), None


class DeferredLSTMCell:
    """Step function equal to `cell(x, (h, c))` whose weight gradients are summed once per sequence.

    Build one per sequence (per forward pass) inside the autocast region of that pass.
    """

    def __init__(self, cell: nn.LSTMCell, device_type: str) -> None:
        self.record = _Record(cell, active_autocast_dtype(device_type) or cell.weight_ih.dtype)
        self.token = _WeightTap.apply(self.record, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)

    def __call__(self, x: torch.Tensor, state: Tuple[torch.Tensor, torch.Tensor]
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """x (B, in), state ((B, H), (B, H)) -> new (h, c), as torch's LSTMCell (gate order i, f, g, o)."""
        h, c = state
        return lstm.update(_Gates.apply(x, h, self.token, self.record), c)  # gates (B, 4H)


def sequence_cells(cells: Tuple[nn.LSTMCell, ...], device: torch.device, deferred: Optional[bool]
                   ) -> Optional[Tuple["DeferredLSTMCell", ...]]:
    """Stand-ins for a decoder's LSTM cells for one teacher-forced pass, or None for the cells themselves.

    deferred: True/False forces the choice; None defers on a CPU only (it keeps every step's gate gradient:
    ~1.7 GB at batch 128 x 870 frames on a GPU, where the plain cells are the better trade). Only where
    gradients of the weights are recorded.
    """
    use = device.type == "cpu" if deferred is None else deferred
    if not (use and torch.is_grad_enabled() and all(c.weight_ih.requires_grad for c in cells)):
        return None
    return tuple(DeferredLSTMCell(c, device.type) for c in cells)
