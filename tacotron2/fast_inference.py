"""Fast greedy decoding for Tacotron 2: the decoder's weights fused and cast, beside the plain model.

`FastDecoder(model.decoder, dtype)` is a snapshot of the decoder's weights prepared for inference:
the LSTM input and recurrent matrices fused, the location convolution folded into its projection,
the mel and gate projections fused, all cast to one dtype. bfloat16 (or float16 on a GPU) halves
the weight traffic that bounds a decoder step at small batch; the LSTM states, softmax and outputs
stay in float32. Its step is the decoder's own (`Decoder.step`) with the fused parts standing in for
the LSTM cells, the attention and the projections. Use it as the decoding strategy of `Tacotron2.generate`:

    engine = FastDecoder(model.decoder, torch.bfloat16)
    out = model.generate(text, lengths, decode=engine.infer)

`StaticDecoder(engine)` (tacotron2/static_decoder.py) decodes with its step over preallocated buffers, as
CUDA graphs on a GPU.

`torch.qint8` puts the two LSTMs' matrices (~95 % of a step's weight bytes) in int8 with one scale per row,
multiplied by fbgemm's dynamically quantized product (common/cpu/linear.py), the rest in float32: a quarter of the
bytes a batch-1 step streams, at a mel error the tests and the README state.

A snapshot does not follow later weight changes: it refuses to run once any decoder parameter has
changed (an optimizer step, `load_state_dict`); build a new one. `tune_decoder` times the candidate
dtypes and matrix-product backends (common/cpu/linear.py) on this machine and keeps the fastest.
"""
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

from common.cpu import lstm
from common.cpu.linear import Int8Weight, int8_weight, linear, onednn_available
from common.timing import dtype_name, fastest
from common.utils import ParameterVersions, mask_from_lengths
from tacotron2 import greedy
from tacotron2.folded_attention import folded_attention, folded_location_weight
from tacotron2.model import Decoder, DecoderState


class FusedDecoderWeights(NamedTuple):
    """Decoder weights prepared for greedy inference, in one dtype (location and attention vector in float32;
    with int8 LSTM matrices, everything else in float32 and their biases inside the Int8Weights)."""
    att_W: Union[torch.Tensor, Int8Weight]  # (4 H_att, prenet + E + H_att)
    att_b: Optional[torch.Tensor]
    dec_W: Union[torch.Tensor, Int8Weight]  # (4 H_dec, H_att + E + H_dec)
    dec_b: Optional[torch.Tensor]
    query_W: torch.Tensor  # (A, H_att)
    loc_W: torch.Tensor  # (A, 2, K) = location_dense o location_conv
    v: torch.Tensor  # (A,)
    proj_W: torch.Tensor  # (n_mel * r + 1, H_dec + E)
    proj_b: torch.Tensor
    prenet: List[torch.Tensor]
    onednn: bool  # products through oneDNN rather than aten (common/cpu/linear.py) where it applies

    @property
    def activation_dtype(self) -> torch.dtype:
        """The dtype the products take their inputs in: the weights', float32 for int8 weights."""
        return torch.float32 if self.att_W.dtype == torch.qint8 else self.att_W.dtype


@torch.no_grad()
def fuse_weights(decoder: Decoder, dtype: torch.dtype, onednn: bool = True) -> FusedDecoderWeights:
    """Copies of the decoder's weights, fused and cast to dtype (torch.qint8: the LSTM matrices in int8)."""
    att, dec, al = decoder.attention_rnn, decoder.decoder_rnn, decoder.attention_layer
    loc = al.location_layer
    loc_W = folded_location_weight(loc.location_dense.linear_layer.weight, loc.location_conv.conv.weight)
    proj, gate = decoder.linear_projection.linear_layer, decoder.gate_layer.linear_layer
    lstms = [lstm.fused_weights(m) for m in (att, dec)]
    if dtype == torch.qint8:
        (att_W, att_b), (dec_W, dec_b) = [(int8_weight(W, b), None) for W, b in lstms]
    else:
        (att_W, att_b), (dec_W, dec_b) = [(W.to(dtype), b.to(dtype)) for W, b in lstms]
    rest = torch.float32 if dtype == torch.qint8 else dtype  # int8 is for the LSTM matrices only
    return FusedDecoderWeights(
        att_W=att_W, att_b=att_b, dec_W=dec_W, dec_b=dec_b,
        query_W=al.query_layer.linear_layer.weight.to(rest), loc_W=loc_W.float(), v=al.v.linear_layer.weight[0].float(),
        proj_W=torch.cat([proj.weight, gate.weight]).to(rest), proj_b=torch.cat([proj.bias, gate.bias]).to(rest),
        prenet=[layer.linear_layer.weight.to(rest).contiguous() for layer in decoder.prenet.layers], onednn=onednn)


