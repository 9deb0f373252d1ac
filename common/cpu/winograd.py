"""1-D convolutions by Winograd's minimal filtering algorithm F(m, r), for a CPU's float32 inference (WinogradConv)
and training (winograd_conv: forward and backward).

A direct convolution spends r multiply-adds per output and channel pair; F(m, r) computes m outputs of an r-tap
filter from n = m + r - 1 products (Winograd, "Arithmetic Complexity of Computations", 1980; Lavin and Gray,
"Fast Algorithms for Convolutional Neural Networks", 2016). Where a convolution already runs at the machine's
multiply rate (HiFi-GAN's 7- and 11-tap layers on an AVX2 core: docs/performance.md) fewer products are the only
way to go faster. The price is rounding: the transforms' constants grow with n, so outputs differ from a direct
convolution's by ~1e-5 (F(8, 3)) to ~4e-5 (F(6, 11)) of their norm in float32, far below bfloat16's ~4e-3.

Layout. A dilated convolution is an undilated one on each of its `dilation` phases; grouping the padded input's
rows `dilation` at a time into frames makes one F(m, r) over frames serve every phase. With x as channels-last
rows (B, L, C):
    V[p]  = sum_j BT[p, j] frame[t m + j]     input transform: one batched product over the tiles' windows
    M[p]  = V[p] @ U[p]                        n products of (tiles * dilation, C_in) by (C_in, C_out): the work
    y[t m + a] = sum_p AT[a, p] M[p, t]        output transform, the bias added on the way
U = G w (the filter's transform) is computed once, when the layer is prepared (in training, at every call: the
weight changes). The backward pass runs through the same transforms (_WinogradTraining).
"""
import functools
from fractions import Fraction
from typing import Callable, Dict, Hashable, List, Optional, Tuple

import torch
from torch import nn

from common.cpu.cpu_features import winograd_trains_faster
from common.precision import active_autocast_dtype
from common.timing import fastest

# Interpolation points, the first n - 1 of them (and infinity) for F(m, r): small powers of two and their ratios
# keep the transforms' rounding ~4x below the integers 0, +-1, +-2, +-3, ... beyond n = 12 (measured in float32).
POINTS = [Fraction(p) for p in ("0", "1", "-1", "1/2", "-1/2", "2", "-2", "1/4", "-1/4", "4", "-4", "3/4", "-3/4",
                                 "4/3", "-4/3")]


