"""Fast WaveGlow inference: weight norm folded, each flow's 1x1 inverse computed once, the coupling
networks' weights cast to one dtype and laid out for oneDNN, beside the plain model.

`FastWaveGlow(model, dtype)` is a snapshot of a WaveGlow's weights prepared for inference; its
`infer` and `infer_chunks` take the model's arguments and give the model's audio (float32 within
rounding; bfloat16 coupling networks within ~30 dB SNR, int8 ones within ~25). bfloat16 doubles the
arithmetic rate on CPUs with AVX512-BF16; int8 (torch.qint8: fbgemm's dynamically quantized products, weights
one scale per output channel, activations quantized per call) is the CPU's fastest product, with or without bf16,
but audibly noisier on the WaveGlow judged so far, so it runs only when asked for (docs/performance.md).
The inverse 1x1 convolutions and the affine coupling stay in float32. In float32 and int8 the gate's tanh half
comes from the sigmoid (autograd.sigmoid_gate), its rows prepared doubled. In float32 on a CPU the dilated
convolutions can run by Winograd's algorithm (common/cpu/winograd.py), where each dilation's is timed faster: 10
products for 8 outputs of a 3-tap filter instead of 24, at the price of 3.3 times those layers' weight memory. A
snapshot refuses to run once the model's weights have changed: build a new one.
`tune_waveglow` times the plain model against prepared dtypes on this machine and keeps the fastest.
"""
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from common.cpu.linear import Int8Weight, int8_weight, linear
from common.cpu.winograd import WinogradChoice, WinogradConv
from common.timing import dtype_name, fastest
from common.utils import ParameterVersions
from waveglow.autograd import gated_activation, sigmoid_gate
from waveglow.cpu_layout import CHANNELS_LAST
from waveglow.model import WaveGlow, effective_weight, wavenet
from waveglow.upsample import product_weight, upsample_as_product


class Prepared(NamedTuple):
    """One convolution's weights prepared for inference: (out, in, 1, k) in channels-last layout, cast, folded."""
    weight: torch.Tensor
    bias: torch.Tensor
    padding: int = 0
    dilation: int = 1


class Int8Conv(NamedTuple):
    """One convolution as an int8 matrix product over rows of its k taps side by side: (out, k * in), tap-major."""
    weight: Int8Weight
    out_channels: int
    kernel_size: int
    padding: int = 0
    dilation: int = 1


Conv = Union[Prepared, Int8Conv, WinogradConv]


class FastWN(NamedTuple):
    """One flow's coupling network with weights prepared for inference, under WN's attribute names (what
    waveglow.model.wavenet reads).

    The fast path runs the 1-D convolutions as 2-D ones over (B, C, 1, L/G) channels-last activations, which
    oneDNN computes without reordering activations or weights per call (the benchmark's "WaveGlow WN ...
    inference" groups).
    """
    start: Conv
    in_layers: List[Conv]
    res_skip_layers: List[Conv]
    # Per-layer conditioning: one merged (L * 2C)-channel convolution was slower in float32 (its wider
    # intermediate costs memory traffic) and no faster in bf16 (docs/performance.md).
    cond_layers: List[Conv]
    end: Conv
    W_inverse: torch.Tensor  # (c, c, 1) float32 inverse of the flow's 1x1 convolution


def sigmoid_gated(dtype: torch.dtype) -> bool:
    """Whether the coupling networks in `dtype` gate through autograd.sigmoid_gate (float32 activations)."""
    return dtype in (torch.float32, torch.qint8)


def _prepared(conv: nn.Module, dtype: torch.dtype, double_rows: int = 0) -> Conv:
    """A conv1d's weights as `Prepared` cast to dtype, or as `Int8Conv` for torch.qint8; the first `double_rows`
    output channels (the gate's tanh half, for sigmoid_gate) times two, which is exact."""
    weight, bias = effective_weight(conv).detach().float(), conv.bias.detach().float()  # (out, in, k), (out,)
    if double_rows:
        scale = torch.ones_like(bias)
        scale[:double_rows] = 2
        weight, bias = weight * scale[:, None, None], bias * scale
    padding, dilation = (v[0] if isinstance(v, tuple) else v for v in (conv.padding, conv.dilation))
    out_channels, in_channels, k = weight.shape
    if dtype == torch.qint8:
        taps = weight.permute(0, 2, 1).reshape(out_channels, k * in_channels)  # (out, k * in), tap-major
        return Int8Conv(int8_weight(taps, bias), out_channels, k, padding, dilation)
    weight = weight.to(dtype)[:, :, None].contiguous(memory_format=torch.channels_last)  # (out, in, 1, k)
    return Prepared(weight, bias.to(dtype), padding, dilation)