class FastDecoder:
    """`Decoder.infer` on fused weights; see the module docstring."""

    def __init__(self, decoder: Decoder, dtype: torch.dtype = torch.float32, onednn: bool = True,
                 weights: Optional[FusedDecoderWeights] = None) -> None:
        self.decoder = decoder  # its step, settings (stop rule, prenet dropout) and memory projection
        self.weights = weights if weights is not None else fuse_weights(decoder, dtype, onednn)
        self._versions = ParameterVersions(decoder)
        f = self.weights
        self.cells = (lambda x, state: self._cell(x, state, f.att_W, f.att_b),
                      lambda x, state: self._cell(x, state, f.dec_W, f.dec_b))
        self._prenet_layers = [lambda x, W=W: linear(x, W, onednn=f.onednn) for W in f.prenet]

    @property
    def name(self) -> str:
        """"bfloat16/onednn", ...: the dtype and product backend, as `tune_decoder` names candidates."""
        return f"{dtype_name(self.weights.att_W.dtype)}/{'onednn' if self.weights.onednn else 'aten'}"

    def check_weights(self) -> None:
        """Refuse to run once any decoder parameter has changed since the snapshot."""
        self._versions.check("FastDecoder")

    def prenet(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_mel * r) -> (B, prenet_dim) in the weights' dtype: the decoder's prenet on the cast weights."""
        return self.decoder.prenet(x.to(self.weights.prenet[0].dtype), self._prenet_layers)

    def _cell(self, x: torch.Tensor, state: Tuple[torch.Tensor, torch.Tensor], W: Union[torch.Tensor, Int8Weight],
              b: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """nn.LSTMCell's step (x (B, in), (h, c)) -> (h, c) on a fused matrix; the state in float32."""
        h, c = state
        dt = self.weights.activation_dtype
        gates = linear(torch.cat((x.to(dt), h.to(dt)), 1), W, b, self.weights.onednn)  # (B, 4H)
        return lstm.update(gates.float(), c)

    def _attention(self, query: torch.Tensor, memory: torch.Tensor, processed_memory_t: torch.Tensor,
                   weights_cat: torch.Tensor, pad_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Attention.forward with the location convolution folded into its projection and the memory projection
        as (B, A, T_in): context (B, E), weights (B, T_in)."""
        f = self.weights
        query = linear(query.to(f.activation_dtype), f.query_W, onednn=f.onednn).float()  # (B, A)
        context, weights, _ = folded_attention(query, memory, processed_memory_t, weights_cat, pad_mask, f.loc_W, f.v)
        return context, weights

    def _project(self, hidden_context: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decoder.project as one product: frames (B, n_mel * r), gate logit (B, 1), in float32."""
        f = self.weights
        out = linear(hidden_context.to(f.activation_dtype), f.proj_W, f.proj_b, f.onednn).float()
        return out[:, :-1], out[:, -1:]

    def step(self, prenet_out: torch.Tensor, state: DecoderState, memory: torch.Tensor,
             processed_memory_t: torch.Tensor, pad_mask: torch.Tensor
             ) -> Tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """`Decoder.step` with the fused parts (processed_memory_t (B, A, T_in)); frames (B, n_mel * r), gate logit
        (B, 1), the new state."""
        return self.decoder.step(prenet_out, state, memory, processed_memory_t, pad_mask, self.cells,
                                 self._attention, self._project)

    def processed_memory_t(self, memory: torch.Tensor) -> torch.Tensor:
        """(B, T_in, E) -> (B, A, T_in): the attention's memory projection, once per batch, as `step` reads it."""
        return self.decoder.attention_layer.memory_layer(memory).transpose(1, 2).contiguous()

    @torch.no_grad()
    def infer(self, memory: torch.Tensor, memory_lengths: torch.Tensor) -> greedy.DecoderOutput:
        """Greedy decoding of memory (B, T_in, E) with the decoder's stop rule; equals `Decoder.infer`."""
        self.check_weights()
        dec = self.decoder
        memory = memory.float()
        pad_mask = ~mask_from_lengths(memory_lengths.to(memory.device), memory.size(1))
        return greedy.decode(self.prenet, self.step, dec.initial_state(memory), memory,
                             self.processed_memory_t(memory), pad_mask, dec.n_mel_channels, dec.n_frames_per_step,
                             dec.stop_rule())


@torch.no_grad()
def tune_decoder(decoder: Decoder, batch_size: int, dtypes: Sequence[torch.dtype], text_length: int = 128,
                 steps: int = 10) -> Tuple[FastDecoder, Dict[str, float]]:
    """The fastest FastDecoder among `dtypes` x {aten, oneDNN} products on this machine, and every
    candidate's seconds per step (keyed like "bfloat16/onednn").

    Each candidate decodes `steps` steps on random memory of (batch_size, text_length). Not static: on a
    CPU the plain loop over fused weights is the faster (see static_decoder.py).
    """
    device = decoder.linear_projection.linear_layer.weight.device
    E = decoder.attention_layer.memory_layer.linear_layer.in_features
    memory = torch.randn(batch_size, text_length, E, generator=torch.Generator().manual_seed(0)).to(device)
    pad_mask = torch.zeros(batch_size, text_length, dtype=torch.bool, device=device)
    frame = memory.new_zeros(batch_size, decoder.n_mel_channels * decoder.n_frames_per_step)
    candidates: Dict[str, FastDecoder] = {}
    for dtype in dtypes:
        weights = fuse_weights(decoder, dtype)
        float_dtype = torch.float32 if dtype == torch.qint8 else dtype  # int8: the float products' backend
        for onednn in [False, True] if device.type == "cpu" and onednn_available(float_dtype) else [False]:
            engine = FastDecoder(decoder, weights=weights._replace(onednn=onednn))
            candidates[engine.name] = engine
    processed_t = next(iter(candidates.values())).processed_memory_t(memory)

    def runner(engine: FastDecoder) -> Callable[[], None]:
        def run() -> None:
            state = decoder.initial_state(memory)
            for _ in range(steps):
                _, _, state = engine.step(engine.prenet(frame), state, memory, processed_t, pad_mask)
        return run
    best, seconds = fastest({name: runner(engine) for name, engine in candidates.items()}, device)
    return candidates[best], {name: s / steps for name, s in seconds.items()}