@functools.lru_cache(maxsize=None)  # exact rational arithmetic: milliseconds per call, and a generator has 74 layers
def winograd_matrices(m: int, r: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F(m, r)'s float64 transforms: G (n, r), BT (n, n), AT (m, n), with n = m + r - 1, such that the
    correlation y[i] = sum_k g[k] d[i + k] of an n-sample window d is AT @ ((G @ g) * (BT @ d)).

    Built from Toom-Cook linear convolution s = C ((G g) * (H h)) over the points and infinity, transposed:
    AT = H^T, BT = C^T.
    """
    n = m + r - 1
    if n - 1 > len(POINTS):
        raise ValueError(f"F({m}, {r}) needs {n - 1} interpolation points; {len(POINTS)} are defined")
    points = POINTS[:n - 1]

    def evaluation(k: int) -> torch.Tensor:  # (n, k): a degree < k polynomial's values at the points, then at infinity
        rows = [[float(p ** e) for e in range(k)] for p in points] + [[0.0] * (k - 1) + [1.0]]
        return torch.tensor(rows, dtype=torch.float64)

    def times_root(coefficients: List[Fraction], root: Fraction) -> List[Fraction]:  # * (x - root), lowest first
        shifted = [Fraction(0)] + coefficients
        return [a - root * b for a, b in zip(shifted, coefficients + [Fraction(0)])]

    # C's columns, exact: the Lagrange basis polynomials of the points (each of degree n - 2, padded to n
    # coefficients), then prod (x - p), which is zero at every point and carries the leading coefficient.
    columns = []
    for i, p_i in enumerate(points):
        basis = [Fraction(1)]
        for j, p_j in enumerate(points):
            if j != i:
                basis = [c / (p_i - p_j) for c in times_root(basis, p_j)]
        columns.append(basis + [Fraction(0)])
    vanishing = [Fraction(1)]
    for p in points:
        vanishing = times_root(vanishing, p)
    columns.append(vanishing)
    interpolation = torch.tensor([[float(column[row]) for column in columns] for row in range(n)], dtype=torch.float64)
    return evaluation(r), interpolation.T.contiguous(), evaluation(m).T.contiguous()


def tile(r: int) -> int:
    """m for an r-tap filter: the largest of at most 8 that the points allow (F(8, 7): 1.75 products an output
    against 7; F(6, 11): 2.7 against 11); float32 rounding ~1e-5 (r = 3), ~2e-5 (r = 7), ~4e-5 (r = 11) of the
    output's norm, measured on 128 channels."""
    return min(8, len(POINTS) + 2 - r)


@functools.lru_cache(maxsize=None)
def _transforms(m: int, r: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F(m, r)'s float32 G (n, r), BT (n, n), AT (m, n). Shared by every layer: read, never written."""
    return tuple(t.float() for t in winograd_matrices(m, r))


def _filter_transform(weight: torch.Tensor, m: int) -> torch.Tensor:
    """U = G w, (C_out, C_in, r) -> (n, C_in, C_out), in float32: differentiable, so that training gets the weight's
    gradient through it."""
    out_channels, in_channels, r = weight.shape
    G = _transforms(m, r)[0]
    taps = weight.float().permute(2, 1, 0).reshape(r, in_channels * out_channels)  # (r, C_in C_out)
    return (G @ taps).view(m + r - 1, in_channels, out_channels)


def _tiles(length: int, padding: int, dilation: int, m: int, r: int) -> Tuple[int, int]:
    """(L_out, tiles): the output's length, and the tiles of m frames of `dilation` rows that cover it."""
    L_out = length + 2 * padding - dilation * (r - 1)
    return L_out, -(-(-(-L_out // dilation)) // m)


def tiles_fit(length: int, padding: int, dilation: int, r: int, m: Optional[int] = None) -> bool:
    """Whether F(m, r)'s whole tiles cover the output with at most a quarter more rows than it has. A dilation
    whose m frames outgrow the input pads the last tile with up to m d rows of zeros: at WaveGlow's dilation 128,
    1,000 rows (segment 8000) make 1,024, but 500 rows would make 1,024 too, where the direct convolution is
    cheaper."""
    m = tile(r) if m is None else m
    L_out, tiles = _tiles(length, padding, dilation, m, r)
    return tiles * m * dilation <= 1.25 * L_out


def _winograd_forward(x: torch.Tensor, U: torch.Tensor, bias: torch.Tensor, m: int, padding: int, dilation: int
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, C_in, 1, L) channels-last, U (n, C_in, C_out), bias (C_out,) -> (the output (B, C_out, 1, L_out)
    channels-last, V (n, B tiles d, C_in): the transformed input, which a backward pass reads)."""
    B, C, _, L = x.shape
    n, _, Co = U.shape
    r = n - m + 1
    d = dilation
    _, BT, AT = _transforms(m, r)
    L_out, tiles = _tiles(L, padding, d, m, r)
    rows = (tiles * m + r - 1) * d  # the padded input: whole tiles, and the last tile's window of n frames
    padded = x.new_empty(B, rows, C)
    padded[:, :padding] = 0
    padded[:, padding + L:] = 0
    padded[:, padding:padding + L] = x.permute(0, 2, 3, 1)[:, 0]  # channels-last memory is (B, L, C)
    window = padded.as_strided((B, tiles, n, d * C), (rows * C, m * d * C, d * C, 1))  # overlapping windows
    V = torch.matmul(BT, window).view(B * tiles, n, d * C)  # input transform, (B tiles, n, d C)
    # the n products over rows (tile, phase): a strided view of V for one phase, one copy for several (faster than a
    # product per phase for every dilation measured, 2 to 128)
    V = V.transpose(0, 1) if d == 1 else V.transpose(0, 1).reshape(n, B * tiles * d, C)
    M = torch.bmm(V, U).view(n, B * tiles, d * Co)  # (n, B tiles, d C_out)
    y = torch.baddbmm(bias.repeat(d).expand(B * tiles, m, d * Co), AT.expand(B * tiles, m, n),
                      M.transpose(0, 1))  # (B tiles, m, d C_out): the output transform, the bias added on the way
    out = y.view(B, tiles * m * d, Co)[:, :L_out]  # (B, L_out, C_out)
    return out.permute(0, 2, 1).unsqueeze(2).contiguous(memory_format=torch.channels_last), V


class WinogradConv(nn.Module):
    """A stride-1, ungrouped Conv1d's inference by F(m, r), on (B, C_in, 1, L) channels-last float32 rows (the
    layout of hifigan/fast_inference.py's prepared convolutions) -> (B, C_out, 1, L') channels-last."""

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], padding: int, dilation: int,
                 m: Optional[int] = None) -> None:
        super().__init__()
        out_channels, in_channels, r = weight.shape  # (C_out, C_in, r)
        self.m = tile(r) if m is None else m
        self.r, self.padding, self.dilation = r, padding, dilation
        self.in_channels, self.out_channels = in_channels, out_channels
        # in float32 the rounding of U's own storage
        self.register_buffer("U", _filter_transform(weight.detach(), self.m))
        self.register_buffer("bias", torch.zeros(out_channels) if bias is None else bias.detach().float().clone())

    @classmethod
    def from_conv(cls, conv: nn.Conv1d, m: Optional[int] = None) -> "WinogradConv":
        if conv.groups != 1 or conv.stride[0] != 1 or not isinstance(conv.padding[0], int):
            raise ValueError(f"{conv}: only ungrouped stride-1 convolutions with numeric padding are Winograd's")
        return cls(conv.weight, conv.bias, conv.padding[0], conv.dilation[0], m)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.r}, padding={self.padding}, "
                f"dilation={self.dilation}, F({self.m}, {self.r})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, 1, L) channels-last -> (B, C_out, 1, L + 2 padding - dilation (r - 1)) channels-last."""
        return _winograd_forward(x, self.U, self.bias, self.m, self.padding, self.dilation)[0]


class _WinogradTraining(torch.autograd.Function):
    """F(m, r) forward and backward: every gradient goes through the same transforms, so the backward's two
    products per point are as few as the forward's (a direct convolution's backward spends 2 r multiply-adds an
    output and channel pair; this one 2 n / m). With g the output's gradient and dM = A g (tile by tile):
        dU[p] = V[p]^T dM[p]  -> dw = G^T dU          dV[p] = dM[p] U[p]^T  -> dx = B dV, windows overlap-added
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int, dilation: int,
                m: int) -> torch.Tensor:
        out, V = _winograd_forward(x, _filter_transform(weight, m), bias, m, padding, dilation)
        ctx.save_for_backward(V, weight)  # U again in backward: n / r times the weight's memory, for every layer
        ctx.geometry = (x.shape, padding, dilation, m)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        V, weight = ctx.saved_tensors
        (B, C, _, L), padding, d, m = ctx.geometry
        Co, _, r = weight.shape
        n = m + r - 1
        G, BT, AT = _transforms(m, r)
        L_out, tiles = _tiles(L, padding, d, m, r)
        g = grad.new_zeros(B, tiles * m * d, Co)  # the output's gradient, whole tiles
        g[:, :L_out] = grad.permute(0, 2, 3, 1)[:, 0]
        grad_bias = g.sum((0, 1)) if ctx.needs_input_grad[2] else None
        dM = torch.matmul(AT.T, g.view(B * tiles, m, d * Co))  # (B tiles, n, d C_out)
        dM = dM.transpose(0, 1).reshape(n, B * tiles * d, Co)  # (n, B tiles d, C_out), V's rows
        grad_weight = grad_x = None
        if ctx.needs_input_grad[1]:
            dU = torch.bmm(V.transpose(1, 2), dM)  # (n, C_in, C_out)
            grad_weight = (G.T @ dU.view(n, C * Co)).view(r, C, Co).permute(2, 1, 0).contiguous()
        if ctx.needs_input_grad[0]:
            dV = torch.bmm(dM, _filter_transform(weight, m).transpose(1, 2))  # (n, B tiles d, C_in)
            dV = dV.view(n, B * tiles, d * C).transpose(0, 1)  # (B tiles, n, d C)
            d_window = torch.matmul(BT.T, dV).view(B, tiles, n, d * C)  # each tile's window of n frames
            q = -(-n // m)  # a window's blocks of m frames: tile t's are t .. t + q - 1
            d_padded = grad.new_zeros(B, tiles + q, m, d * C)  # the padded input's gradient, block by block
            for j in range(q):
                width = min(m, n - j * m)
                d_padded[:, j:j + tiles, :width] += d_window[:, :, j * m:j * m + width]
            grad_x = d_padded.view(B, -1, C)[:, padding:padding + L]  # (B, L, C_in)
            grad_x = grad_x.permute(0, 2, 1).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return grad_x, grad_weight, grad_bias, None, None, None


def winograd_conv(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], padding: int, dilation: int,
                  m: Optional[int] = None) -> torch.Tensor:
    """conv1d by a (C_out, C_in, r) kernel of (B, C_in, 1, L) channels-last float32 rows, by F(m, r) forward and
    backward: the training counterpart of WinogradConv (waveglow/cpu_layout.py's, for the coupling networks'
    dilated layers), the gradients within float32 rounding of a direct convolution's (~1e-5 of their norm)."""
    bias = weight.new_zeros(weight.size(0)) if bias is None else bias
    return _WinogradTraining.apply(x, weight, bias, padding, dilation, tile(weight.size(2)) if m is None else m)


def rule_for(conv: nn.Conv1d) -> bool:
    """The CPU kind's rule (`cpu_features.winograd_trains_faster`) for a convolution's training, by its narrower
    side: a postnet's 80 -> 128 counts as 80."""
    return winograd_trains_faster(min(conv.in_channels, conv.out_channels))


def trains_by_winograd(x: torch.Tensor, conv: nn.Conv1d, choice: Optional[bool] = None) -> bool:
    """Whether `conv`'s float32 training step on x (B, C_in, L) runs by `conv1d_by_winograd`: on a CPU, gradients
    recorded, no autocast, a stride-1 ungrouped convolution of more than one tap whose tiles fit, and `choice` True
    or (None) the CPU kind's rule (`rule_for`)."""
    taps, padding = conv.kernel_size[0], conv.padding[0]
    if not (x.device.type == "cpu" and x.dtype == torch.float32 and conv.weight.dtype == torch.float32
            and torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad)
            and active_autocast_dtype("cpu") is None and not torch.jit.is_tracing()
            and conv.groups == 1 and conv.stride[0] == 1 and isinstance(padding, int) and taps > 1
            and conv.padding_mode == "zeros"):
        return False
    chosen = rule_for(conv) if choice is None else choice
    return chosen and tiles_fit(x.size(2), padding, conv.dilation[0], taps)


def conv1d_by_winograd(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """conv(x) by `winograd_conv`, (B, C_in, L) -> (B, C_out, L'), forward and backward. The result's memory is
    channels-last rows (strides (L' C_out, 1, C_out)), which elementwise layers keep and the next such convolution
    reads without a copy."""
    rows = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, C_in, 1, L), no copy if already rows
    return winograd_conv(rows, conv.weight, conv.bias, conv.padding[0], conv.dilation[0]).squeeze(2)


def winograd_is_faster(direct: Callable[[torch.Tensor], torch.Tensor], winograd: WinogradConv, x: torch.Tensor,
                       repeats: int = 3) -> Tuple[bool, Dict[str, float]]:
    """Whether `winograd` computes direct(x) faster on this machine, and each one's median seconds: which wins
    depends on the channels, the length and the CPU's multiply rate against its memory's (docs/performance.md)."""
    best, seconds = fastest({"direct": lambda: direct(x), "winograd": lambda: winograd(x)}, x.device, repeats)
    return best == "winograd", seconds


class WinogradChoice:
    """Direct or Winograd, for the layers of an engine that share a key (a shape): the first layer of each key is
    timed on its input, every later one takes that verdict, and a WinogradConv is built only for a layer that takes
    it (a WaveGlow's 96 dilated layers make 8 keys). `seconds[key]`: the timings of each key."""

    def __init__(self, repeats: int = 3) -> None:
        self.repeats = repeats
        self.seconds: Dict[Hashable, Dict[str, float]] = {}

    def choose(self, key: Hashable, direct: Callable[[torch.Tensor], torch.Tensor],
               make: Callable[[], WinogradConv], probe: Callable[[], torch.Tensor]) -> Optional[WinogradConv]:
        """The layer's WinogradConv (`make()`) where Winograd's is faster for `key`, else None; `direct` and
        `probe()` (its input) are called only when `key` is timed."""
        timed = None
        if key not in self.seconds:
            timed = make()
            _, self.seconds[key] = winograd_is_faster(direct, timed, probe(), self.repeats)
        seconds = self.seconds[key]
        if seconds["winograd"] >= seconds["direct"]:  # a tie keeps direct, as `fastest` does
            return None
        return timed if timed is not None else make()
