"""1-D convolutions by Winograd's minimal filtering algorithm F(m, r), for a CPU's float32 inference.

A direct convolution spends r multiply-adds per output and channel pair; F(m, r) computes m outputs of an r-tap
filter from n = m + r - 1 products (Winograd, "Arithmetic Complexity of Computations", 1980; Lavin and Gray,
"Fast Algorithms for Convolutional Neural Networks", 2016). Where a convolution already runs at the machine's
multiply rate (HiFi-GAN's 7- and 11-tap layers on an AVX2 core: docs/performance.md) fewer products are the only
way to go faster. The price is rounding: the transforms' constants grow with n, so outputs differ from a direct
convolution's by ~1e-5 (F(8, 3)) to ~4e-5 (F(6, 11)) of their norm in float32, far below bfloat16's ~4e-3.

Layout. A dilated convolution is an undilated one on each of its `dilation` phases; grouping the padded input's
rows `dilation` at a time into frames makes one F(m, r) over frames serve every phase. With x as channels-last
rows (B, L, C):
    V[p]  = sum_j BT[p, j] frame[t m + j]     input transform: one batched product per tile t (k = n, padded)
    M[p]  = V[p] @ U[p]                        n products of (tiles * dilation, C_in) by (C_in, C_out): the work
    y[t m + a] = sum_p AT[a, p] M[p, t]        output transform, the bias added on the way
U = G w (the filter's transform) is computed once, when the layer is prepared.
"""
import functools
from fractions import Fraction
from typing import Callable, Dict, Hashable, List, Optional, Tuple

import torch
from torch import nn

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
        G, BT, AT = winograd_matrices(self.m, r)  # shared: read, never written
        n = self.m + r - 1
        self.q = -(-n // self.m)  # input blocks of m frames a tile reads
        BTq = torch.zeros(n, self.q * self.m, dtype=torch.float64)
        BTq[:, :n] = BT  # (n, q m): the window's frames beyond n weigh nothing
        self.register_buffer("BT", BTq.float())
        self.register_buffer("AT", AT.float())
        taps = weight.detach().float().permute(2, 1, 0).reshape(r, in_channels * out_channels)  # (r, C_in C_out)
        U = (G.float() @ taps).view(n, in_channels, out_channels)  # in float32 the rounding of U's own storage
        self.register_buffer("U", U)
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
        B, C, _, L = x.shape
        m, d, q, Co = self.m, self.dilation, self.q, self.out_channels
        n = self.U.size(0)
        L_out = L + 2 * self.padding - d * (self.r - 1)
        tiles = -(-(-(-L_out // d)) // m)  # tiles of m frames of d rows cover the output
        rows = (tiles + q) * m * d  # the padded input, whole tiles, and the last tile's window
        padded = x.new_empty(B, rows, C)
        padded[:, :self.padding] = 0
        padded[:, self.padding + L:] = 0
        padded[:, self.padding:self.padding + L] = x.permute(0, 2, 3, 1)[:, 0]  # channels-last memory is (B, L, C)
        window = padded.as_strided((B, tiles, q * m, d * C), (rows * C, m * d * C, d * C, 1))
        V = torch.matmul(self.BT, window).view(B * tiles, n, d * C)  # input transform, (B tiles, n, d C)
        # the n products over rows (tile, phase): a strided view of V for one phase, one copy for several (faster
        # than a product per phase for every dilation measured, 2 to 128)
        V = V.transpose(0, 1) if d == 1 else V.transpose(0, 1).reshape(n, B * tiles * d, C)
        M = torch.bmm(V, self.U).view(n, B * tiles, d * Co)  # (n, B tiles, d C_out)
        bias = self.bias.repeat(d).expand(B * tiles, m, d * Co)
        y = torch.baddbmm(bias, self.AT.expand(B * tiles, m, n), M.transpose(0, 1))  # (B tiles, m, d C_out)
        out = y.view(B, tiles * m * d, Co)[:, :L_out]  # (B, L', C_out)
        return out.permute(0, 2, 1).unsqueeze(2).contiguous(memory_format=torch.channels_last)


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
