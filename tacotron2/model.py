"""Tacotron 2: text -> mel spectrogram, with location-sensitive attention.

Attribute names follow the published checkpoints' state-dict keys exactly
(`encoder.convolutions.0.0.conv.weight`, `decoder.attention_layer.query_layer.linear_layer.weight`, ...).
Shapes: B batch, T_in text length, T_out mel frames, n_mel mel channels, r frames per decoder step.
"""
import contextlib
import math
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from common.layers import ConvNorm, LinearNorm
from common.cpu.dropout import dropout
from common.cpu.recurrent_grad import sequence_cells
from common.utils import mask_from_lengths
from tacotron2 import greedy, teacher_forcing
from tacotron2.greedy import DecoderOutput


# Stand-ins an engine may give a decoder step for its parts, each computing the same function:
# (x (B, in), (h, c) (B, H) each) -> new (h, c): nn.LSTMCell
LSTMStep = Callable[[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]], Tuple[torch.Tensor, torch.Tensor]]
# Attention.forward's arguments and results (processed_memory in the engine's own layout)
AttentionStep = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
                         Tuple[torch.Tensor, torch.Tensor]]
# Decoder.project's
Projection = Callable[[torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


class LocationLayer(nn.Module):
    """Convolution over [previous; cumulative] attention weights, projected to attention_dim."""

    def __init__(self, attention_n_filters: int, attention_kernel_size: int, attention_dim: int) -> None:
        super().__init__()
        self.location_conv = ConvNorm(2, attention_n_filters, kernel_size=attention_kernel_size, bias=False)
        self.location_dense = LinearNorm(attention_n_filters, attention_dim, bias=False, w_init_gain="tanh")

    def forward(self, attention_weights_cat: torch.Tensor) -> torch.Tensor:
        """(B, 2, T_in) -> (B, T_in, attention_dim)."""
        processed = self.location_conv(attention_weights_cat)  # (B, n_filters, T_in)
        return self.location_dense(processed.transpose(1, 2))  # (B, T_in, n_filters) -> (B, T_in, attention_dim)


class Attention(nn.Module):
    """Location-sensitive additive attention."""

    def __init__(self, attention_rnn_dim: int, embedding_dim: int, attention_dim: int,
                 attention_location_n_filters: int, attention_location_kernel_size: int) -> None:
        super().__init__()
        self.query_layer = LinearNorm(attention_rnn_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.memory_layer = LinearNorm(embedding_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.v = LinearNorm(attention_dim, 1, bias=False)
        self.location_layer = LocationLayer(attention_location_n_filters, attention_location_kernel_size,
                                            attention_dim)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, processed_memory: torch.Tensor,
                attention_weights_cat: torch.Tensor, pad_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One attention step.

        Args:
            query: (B, attention_rnn_dim) attention LSTM output.
            memory: (B, T_in, embedding_dim) encoder outputs.
            processed_memory: (B, T_in, attention_dim) = memory_layer(memory), computed once per utterance.
            attention_weights_cat: (B, 2, T_in) previous and cumulative weights.
            pad_mask: (B, T_in) True at padded text positions.
        Returns:
            context (B, embedding_dim), weights (B, T_in).
        """
        processed_query = self.query_layer(query.unsqueeze(1))  # (B, 1, attention_dim)
        processed_location = self.location_layer(attention_weights_cat)  # (B, T_in, attention_dim)
        energies = self.v(torch.tanh(processed_query + processed_location + processed_memory)).squeeze(2)
        # -inf in the energies' own dtype: finite large negatives overflow in fp16.
        energies = energies.masked_fill(pad_mask, float("-inf"))
        weights = F.softmax(energies, dim=1)  # (B, T_in)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, 1, T_in) x (B, T_in, E) -> (B, E)
        return context, weights


class Prenet(nn.Module):
    """Two ReLU linear layers with dropout 0.5.

    As in the paper the dropout stays on at inference too (it is the source of
    variation between runs); set `always_dropout = False` to make it follow
    `self.training` instead, for exact comparisons and deterministic synthesis.
    """

    def __init__(self, in_dim: int, sizes: Sequence[int], p_dropout: float = 0.5) -> None:
        super().__init__()
        in_sizes = [in_dim] + list(sizes[:-1])
        self.layers = nn.ModuleList(LinearNorm(i, o, bias=False) for i, o in zip(in_sizes, sizes))
        self.p_dropout = p_dropout
        self.always_dropout = True

    def forward(self, x: torch.Tensor,
                layers: Optional[Sequence[Callable[[torch.Tensor], torch.Tensor]]] = None) -> torch.Tensor:
        """(..., in_dim) -> (..., sizes[-1]); layers: stand-ins for `self.layers` (tacotron2/fast_inference.py)."""
        active = self.always_dropout or self.training
        for layer in layers or self.layers:
            x = dropout(F.relu(layer(x)), p=self.p_dropout, training=active)
        return x


def _conv_bn(in_dim: int, out_dim: int, kernel_size: int, gain: str) -> nn.Sequential:
    """ConvNorm at index 0, BatchNorm at index 1 (the published key layout)."""
    return nn.Sequential(ConvNorm(in_dim, out_dim, kernel_size=kernel_size, w_init_gain=gain), nn.BatchNorm1d(out_dim))


class Postnet(nn.Module):
    """Five 1-D convolutions (tanh between them) predicting a residual on the decoder's mels."""

    def __init__(self, n_mel_channels: int, postnet_embedding_dim: int, postnet_kernel_size: int,
                 postnet_n_convolutions: int) -> None:
        super().__init__()
        dims = [n_mel_channels] + [postnet_embedding_dim] * (postnet_n_convolutions - 1) + [n_mel_channels]
        gains = ["tanh"] * (postnet_n_convolutions - 1) + ["linear"]
        self.convolutions = nn.ModuleList(
            _conv_bn(dims[i], dims[i + 1], postnet_kernel_size, gains[i]) for i in range(postnet_n_convolutions))
        self.p_dropout = 0.5  # training only

    def forward(self, x: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, n_mel, T_out) -> (B, n_mel, T_out).

        valid: optional (B, 1, T_out) mask; frames outside it are zeroed before every convolution,
        so that each item is processed as if its mel ended there.
        """
        last = len(self.convolutions) - 1
        for i, conv in enumerate(self.convolutions):
            if valid is not None:
                x = x * valid
            x = conv(x)
            if i < last:
                x = torch.tanh(x)
            x = dropout(x, self.p_dropout, self.training)
        return x


class Encoder(nn.Module):
    """Three convolutions (BatchNorm, ReLU, dropout) and a bidirectional LSTM."""

    def __init__(self, encoder_n_convolutions: int, encoder_embedding_dim: int, encoder_kernel_size: int) -> None:
        super().__init__()
        self.convolutions = nn.ModuleList(
            _conv_bn(encoder_embedding_dim, encoder_embedding_dim, encoder_kernel_size, "relu")
            for _ in range(encoder_n_convolutions))
        self.lstm = nn.LSTM(encoder_embedding_dim, encoder_embedding_dim // 2, 1, batch_first=True, bidirectional=True)
        # The reference lets the convolutions see the pad symbol's embedding beyond each text's
        # end, so an item's encoding depends on how much the batch pads it. With this switch on,
        # padded positions are zeroed before every convolution: each item is encoded exactly as
        # if it were alone (what batched inference needs). Off by default, as published models were trained.
        self.mask_padding_in_convs = False
        self.p_dropout = 0.5  # training only

    def convolve(self, x: torch.Tensor, input_lengths: torch.Tensor) -> torch.Tensor:
        """(B, E, T) embedded text -> (B, T, E): the convolutions, before the LSTM."""
        valid = None
        if self.mask_padding_in_convs:
            valid = mask_from_lengths(input_lengths.to(x.device), x.size(2))[:, None, :]
        for conv in self.convolutions:
            if valid is not None:
                x = x * valid
            x = dropout(F.relu(conv(x)), self.p_dropout, self.training)
        return x.transpose(1, 2)  # (B, E, T) -> (B, T, E)

    def forward(self, x: torch.Tensor, input_lengths: torch.Tensor) -> torch.Tensor:
        """(B, E, T) embedded text -> (B, max(input_lengths), E), zeros at padded positions.

        Batches need not be sorted by length.
        """
        x = self.convolve(x, input_lengths)
        packed = nn.utils.rnn.pack_padded_sequence(x, input_lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True)
        return outputs


class DecoderState(NamedTuple):
    """Recurrent state carried from one decoder step to the next."""
    attention_hidden: torch.Tensor  # (B, attention_rnn_dim)
    attention_cell: torch.Tensor  # (B, attention_rnn_dim)
    decoder_hidden: torch.Tensor  # (B, decoder_rnn_dim)
    decoder_cell: torch.Tensor  # (B, decoder_rnn_dim)
    attention_weights: torch.Tensor  # (B, T_in)
    attention_weights_cum: torch.Tensor  # (B, T_in)
    attention_context: torch.Tensor  # (B, E)


def drop_teacher_frames(groups: torch.Tensor, p: float) -> torch.Tensor:
    """(B, steps, n_mel * r) previous-frame groups, each replaced with probability p by its utterance's mean group.

    A decoder given the true previous frame can learn to extend it and ignore the text (on a small corpus it does,
    and then hums when it runs free); one whose previous frame is sometimes uninformative has to read the text
    through the attention. Padding and the go frame (all-zero groups) are left alone.
    """
    valid = (groups != 0).any(dim=2, keepdim=True)  # (B, steps, 1)
    mean = (groups * valid).sum(dim=1, keepdim=True) / valid.sum(dim=1, keepdim=True).clamp_min(1)
    drop = (torch.rand(groups.shape[:2] + (1,), device=groups.device) < p) & valid
    return torch.where(drop, mean.to(groups.dtype), groups)


class Decoder(nn.Module):
    """Autoregressive attention decoder: r mel frames and one stop-gate logit per step."""

    def __init__(self, n_mel_channels: int, n_frames_per_step: int, encoder_embedding_dim: int,
                 attention_dim: int, attention_location_n_filters: int, attention_location_kernel_size: int,
                 attention_rnn_dim: int, decoder_rnn_dim: int, prenet_dim: int, max_decoder_steps: int,
                 gate_threshold: float, p_attention_dropout: float, p_decoder_dropout: float,
                 early_stopping: bool) -> None:
        super().__init__()
        self.n_mel_channels = n_mel_channels
        self.n_frames_per_step = n_frames_per_step
        self.max_decoder_steps = max_decoder_steps
        self.gate_threshold = gate_threshold
        self.p_attention_dropout = p_attention_dropout
        self.p_decoder_dropout = p_decoder_dropout
        self.early_stopping = early_stopping
        frame_dim = n_mel_channels * n_frames_per_step
        self.prenet = Prenet(frame_dim, [prenet_dim, prenet_dim])
        self.attention_rnn = nn.LSTMCell(prenet_dim + encoder_embedding_dim, attention_rnn_dim)
        self.attention_layer = Attention(attention_rnn_dim, encoder_embedding_dim, attention_dim,
                                         attention_location_n_filters, attention_location_kernel_size)
        self.decoder_rnn = nn.LSTMCell(attention_rnn_dim + encoder_embedding_dim, decoder_rnn_dim)
        self.linear_projection = LinearNorm(decoder_rnn_dim + encoder_embedding_dim, frame_dim)
        self.gate_layer = LinearNorm(decoder_rnn_dim + encoder_embedding_dim, 1, bias=True, w_init_gain="sigmoid")
        # teacher-forced LSTM weight gradients summed once per sequence: None on a CPU only, True/False force
        # it (common/cpu/recurrent_grad.py)
        self.deferred_weight_grads: Optional[bool] = None
        # teacher-forced training through tacotron2/teacher_forcing.py (a hand-written backward): None where it
        # applies on a CPU, True on any device, False never
        self.teacher_forcing_engine: Optional[bool] = None
        # that engine's float32 LSTM products through oneDNN (True) or MKL (False); None: by CPU kind
        self.teacher_forcing_onednn: Optional[bool] = None
        # training only: share of teacher frames replaced by the utterance's mean frame (0: the paper)
        self.p_teacher_frame_dropout = 0.0

    def initial_state(self, memory: torch.Tensor) -> DecoderState:
        """All-zero state for memory (B, T_in, E)."""
        B, T_in, E = memory.shape
        zeros = lambda *shape: memory.new_zeros(shape)  # noqa: E731
        return DecoderState(zeros(B, self.attention_rnn.hidden_size), zeros(B, self.attention_rnn.hidden_size),
                            zeros(B, self.decoder_rnn.hidden_size), zeros(B, self.decoder_rnn.hidden_size),
                            zeros(B, T_in), zeros(B, T_in), zeros(B, E))

    def recur(self, prenet_out: torch.Tensor, state: DecoderState, memory: torch.Tensor,
              processed_memory: torch.Tensor, pad_mask: torch.Tensor,
              cells: Optional[Tuple[LSTMStep, LSTMStep]] = None, attention: Optional[AttentionStep] = None
              ) -> Tuple[torch.Tensor, DecoderState]:
        """One decoder step up to the projections: the attention LSTM, attention, the decoder LSTM.

        Args:
            prenet_out: (B, prenet_dim) prenet of the previous frame group.
            cells: stand-ins for (attention_rnn, decoder_rnn) with the same math: common/cpu/recurrent_grad.py's
                DeferredLSTMCell (training), tacotron2/fast_inference.py's fused cells (inference).
            attention: a stand-in for attention_layer (tacotron2/fast_inference.py).
        Returns:
            [decoder output; context] (B, decoder_rnn_dim + E), the new state.
        """
        attention_rnn, decoder_rnn = cells or (self.attention_rnn, self.decoder_rnn)
        attention = attention or self.attention_layer
        cell_input = torch.cat((prenet_out, state.attention_context), -1)
        att_h, att_c = attention_rnn(cell_input, (state.attention_hidden, state.attention_cell))
        att_h = dropout(att_h, self.p_attention_dropout, self.training)
        weights_cat = torch.stack((state.attention_weights, state.attention_weights_cum), dim=1)  # (B, 2, T_in)
        context, weights = attention(att_h, memory, processed_memory, weights_cat, pad_mask)
        weights_cum = state.attention_weights_cum + weights
        dec_h, dec_c = decoder_rnn(torch.cat((att_h, context), -1), (state.decoder_hidden, state.decoder_cell))
        dec_h = dropout(dec_h, self.p_decoder_dropout, self.training)
        hidden_context = torch.cat((dec_h, context), dim=-1)
        return hidden_context, DecoderState(att_h, att_c, dec_h, dec_c, weights, weights_cum, context)

    def project(self, hidden_context: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(..., decoder_rnn_dim + E) -> frames (..., n_mel * r), gate logits (..., 1)."""
        return self.linear_projection(hidden_context), self.gate_layer(hidden_context)

    def step(self, prenet_out: torch.Tensor, state: DecoderState, memory: torch.Tensor,
             processed_memory: torch.Tensor, pad_mask: torch.Tensor,
             cells: Optional[Tuple[LSTMStep, LSTMStep]] = None, attention: Optional[AttentionStep] = None,
             project: Optional[Projection] = None) -> Tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """One decoder step: frames (B, n_mel * r), gate logit (B, 1), the new state (arguments as `recur`;
        project: a stand-in for `project`). Greedy decoding calls it once per step (tacotron2/greedy.py), the
        inference engine with its stand-ins (tacotron2/fast_inference.py: FastDecoder.step; held equal by
        tests/test_fast_paths.py::test_fast_decoder_equals_plain)."""
        hidden_context, state = self.recur(prenet_out, state, memory, processed_memory, pad_mask, cells, attention)
        frames, gate = (project or self.project)(hidden_context)
        return frames, gate, state

    def forward(self, memory: torch.Tensor, decoder_inputs: torch.Tensor, memory_lengths: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced decoding.

        Args:
            memory: (B, T_in, E) encoder outputs.
            decoder_inputs: (B, n_mel, T_out) target mels, T_out a multiple of r.
            memory_lengths: (B,) text lengths.
        Returns:
            mels (B, n_mel, T_out), gate logits (B, T_out / r), alignments (B, T_out / r, T_in).
        """
        B, n_mel, T_out = decoder_inputs.shape
        r = self.n_frames_per_step
        if T_out % r:
            raise ValueError(f"target length {T_out} is not a multiple of n_frames_per_step={r}")
        # (B, n_mel, T_out) -> (B, T_out, n_mel) -> (B, T_out / r, n_mel * r)
        groups = decoder_inputs.transpose(1, 2).reshape(B, T_out // r, n_mel * r)
        go = groups.new_zeros(B, 1, n_mel * r)
        prenet_in = torch.cat((go, groups[:, :-1]), dim=1)  # step t reads group t-1
        if self.training and self.p_teacher_frame_dropout > 0:
            prenet_in = drop_teacher_frames(prenet_in, self.p_teacher_frame_dropout)
        prenet_out = self.prenet(prenet_in)  # (B, steps, prenet_dim)
        pad_mask = ~mask_from_lengths(memory_lengths, memory.size(1))
        processed_memory = self.attention_layer.memory_layer(memory)
        if teacher_forcing.applies(self, memory):  # training on a CPU: the same loop, its backward by hand
            hidden_contexts, alignments = teacher_forcing.decode(self, prenet_out, memory, processed_memory, pad_mask)
        else:
            hidden_contexts, alignments = self.teacher_forced_loop(prenet_out, memory, processed_memory, pad_mask)
        # teacher-forced, no step reads its own output: the projections of all steps in one product each
        frames, gates = self.project(hidden_contexts)  # (B, steps, n_mel * r), (B, steps, 1)
        mels = greedy.frames_to_mels(frames, self.n_mel_channels)
        return mels, gates.squeeze(2), alignments

    def teacher_forced_loop(self, prenet_out: torch.Tensor, memory: torch.Tensor, processed_memory: torch.Tensor,
                            pad_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """`recur` over every step of prenet_out (B, steps, prenet_dim): [decoder output; context] per step
        (B, steps, decoder_rnn_dim + E), attention weights (B, steps, T_in). tacotron2/teacher_forcing.py computes
        the same with a hand-written backward."""
        state = self.initial_state(memory)
        # the same LSTM steps, their weight gradients summed once per sequence where that pays (a CPU)
        cells = sequence_cells((self.attention_rnn, self.decoder_rnn), memory.device, self.deferred_weight_grads)
        hidden_contexts, alignments = [], []
        for t in range(prenet_out.size(1)):
            hidden_context, state = self.recur(prenet_out[:, t], state, memory, processed_memory, pad_mask, cells)
            hidden_contexts.append(hidden_context)
            alignments.append(state.attention_weights)
        return torch.stack(hidden_contexts, dim=1), torch.stack(alignments, dim=1)

    def stop_rule(self) -> greedy.StopRule:
        return greedy.StopRule(self.max_decoder_steps, self.gate_threshold, self.early_stopping)

    @torch.no_grad()
    def infer(self, memory: torch.Tensor, memory_lengths: torch.Tensor) -> DecoderOutput:
        """Greedy decoding of memory (B, T_in, E); each item stops on its own gate (tacotron2/greedy.py).

        An item is finished for good once sigmoid(gate) > gate_threshold; its length counts
        the frames before the stop step (for r = 1, the steps before it, as in the reference).
        Decoding ends when every item has stopped (unless early stopping is off) or after
        max_decoder_steps steps, with a warning naming the items that never stopped.
        """
        pad_mask = ~mask_from_lengths(memory_lengths, memory.size(1))
        processed_memory = self.attention_layer.memory_layer(memory)
        return greedy.decode(self.prenet, self.step, self.initial_state(memory), memory, processed_memory, pad_mask,
                             self.n_mel_channels, self.n_frames_per_step, self.stop_rule())


class InferenceOutput(NamedTuple):
    """Everything greedy synthesis produced."""
    mel_outputs_postnet: torch.Tensor  # (B, n_mel, T_out)
    mel_lengths: torch.Tensor  # (B,) int32
    alignments: torch.Tensor  # (B, steps, T_in)
    mel_outputs: torch.Tensor  # (B, n_mel, T_out) before the postnet
    gate_outputs: torch.Tensor  # (B, steps)
    reached_max: torch.Tensor  # (B,) bool


class Modes(NamedTuple):
    """How a Tacotron 2 runs beyond its weights; none of it is in a checkpoint. The defaults are the paper's and
    the reference's; `Tacotron2.set_modes` sets some for good, `Tacotron2.using` for a `with` block."""
    batch_invariant: bool = False  # each item of a batch exactly as alone (Encoder, `generate`); off: the reference
    prenet_dropout: bool = True  # the prenet's dropout at inference too (the paper), or in training only
    teacher_frame_dropout: float = 0.0  # in training, teacher frames replaced by the mean (drop_teacher_frames)
    encoder_dropout: float = 0.5  # after each encoder convolution, in training (the paper)
    postnet_dropout: float = 0.5  # after each postnet convolution, in training (the paper)


class Tacotron2(nn.Module):
    """Tacotron 2, built from the reference's constructor arguments (published `config` dicts)."""

    def __init__(self, mask_padding: bool = False, n_mel_channels: int = 80, n_symbols: int = 148,
                 symbols_embedding_dim: int = 512, encoder_kernel_size: int = 5, encoder_n_convolutions: int = 3,
                 encoder_embedding_dim: int = 512, attention_rnn_dim: int = 1024, attention_dim: int = 128,
                 attention_location_n_filters: int = 32, attention_location_kernel_size: int = 31,
                 n_frames_per_step: int = 1, decoder_rnn_dim: int = 1024, prenet_dim: int = 256,
                 max_decoder_steps: int = 2000, gate_threshold: float = 0.5, p_attention_dropout: float = 0.1,
                 p_decoder_dropout: float = 0.1, postnet_embedding_dim: int = 512, postnet_kernel_size: int = 5,
                 postnet_n_convolutions: int = 5, decoder_no_early_stopping: bool = False) -> None:
        super().__init__()
        if symbols_embedding_dim != encoder_embedding_dim:
            raise ValueError(f"symbols_embedding_dim {symbols_embedding_dim} must equal "
                             f"encoder_embedding_dim {encoder_embedding_dim}")
        if n_frames_per_step < 1:
            raise ValueError(f"n_frames_per_step must be >= 1, got {n_frames_per_step}")
        self.mask_padding = mask_padding
        self.n_mel_channels = n_mel_channels
        self.n_frames_per_step = n_frames_per_step
        self.embedding = nn.Embedding(n_symbols, symbols_embedding_dim)
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (n_symbols + symbols_embedding_dim))
        self.embedding.weight.data.uniform_(-bound, bound)
        self.encoder = Encoder(encoder_n_convolutions, encoder_embedding_dim, encoder_kernel_size)
        self.decoder = Decoder(n_mel_channels, n_frames_per_step, encoder_embedding_dim, attention_dim,
                               attention_location_n_filters, attention_location_kernel_size, attention_rnn_dim,
                               decoder_rnn_dim, prenet_dim, max_decoder_steps, gate_threshold,
                               p_attention_dropout, p_decoder_dropout, not decoder_no_early_stopping)
        self.postnet = Postnet(n_mel_channels, postnet_embedding_dim, postnet_kernel_size, postnet_n_convolutions)
        self.batch_invariant = False

    @property
    def modes(self) -> "Modes":
        """How the model runs now, beyond its weights."""
        return Modes(self.batch_invariant, self.decoder.prenet.always_dropout, self.decoder.p_teacher_frame_dropout,
                     self.encoder.p_dropout, self.postnet.p_dropout)

    def set_modes(self, **changes) -> "Modes":
        """Set some of the modes (Modes' field names) for good; the modes as they were before."""
        before = self.modes
        modes = before._replace(**changes)
        for name in ("teacher_frame_dropout", "encoder_dropout", "postnet_dropout"):
            if not 0.0 <= getattr(modes, name) < 1.0:
                raise ValueError(f"{name.replace('_', ' ')} must be in [0, 1), got {getattr(modes, name)}")
        self.batch_invariant = self.encoder.mask_padding_in_convs = modes.batch_invariant
        self.decoder.prenet.always_dropout = modes.prenet_dropout
        self.decoder.p_teacher_frame_dropout = modes.teacher_frame_dropout
        self.encoder.p_dropout, self.postnet.p_dropout = modes.encoder_dropout, modes.postnet_dropout
        return before

    @contextlib.contextmanager
    def using(self, **changes) -> Iterator["Modes"]:
        """`with model.using(prenet_dropout=False): ...`: the modes changed inside, restored after (an exception
        included)."""
        before = self.set_modes(**changes)
        try:
            yield self.modes
        finally:
            self.set_modes(**before._asdict())

    def encode(self, text: torch.Tensor, input_lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) symbol ids -> (B, max(input_lengths), E) encoder outputs."""
        embedded = self.embedding(text).transpose(1, 2)  # (B, T, E) -> (B, E, T)
        return self.encoder(embedded, input_lengths)

    def forward(self, inputs: Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, torch.Tensor]
                ) -> List[torch.Tensor]:
        """Teacher-forced pass.

        Args:
            inputs: (text_padded (B, T_in), input_lengths (B,), mel_padded (B, n_mel, T_out), max_len (unused),
                output_lengths (B,)).
        Returns:
            [mel_out (B, n_mel, T_out), mel_out_postnet (B, n_mel, T_out), gate_out (B, T_out / r),
            alignments (B, T_out / r, T_in)]. With mask_padding, padded frames are 0 and padded gates 1000.
        """
        text, input_lengths, mels, _, output_lengths = inputs
        memory = self.encode(text, input_lengths)
        mel_out, gate_out, alignments = self.decoder(memory, mels, input_lengths)
        mel_out_postnet = mel_out + self.postnet(mel_out)
        if self.mask_padding and output_lengths is not None:
            pad = ~mask_from_lengths(output_lengths, mel_out.size(2))  # (B, T_out)
            mel_out = mel_out.masked_fill(pad[:, None, :], 0.0)
            mel_out_postnet = mel_out_postnet.masked_fill(pad[:, None, :], 0.0)
            gate_out = gate_out.masked_fill(pad[:, ::self.n_frames_per_step], 1e3)
        return [mel_out, mel_out_postnet, gate_out, alignments]

    @torch.no_grad()
    def generate(self, text: torch.Tensor, input_lengths: torch.Tensor,
                 decode: Optional[Callable[[torch.Tensor, torch.Tensor], DecoderOutput]] = None) -> InferenceOutput:
        """Greedy synthesis with every intermediate result; batches need not be sorted.

        decode: (memory (B, T_in, E), lengths (B,)) -> DecoderOutput, the decoding strategy; default
        `self.decoder.infer` (an engine of tacotron2/fast_inference.py gives the same values faster).
        """
        memory = self.encode(text, input_lengths)
        dec = (decode or self.decoder.infer)(memory, input_lengths)
        mels, valid = dec.mel_outputs, None
        if self.batch_invariant:
            # An item alone stops decoding after its stop step; hide what the batch decoded beyond
            # it from every postnet layer. (B, T_out) -> (B, 1, T_out)
            produced = dec.mel_lengths + (~dec.reached_max).int()
            valid = mask_from_lengths(produced.clamp(max=mels.size(2)), mels.size(2))[:, None, :].to(mels.dtype)
            mels = mels * valid
        mel_postnet = mels + self.postnet(mels, valid)
        return InferenceOutput(mel_postnet, dec.mel_lengths, dec.alignments, dec.mel_outputs, dec.gate_outputs,
                               dec.reached_max)

    @torch.no_grad()
    def infer(self, inputs: torch.Tensor, input_lengths: torch.Tensor
              ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Greedy synthesis: (B, T_in) ids -> (mel_outputs_postnet (B, n_mel, T_out), mel_lengths (B,), alignments)."""
        out = self.generate(inputs, input_lengths)
        return out.mel_outputs_postnet, out.mel_lengths, out.alignments