def _int8_conv(layer: Int8Conv, x: torch.Tensor) -> torch.Tensor:
    """(B, C_in, 1, L) channels-last float32 -> (B, C_out, 1, L) channels-last float32 through one int8 product:
    the k dilated taps side by side as (B * L, k * C_in) rows (one copy), quantized once."""
    B, C, _, L = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(B, L, C)  # a view: channels-last memory is (B, L, C) rows
    if layer.kernel_size > 1:
        padded = F.pad(rows, (0, 0, layer.padding, layer.padding))  # (B, L + 2p, C)
        d = layer.dilation
        rows = torch.cat([padded[:, j * d:j * d + L] for j in range(layer.kernel_size)], dim=2)  # (B, L, k C)
    y = linear(rows.reshape(B * L, -1), layer.weight)  # (B * L, C_out)
    return y.view(B, 1, L, layer.out_channels).permute(0, 3, 1, 2)  # channels-last (B, C_out, 1, L), no copy


def _conv(layer: Conv, x: torch.Tensor) -> torch.Tensor:
    """One prepared convolution of (B, C_in, 1, L/G) channels-last rows (cpu_layout's, on prepared weights)."""
    if isinstance(layer, Int8Conv):
        return _int8_conv(layer, x)
    if isinstance(layer, WinogradConv):
        return layer(x)
    return CHANNELS_LAST.conv(x, layer.weight, layer.bias, layer.padding, layer.dilation)


