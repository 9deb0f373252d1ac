"""Fast WaveGlow inference: weight norm folded, each flow's 1x1 inverse computed once, the coupling
networks' weights cast to one dtype and laid out for oneDNN, beside the plain model.

`FastWaveGlow(model, dtype)` is a snapshot of a WaveGlow's weights prepared for inference; its
`infer` and `infer_chunks` take the model's arguments and give the model's audio (float32 within
rounding; bfloat16 coupling networks within ~30 dB SNR, see the README). bfloat16 doubles the
arithmetic rate on CPUs with AVX512-BF16; the inverse 1x1 convolutions and the affine coupling stay
in float32. A snapshot refuses to run once the model's weights have changed: build a new one.
`tune_waveglow` times the plain model against prepared dtypes on this machine and keeps the fastest.
"""
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from common.timing import dtype_name, fastest
from common.utils import ParameterVersions
from waveglow.autograd import gated_activation
from waveglow.cpu_layout import CHANNELS_LAST
from waveglow.model import WaveGlow, effective_weight, wavenet
from waveglow.upsample import product_weight, upsample_as_product


class Prepared(NamedTuple):
    """One convolution's weights prepared for inference: (out, in, 1, k) in channels-last layout, cast, folded."""
    weight: torch.Tensor
    bias: torch.Tensor
    padding: int = 0
    dilation: int = 1


class FastWN(NamedTuple):
    """One flow's coupling network with weights prepared for inference, under WN's attribute names (what
    waveglow.model.wavenet reads).

    The fast path runs the 1-D convolutions as 2-D ones over (B, C, 1, L/G) channels-last activations, which
    oneDNN computes without reordering activations or weights per call (the benchmark's "WaveGlow WN ...
    inference" groups).
    """
    start: Prepared
    in_layers: List[Prepared]
    res_skip_layers: List[Prepared]
    # Per-layer conditioning: one merged (L * 2C)-channel convolution was slower in float32 (its wider
    # intermediate costs memory traffic) and no faster in bf16 (docs/performance.md).
    cond_layers: List[Prepared]
    end: Prepared
    W_inverse: torch.Tensor  # (c, c, 1) float32 inverse of the flow's 1x1 convolution


def _prepared(conv: nn.Module, dtype: torch.dtype) -> Prepared:
    """A conv1d's weights as `Prepared`, cast to dtype."""
    weight = effective_weight(conv).detach().to(dtype)[:, :, None].contiguous(memory_format=torch.channels_last)
    padding, dilation = (v[0] if isinstance(v, tuple) else v for v in (conv.padding, conv.dilation))
    return Prepared(weight, conv.bias.detach().to(dtype), padding, dilation)


def _conv(layer: Prepared, x: torch.Tensor) -> torch.Tensor:
    """One prepared convolution of (B, C_in, 1, L/G) channels-last rows (cpu_layout's, on prepared weights)."""
    return CHANNELS_LAST.conv(x, layer.weight, layer.bias, layer.padding, layer.dilation)


class FastWaveGlow:
    """`WaveGlow.infer` on prepared weights; see the module docstring."""

    def __init__(self, model: WaveGlow, dtype: torch.dtype = torch.float32) -> None:
        self.model = model
        self.dtype = dtype  # of the coupling networks
        with torch.no_grad():
            self.flows = [FastWN(start=_prepared(wn.start, dtype),
                                 in_layers=[_prepared(c, dtype) for c in wn.in_layers],
                                 res_skip_layers=[_prepared(c, dtype) for c in wn.res_skip_layers],
                                 cond_layers=[_prepared(c, dtype) for c in wn.cond_layers],
                                 end=_prepared(wn.end, dtype),
                                 W_inverse=inv.inverse_weight().detach().clone())
                          for wn, inv in zip(model.WN, model.convinv)]
            # (n_mel * stride, n * n_mel) float32, n = kernel / stride: the upsampling transposed convolution as
            # one matrix product over n shifted copies of the mel; None where the kernel does not allow it
            W = product_weight(model.upsample)
            self.upsample_W = None if W is None else W.detach().float().contiguous()
            self.upsample_b = None if W is None else model.upsample.bias.detach().clone()
        self._versions = ParameterVersions(model)

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
        output = wavenet(CHANNELS_LAST.enter(audio_0, self.dtype), spect, self.flows[k], _conv, gated_activation,
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
        return CHANNELS_LAST.enter(m.group(upsampled), self.dtype)

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
            engine = FastWaveGlow(model, dtype)
            spect_cl = CHANNELS_LAST.enter(spect, dtype)
            candidates[engine.name] = engine
            runners[engine.name] = lambda engine=engine, spect_cl=spect_cl: engine.coupling(k, audio_0, spect_cl)
    best, seconds = fastest(runners, device)
    return candidates[best], seconds
