"""WaveGlow: a normalising flow from Gaussian noise to audio, conditioned on mel spectrograms.

Attribute names follow the published checkpoints (`upsample`, `WN.{k}.in_layers.{i}.weight_g`,
`convinv.{k}.conv.weight`, ...). Shapes: B batch, n_mel mel channels, F mel frames,
L samples, G = n_group, L / G groups.
"""
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from waveglow import cpu_layout
from waveglow.autograd import gated_activation
from waveglow.cpu_layout import PLAIN, Layout
from waveglow.upsample import upsample

UPSAMPLE_STRIDE = 256  # audio samples per mel frame: the published models' mel hop, fixed in their upsampler


class WeightNormConv1d(nn.Module):
    """Conv1d with classic weight normalisation, w = g * v / ||v|| (norm over all but dim 0).

    The parameters are named `bias`, `weight_g`, `weight_v` (in that order), which is how
    `torch.nn.utils.weight_norm` saved them in the published checkpoints. We keep our own
    module rather than torch's parametrization so that the saved keys stay those names on
    every torch version (torch 2.x's parametrized weight norm saves
    `parametrizations.weight.original0/1`); this is the one place that decides the format.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1,
                 padding: int = 0) -> None:
        super().__init__()
        init = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, padding=padding)
        self.dilation = dilation
        self.padding = padding
        self.bias = nn.Parameter(init.bias.detach().clone())
        self.weight_g = nn.Parameter(init.weight.detach().norm(dim=(1, 2), keepdim=True))
        self.weight_v = nn.Parameter(init.weight.detach().clone())

    def weight(self) -> torch.Tensor:
        """The effective (out, in, k) kernel.

        torch's fused kernel, forward and backward, as torch.nn.utils.weight_norm calls it: the reference's numbers,
        and fewer passes over the weights than the formula spelt out in autograd ops (the benchmark's "WaveGlow WN
        256 training" group; docs/performance.md).
        """
        return torch._weight_norm(self.weight_v, self.weight_g, 0)

    def forward(self, x: torch.Tensor, layout: Layout = PLAIN) -> torch.Tensor:
        return layout.conv(x, self.weight(), self.bias, self.padding, self.dilation)

    def fold(self) -> "LayoutConv1d":
        """A plain convolution with the effective weight (keys `bias`, `weight`, as after remove_weight_norm)."""
        out_ch, in_ch, k = self.weight_v.shape
        conv = LayoutConv1d(in_ch, out_ch, k, dilation=self.dilation, padding=self.padding)
        del conv.weight  # re-registered below so the key order is bias, weight
        conv.bias = nn.Parameter(self.bias.detach().clone())
        conv.weight = nn.Parameter(self.weight().detach().clone())
        return conv


class Invertible1x1Conv(nn.Module):
    """Invertible 1x1 convolution over the group channels, initialised orthonormal with det +1."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c, c, kernel_size=1, bias=False)
        # drawn on the CPU so that models built on the meta device (shape checks) work too
        W = torch.linalg.qr(torch.randn(c, c, device="cpu"))[0]
        if torch.det(W) < 0:
            W[:, 0] = -W[:, 0]
        with torch.no_grad():
            self.conv.weight.copy_(W.view(c, c, 1))
        self._inverse: Optional[Tuple[tuple, torch.Tensor]] = None  # (the weight it was computed from, W^-1)

    def forward(self, z: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, c, L/G) -> (W z, log|det W| * B * L/G), the log-determinant in float32."""
        batch_size, _, n_of_groups = z.shape
        W = self.conv.weight.squeeze(2).float()
        log_det_W = batch_size * n_of_groups * torch.linalg.slogdet(W)[1]
        return self.conv(z), log_det_W

    def inverse_weight(self) -> torch.Tensor:
        """W^-1 as a (c, c, 1) kernel, in float32, of the current weights.

        Kept while the weight is unchanged (same storage, dtype and version counter: an optimizer step,
        `load_state_dict` or `.half()` all change one of them), so inference does not invert the matrix
        on every call, which is a host-device sync on CUDA.
        """
        w = self.conv.weight
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        if self._inverse is None or self._inverse[0] != key:
            with torch.no_grad():
                self._inverse = (key, w.detach().squeeze(2).float().inverse().unsqueeze(2))
        return self._inverse[1]

    def infer(self, z: torch.Tensor, W_inverse: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Inverse pass, (B, c, L/G) -> (B, c, L/G)."""
        if W_inverse is None:
            W_inverse = self.inverse_weight()
        return F.conv1d(z, W_inverse.to(z.dtype))


class LayoutConv1d(nn.Conv1d):
    """nn.Conv1d that computes in a coupling network's layout (waveglow/cpu_layout.py): WN's end layer, and every
    WeightNormConv1d once folded."""

    def forward(self, x: torch.Tensor, layout: Layout = PLAIN) -> torch.Tensor:
        return layout.conv(x, self.weight, self.bias, self.padding[0], self.dilation[0])


def effective_weight(layer: nn.Module) -> torch.Tensor:
    """The (out, in, k) kernel of a WeightNormConv1d, or of the LayoutConv1d it folds into."""
    return layer.weight() if isinstance(layer, WeightNormConv1d) else layer.weight


fused_add_tanh_sigmoid_multiply = gated_activation  # the gate, (B, 2n, ...) -> (B, n, ...), by NVIDIA's name


def wavenet(audio: torch.Tensor, spect: torch.Tensor, layers: Any, conv: Callable[[Any, torch.Tensor], torch.Tensor],
            gate: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor], n_channels: int) -> torch.Tensor:
    """WN's computation, written once for the model (`WN.forward`: its modules) and the inference engine
    (waveglow/fast_inference.py: prepared weights; held equal by tests/test_fast_paths.py::
    test_fast_waveglow_equals_plain, and the CPU layout to conv1d by test_wn_in_channels_last_rows_equals_conv1d).

    Args:
        audio: (B, n_in, ...L/G) in the layout `conv` computes in; spect: (B, n_mel * G, ...L/G) likewise.
        layers: anything with WN's `start`, `in_layers`, `cond_layers`, `res_skip_layers`, `end`.
        conv: conv(layer, x) applies one of `layers`' convolutions; gate: fused_add_tanh_sigmoid_multiply's arguments.
    Returns:
        (B, 2 * n_in, ...L/G): the shift b, then log s.
    """
    audio = conv(layers.start, audio)  # (B, C, ...)
    n_layers = len(layers.in_layers)
    output = None
    for i in range(n_layers):
        acts = gate(conv(layers.in_layers[i], audio), conv(layers.cond_layers[i], spect), n_channels)
        res_skip = conv(layers.res_skip_layers[i], acts)  # (B, 2C, ...), the last layer's (B, C, ...)
        if i < n_layers - 1:
            res, skip = res_skip.split(n_channels, dim=1)
            audio = audio + res
        else:
            skip = res_skip  # the last layer only feeds the skip path
        output = skip if output is None else output + skip
    return conv(layers.end, output)