class FastWaveGlow:
    """`WaveGlow.infer` on prepared weights; see the module docstring. In float32 with `winograd`, the coupling
    networks' dilated convolutions (`in_layers`) by Winograd's algorithm at each dilation where that is timed
    faster on `probe_frames` frames' worth of samples (`convolution_ms`: the timings)."""

    def __init__(self, model: WaveGlow, dtype: torch.dtype = torch.float32, winograd: bool = False,
                 probe_frames: int = 32) -> None:
        if winograd and dtype != torch.float32:
            raise ValueError(f"Winograd's convolutions are float32 only, not {dtype}")
        self.model = model
        self.dtype = dtype  # of the coupling networks
        self.gate = sigmoid_gate if sigmoid_gated(dtype) else gated_activation
        # the activations' dtype: int8 products take and give float32
        self.activation_dtype = torch.float32 if dtype == torch.qint8 else dtype
        with torch.no_grad():
            self.flows = []
            for wn, inv in zip(model.WN, model.convinv):
                tanh_rows = wn.n_channels if sigmoid_gated(dtype) else 0
                self.flows.append(FastWN(
                    start=_prepared(wn.start, dtype),
                    in_layers=[_prepared(c, dtype, tanh_rows) for c in wn.in_layers],
                    res_skip_layers=[_prepared(c, dtype) for c in wn.res_skip_layers],
                    cond_layers=[_prepared(c, dtype, tanh_rows) for c in wn.cond_layers],
                    end=_prepared(wn.end, dtype),
                    W_inverse=inv.inverse_weight().detach().clone()))
            # (n_mel * stride, n * n_mel) float32, n = kernel / stride: the upsampling transposed convolution as
            # one matrix product over n shifted copies of the mel; None where the kernel does not allow it
            W = product_weight(model.upsample)
            self.upsample_W = None if W is None else W.detach().float().contiguous()
            self.upsample_b = None if W is None else model.upsample.bias.detach().clone()
        self.convolution_ms: Dict[str, float] = {}
        if winograd:
            self.convolution_ms = self._adopt_winograd(probe_frames * model.upsample.stride[0] // model.n_group)
        self._versions = ParameterVersions(model)

    @torch.no_grad()
    def _adopt_winograd(self, n_groups: int) -> Dict[str, float]:
        """Each flow's in_layers as WinogradConv at the dilations where it is timed faster on (1, C, 1, n_groups)
        rows (every flow has the same shapes: each dilation is timed once); the summed milliseconds of one flow's
        in_layers, direct and with the faster of each."""
        choice = WinogradChoice()
        generator = torch.Generator().manual_seed(0)
        for flow in self.flows:
            for i, layer in enumerate(flow.in_layers):
                # (the lambdas run inside choose, before the loop moves on)
                winograd = choice.choose(
                    layer.dilation, lambda x: _conv(layer, x),
                    lambda: WinogradConv(layer.weight[:, :, 0], layer.bias, layer.padding, layer.dilation),
                    lambda: CHANNELS_LAST.enter(torch.randn(1, layer.weight.size(1), n_groups, generator=generator)
                                                .to(layer.weight.device)))
                if winograd is not None:
                    flow.in_layers[i] = winograd
        return {"direct": 1e3 * sum(s["direct"] for s in choice.seconds.values()),
                "winograd where faster": 1e3 * sum(min(s.values()) for s in choice.seconds.values())}

    @property
    def name(self) -> str:
        return dtype_name(self.dtype)

    def coupling(self, k: int, audio_0: torch.Tensor, spect: torch.Tensor) -> torch.Tensor:
        """WN[k] on the prepared weights (waveglow.model.wavenet, as the model's WN.forward computes it).

        Args:
            audio_0: (B, n_half, L/G).
            spect: (B, n_mel * G, 1, L/G) channels-last, in the prepared dtype (cpu_layout.CHANNELS_LAST.enter).
        Returns:
            float32 (B, 2 n_half, L/G).
        """
        output = wavenet(CHANNELS_LAST.enter(audio_0, self.activation_dtype), spect, self.flows[k], _conv, self.gate,
                         self.model.WN[k].n_channels)
        return output[:, :, 0].float()  # (B, 2 n_half, 1, L/G) -> (B, 2 n_half, L/G)

    def grouped_channels_last(self, spect: torch.Tensor) -> torch.Tensor:
        """(B, n_mel, F) -> (B, n_mel * G, 1, L/G) channels-last in the coupling dtype: the model's
        upsampling and grouping, with the one layout change here rather than in every conditioning conv."""
        m = self.model
        if self.upsample_W is not None:
            upsampled = upsample_as_product(spect.float(), self.upsample_W, self.upsample_b, m.upsample.stride[0])
        else:
            upsampled = m.upsample(spect)
        return CHANNELS_LAST.enter(m.group(upsampled), self.activation_dtype)

    @torch.no_grad()
    def infer(self, spect: torch.Tensor, sigma: float = 1.0,
              noise: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        """`WaveGlow.infer` on the prepared weights: (B, n_mel, F) -> float32 (B, L)."""
        self._versions.check("FastWaveGlow")
        spect_cl = self.grouped_channels_last(spect)
        B, _, _, n_groups = spect_cl.shape
        return self.model.invert(lambda k, audio_0: self.coupling(k, audio_0, spect_cl), B, n_groups, spect_cl.device,
                                 torch.float32, sigma, noise, [f.W_inverse for f in self.flows])

    def infer_chunks(self, spect: torch.Tensor, sigma: float = 1.0, chunk_frames: int = 64, overlap_frames: int = 16,
                     noise: Optional[Sequence[torch.Tensor]] = None) -> Iterator[torch.Tensor]:
        """`WaveGlow.infer_chunks` on the prepared weights."""
        return self.model.infer_chunks(spect, sigma, chunk_frames, overlap_frames, noise, infer=self.infer)


WaveGlowEngine = Union[WaveGlow, FastWaveGlow]  # both have infer(spect, sigma, noise) and infer_chunks


@torch.no_grad()
def tune_waveglow(model: WaveGlow, dtypes: Sequence[Optional[torch.dtype]], frames: int = 12
                  ) -> Tuple[WaveGlowEngine, Dict[str, float]]:
    """The fastest of the plain model (None in `dtypes`) and FastWaveGlow snapshots in the other dtypes on this
    machine, and each candidate's seconds, keyed by dtype name or "plain".

    Times the coupling network of the flow that `infer` runs first on random inputs of `frames` mel frames
    (the other flows have the same shapes). Which wins depends on the processor (common/timing.py).
    """
    device = model.upsample.weight.device
    k = model.n_flows - 1
    n_groups = frames * model.upsample.stride[0] // model.n_group
    generator = torch.Generator().manual_seed(0)
    audio_0 = torch.randn(1, model.n_remaining_channels // 2, n_groups, generator=generator).to(device)
    spect = torch.randn(1, model.upsample.in_channels * model.n_group, n_groups, generator=generator).to(device)
    candidates: Dict[str, WaveGlowEngine] = {}
    runners: Dict[str, Callable[[], object]] = {}
    for dtype in dtypes:
        if dtype is None:
            candidates["plain"] = model
            runners["plain"] = lambda: model.WN[k]((audio_0, spect))
        else:
            engine = FastWaveGlow(model, dtype, winograd=dtype == torch.float32 and device.type == "cpu")
            spect_cl = CHANNELS_LAST.enter(spect, engine.activation_dtype)
            candidates[engine.name] = engine
            runners[engine.name] = lambda engine=engine, spect_cl=spect_cl: engine.coupling(k, audio_0, spect_cl)
    best, seconds = fastest(runners, device)
    return candidates[best], seconds