class WN(nn.Module):
    """WaveNet-like coupling network: dilated convolutions gated by the mel conditioning."""

    def __init__(self, n_in_channels: int, n_mel_channels: int, n_layers: int, n_channels: int,
                 kernel_size: int) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WN kernel_size must be odd, got {kernel_size}")
        if n_channels % 2 != 0:
            raise ValueError(f"WN n_channels must be even, got {n_channels}")
        self.n_layers = n_layers
        self.n_channels = n_channels
        self.winograd: Optional[bool] = None  # float32 CPU training by Winograd's algorithm; None: by CPU kind
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.cond_layers = nn.ModuleList()
        for i in range(n_layers):
            dilation = 2 ** i
            padding = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(WeightNormConv1d(n_channels, 2 * n_channels, kernel_size, dilation, padding))
            # the last layer only feeds the skip path
            res_skip_channels = 2 * n_channels if i < n_layers - 1 else n_channels
            self.res_skip_layers.append(WeightNormConv1d(n_channels, res_skip_channels))
            self.cond_layers.append(WeightNormConv1d(n_mel_channels, 2 * n_channels))
        self.start = WeightNormConv1d(n_in_channels, n_channels)
        # A zero end layer makes every coupling the identity at the start of training.
        self.end = LayoutConv1d(n_channels, 2 * n_in_channels, 1)
        self.end.weight.data.zero_()
        self.end.bias.data.zero_()

    def forward(self, forward_input: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(audio (B, n_in, L/G), spect (B, n_mel * G, L/G)) -> (B, 2 * n_in, L/G): shift b, then log s."""
        audio, spect = forward_input
        layout = cpu_layout.choose(audio, self)
        output = wavenet(layout.enter(audio), layout.enter(spect), self, lambda layer, x: layer(x, layout),
                         layout.gate, self.n_channels)
        return layout.leave(output)


def _fold_weightnorm(module: nn.Module) -> None:
    """Replace every WeightNormConv1d below `module` by its folded plain Conv1d, in place."""
    for name, child in module.named_children():
        if isinstance(child, WeightNormConv1d):
            setattr(module, name, child.fold())
        else:
            _fold_weightnorm(child)


class WaveGlow(nn.Module):
    """WaveGlow, built from the reference's constructor arguments (published `config` dicts)."""

    def __init__(self, n_mel_channels: int = 80, n_flows: int = 12, n_group: int = 8, n_early_every: int = 4,
                 n_early_size: int = 2, WN_config: Optional[Dict[str, int]] = None) -> None:
        super().__init__()
        if WN_config is None:
            WN_config = {"n_layers": 8, "kernel_size": 3, "n_channels": 512}
        if n_group % 2 != 0:
            raise ValueError(f"n_group must be even, got {n_group}")
        self.upsample = nn.ConvTranspose1d(n_mel_channels, n_mel_channels, 4 * UPSAMPLE_STRIDE, stride=UPSAMPLE_STRIDE)
        self.n_flows = n_flows
        self.n_group = n_group
        self.n_early_every = n_early_every
        self.n_early_size = n_early_size
        self.WN = nn.ModuleList()
        self.convinv = nn.ModuleList()
        n_half = n_group // 2
        n_remaining_channels = n_group
        for k in range(n_flows):
            if self._outputs_early(k):
                n_half -= n_early_size // 2
                n_remaining_channels -= n_early_size
            self.convinv.append(Invertible1x1Conv(n_remaining_channels))
            self.WN.append(WN(n_half, n_mel_channels * n_group, **WN_config))
        self.n_remaining_channels = n_remaining_channels

    def _outputs_early(self, k: int) -> bool:
        return k > 0 and k % self.n_early_every == 0

    def upsample_and_group(self, spect: torch.Tensor, n_samples: Optional[int] = None) -> torch.Tensor:
        """(B, n_mel, F) -> (B, n_mel * G, L/G), channel = mel_channel * G + offset.

        L is n_samples (forward) or the upsampled length minus the transposed conv's tail (infer).
        """
        return self.group(upsample(spect, self.upsample), n_samples)  # upsampled: (B, n_mel, (F - 1) * 256 + 1024)

    def group(self, spect: torch.Tensor, n_samples: Optional[int] = None) -> torch.Tensor:
        """Upsampled mel (B, n_mel, L') -> (B, n_mel * G, L/G), cut to n_samples (None: less the upsampler's tail)."""
        if n_samples is None:
            cutoff = self.upsample.kernel_size[0] - self.upsample.stride[0]
            spect = spect[:, :, :-cutoff]
        else:
            if spect.size(2) < n_samples:
                raise ValueError(f"mel of {spect.size(2)} upsampled samples is shorter than audio of {n_samples}")
            spect = spect[:, :, :n_samples]
        n_groups = spect.size(2) // self.n_group
        spect = spect[:, :, :n_groups * self.n_group]
        B, n_mel, _ = spect.shape
        # (B, n_mel, L) -> (B, n_mel, L/G, G) -> (B, L/G, n_mel, G) -> (B, L/G, n_mel * G) -> (B, n_mel * G, L/G)
        spect = spect.view(B, n_mel, n_groups, self.n_group).permute(0, 2, 1, 3)
        return spect.reshape(B, n_groups, n_mel * self.n_group).transpose(1, 2)

    def forward(self, forward_input: Tuple[torch.Tensor, torch.Tensor]
                ) -> Tuple[torch.Tensor, List[torch.Tensor], List[torch.Tensor]]:
        """Audio -> latent.

        Args:
            forward_input: (spect (B, n_mel, F), audio (B, L)), L a multiple of G.
        Returns:
            z (B, G, L/G), log_s per flow (B, c_k / 2, L/G), log|det W| per flow (scalars).
        """
        spect, audio = forward_input
        if audio.size(1) % self.n_group:
            raise ValueError(f"audio length {audio.size(1)} is not a multiple of n_group={self.n_group}")
        spect = self.upsample_and_group(spect, audio.size(1))
        # (B, L) -> (B, L/G, G) -> (B, G, L/G)
        audio = audio.view(audio.size(0), -1, self.n_group).transpose(1, 2)
        output_audio, log_s_list, log_det_W_list = [], [], []
        for k in range(self.n_flows):
            if self._outputs_early(k):
                output_audio.append(audio[:, :self.n_early_size])
                audio = audio[:, self.n_early_size:]
            audio, log_det_W = self.convinv[k](audio)
            log_det_W_list.append(log_det_W)
            n_half = audio.size(1) // 2
            audio_0, audio_1 = audio[:, :n_half], audio[:, n_half:]
            output = self.WN[k]((audio_0, spect))
            b, log_s = output[:, :n_half], output[:, n_half:]
            audio_1 = torch.exp(log_s) * audio_1 + b
            log_s_list.append(log_s)
            audio = torch.cat([audio_0, audio_1], 1)
        output_audio.append(audio)
        return torch.cat(output_audio, 1), log_s_list, log_det_W_list

    def noise_shapes(self, batch: int, n_groups: int) -> List[Tuple[int, int, int]]:
        """Shapes of the Gaussian draws `infer` makes, in draw order."""
        shapes = [(batch, self.n_remaining_channels, n_groups)]
        shapes += [(batch, self.n_early_size, n_groups) for k in reversed(range(self.n_flows)) if self._outputs_early(k)]
        return shapes

    def infer(self, spect: torch.Tensor, sigma: float = 1.0, noise: Optional[Sequence[torch.Tensor]] = None,
              W_inverses: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        """Latent -> audio.

        Args:
            spect: (B, n_mel, F) mel spectrogram.
            sigma: standard deviation of the latent.
            noise: unit Gaussian tensors of `noise_shapes(...)`, in draw order; drawn with
                torch.randn in the reference's order and shapes when None.
            W_inverses: precomputed inverse 1x1 kernels per flow; computed when None.
        Returns:
            (B, L) audio with L = (F - 1) * 256 + 256 (for the default upsampler).
        """
        spect = self.upsample_and_group(spect)  # (B, n_mel * G, L/G)
        B, _, n_groups = spect.shape
        return self.invert(lambda k, audio_0: self.WN[k]((audio_0, spect)), B, n_groups, spect.device, spect.dtype,
                           sigma, noise, W_inverses)

    def invert(self, coupling: Callable[[int, torch.Tensor], torch.Tensor], batch: int, n_groups: int,
               device: torch.device, dtype: torch.dtype, sigma: float = 1.0,
               noise: Optional[Sequence[torch.Tensor]] = None,
               W_inverses: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        """The flows run backwards, from a latent (batch, G, n_groups) of `dtype` to audio (batch, n_groups * G).

        coupling(k, audio_0 (B, n_half, L/G)) -> (B, 2 n_half, L/G) is flow k's WN on the grouped mel;
        `infer` passes the WN modules, waveglow/fast_inference.py its prepared weights.
        """
        draws: Iterator[torch.Tensor]
        if noise is None:
            draws = (torch.randn(shape, device=device) for shape in self.noise_shapes(batch, n_groups))
        else:
            draws = iter(noise)
        audio = sigma * next(draws).to(device, dtype)
        for k in reversed(range(self.n_flows)):
            n_half = audio.size(1) // 2
            audio_0, audio_1 = audio[:, :n_half], audio[:, n_half:]
            output = coupling(k, audio_0)
            b, s = output[:, :n_half], output[:, n_half:]
            audio_1 = (audio_1 - b) / torch.exp(s)
            audio = torch.cat([audio_0, audio_1], 1)
            audio = self.convinv[k].infer(audio, None if W_inverses is None else W_inverses[k])
            if self._outputs_early(k):
                z = next(draws).to(device, dtype)
                audio = torch.cat((sigma * z, audio), 1)
        # (B, G, L/G) -> (B, L/G, G) -> (B, L)
        return audio.transpose(1, 2).reshape(batch, -1)

    def infer_chunks(self, spect: torch.Tensor, sigma: float = 1.0, chunk_frames: int = 64, overlap_frames: int = 16,
                     noise: Optional[Sequence[torch.Tensor]] = None,
                     infer: Optional[Callable[..., torch.Tensor]] = None) -> Iterator[torch.Tensor]:
        """Streaming synthesis: yields consecutive audio pieces of chunk_frames * 256 samples.

        Each piece is synthesised from its mel frames plus `overlap_frames` of context on each side,
        with the same latent noise that one-shot `infer` would use for those samples, so the
        concatenated pieces equal `infer` away from the seams and differ little at them (the
        coupling networks' receptive field reaches past the context). Memory is bounded by the
        chunk, and the first piece is ready after one chunk. infer: `self.infer` or an engine's (same arguments).
        """
        infer = infer or self.infer
        B, _, n_frames = spect.shape
        gpf = self.upsample.stride[0] // self.n_group  # latent groups per mel frame
        if noise is None:
            noise = [torch.randn(shape, device=spect.device) for shape in self.noise_shapes(B, n_frames * gpf)]
        for start in range(0, n_frames, chunk_frames):
            stop = min(start + chunk_frames, n_frames)
            lo, hi = max(0, start - overlap_frames), min(n_frames, stop + overlap_frames)
            piece = infer(spect[:, :, lo:hi], sigma, noise=[z[:, :, lo * gpf:hi * gpf] for z in noise])
            hop = self.upsample.stride[0]
            yield piece[:, (start - lo) * hop:(stop - lo) * hop]

    def remove_weightnorm(self, model: Optional["WaveGlow"] = None) -> "WaveGlow":
        """Fold every weight-normalised convolution into a plain one (outputs unchanged); returns the model.
        `waveglow.remove_weightnorm(waveglow)`, the static method's call in NVIDIA's code and hub examples, works
        too."""
        if model is not None and model is not self:
            raise ValueError("remove_weightnorm(model) folds the model it is called on: pass that model or nothing")
        _fold_weightnorm(self)
        return self
