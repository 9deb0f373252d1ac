"""Greedy decoding over preallocated buffers, K steps between host checks; CUDA graphs on a GPU.

The greedy loop (`Decoder.infer`, `FastDecoder.infer`) appends each step's outputs to Python lists and asks the device
after every step whether all items have stopped. On a GPU that question is a host-device sync per
step, and each step is ~30 small kernel launches; at batch 1 the GPU mostly waits for Python.

Here a session holds every tensor a step reads or writes at a fixed address: the recurrent state,
the last frame, output buffers of `max_decoder_steps` rows written at a device-side step index,
and the stop flags. `steps_per_check` (K) steps are taken between host reads of "has every item
stopped". On CUDA the K steps are captured once as one CUDA graph per (batch, padded text length)
and replayed: one launch per K steps and no allocation. On a CPU the same steps run eagerly.

The values equal the plain loop's (same operations in the same order, prenet dropout draws
included): decoding just runs up to K - 1 steps past the last stop, which are cut off.
"""
import math
import warnings
from collections import OrderedDict
from typing import Optional, Tuple

import torch

from common.utils import mask_from_lengths
from tacotron2 import greedy
from tacotron2.fast_inference import FastDecoder


class _Session:
    """Buffers (and on CUDA the captured graph) for one (B, T_in) shape."""

    def __init__(self, engine: FastDecoder, B: int, T_in: int, E: int, A: int, device: torch.device,
                 steps_per_check: int, capture: bool) -> None:
        self.engine = engine
        decoder = engine.decoder
        self.k = steps_per_check
        self.capacity = math.ceil(decoder.max_decoder_steps / steps_per_check) * steps_per_check
        f32 = dict(device=device, dtype=torch.float32)
        frame_dim = decoder.n_mel_channels * decoder.n_frames_per_step
        self.memory = torch.zeros(B, T_in, E, **f32)
        self.processed_memory_t = torch.zeros(B, A, T_in, **f32)  # (B, A, T_in) as the fast step reads it
        self.pad_mask = torch.ones(B, T_in, dtype=torch.bool, device=device)
        self.state = decoder.initial_state(self.memory)
        self.frame = torch.zeros(B, frame_dim, **f32)
        self.frames = torch.zeros(B, self.capacity, frame_dim, **f32)  # (B, steps, n_mel * r)
        self.gates = torch.zeros(B, self.capacity, **f32)  # (B, steps)
        self.alignments = torch.zeros(B, self.capacity, T_in, **f32)  # (B, steps, T_in)
        self.t = torch.zeros(1, dtype=torch.long, device=device)  # next step's row
        # rows past max_decoder_steps (up to K - 1 of them) change no stop counter
        self.within_max = torch.arange(self.capacity, device=device) < decoder.max_decoder_steps
        self.not_finished = torch.ones(B, dtype=torch.int32, device=device)
        self.running_steps = torch.zeros(B, dtype=torch.int32, device=device)
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        if capture:
            self._capture()

    def reset(self, memory: torch.Tensor, processed_memory: torch.Tensor, memory_lengths: torch.Tensor) -> None:
        """Load one batch: memory (B, T, E) and processed_memory (B, T, A) with T <= this session's T_in."""
        T = memory.size(1)
        self.memory.zero_()[:, :T] = memory
        self.processed_memory_t.zero_()[:, :, :T] = processed_memory.transpose(1, 2)
        self.pad_mask.copy_(~mask_from_lengths(memory_lengths.to(self.pad_mask.device), self.pad_mask.size(1)))
        for s in self.state:
            s.zero_()
        self.frame.zero_()
        self.t.zero_()
        self.not_finished.fill_(1)
        self.running_steps.zero_()

    def _step(self) -> None:
        """One decoder step, reading and writing only this session's buffers."""
        engine = self.engine
        frame, gate, state = engine.step(engine.prenet(self.frame), self.state, self.memory,
                                         self.processed_memory_t, self.pad_mask)
        for buffer, value in zip(self.state, state):
            buffer.copy_(value)
        self.frame.copy_(frame)
        self.frames.index_copy_(1, self.t, frame[:, None])
        self.gates.index_copy_(1, self.t, gate)
        self.alignments.index_copy_(1, self.t, state.attention_weights[:, None])
        within_max = self.within_max.index_select(0, self.t)  # (1,)
        self.not_finished.mul_(greedy.running(gate[:, 0], engine.decoder.gate_threshold) | ~within_max)
        self.running_steps.add_(self.not_finished * within_max)
        self.t.add_(1)

    def _steps(self) -> None:
        # the weights carry the dtype: an outer autocast must not recast the step's products
        with torch.autocast(self.memory.device.type, enabled=False):
            for _ in range(self.k):
                self._step()

    def _capture(self) -> None:
        """Warm up on a side stream (cuBLAS handles, allocator), then record K steps as one graph.

        The warm-up's dropout draws are given back (the generator is forked around it), and capture
        itself draws nothing: the first replay takes the draws an eager run would have taken.
        """
        device = self.memory.device
        current = torch.cuda.current_stream(device)
        side = torch.cuda.Stream(device)
        side.wait_stream(current)
        with torch.random.fork_rng(devices=[device]), torch.cuda.stream(side):
            self._steps()  # K steps fit: capacity >= K
        current.wait_stream(side)
        self.t.zero_()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._steps()
        except RuntimeError as e:  # an op that cannot be captured: run the same steps eagerly
            warnings.warn(f"CUDA graph capture of the decoder step failed, decoding without graphs: {e}")
            return
        self.graph = graph

    def run_chunk(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self._steps()


class StaticDecoder:
    """Greedy decoding with a FastDecoder's step over static buffers, `StaticDecoder(FastDecoder(decoder, dtype))`;
    see the module docstring.

    Sessions are cached per shape (at most `max_sessions`, least recently used dropped); on CUDA
    the text length is padded up to a multiple of `length_bucket` so that graphs are reused
    (padded positions are masked out of the attention; the values equal the unpadded run's
    within float rounding). It belongs to one FastDecoder (one snapshot of the weights).
    """

    def __init__(self, engine: FastDecoder, steps_per_check: int = 16, length_bucket: Optional[int] = None,
                 max_sessions: int = 8, cuda_graphs: bool = True) -> None:
        if steps_per_check < 1:
            raise ValueError(f"steps_per_check must be >= 1, got {steps_per_check}")
        self.engine = engine
        self.steps_per_check = steps_per_check
        self.length_bucket = length_bucket
        self.max_sessions = max_sessions
        self.cuda_graphs = cuda_graphs  # False: the same static steps, launched eagerly (driver trouble)
        self.sessions: "OrderedDict[Tuple, _Session]" = OrderedDict()

    def _session(self, memory: torch.Tensor, A: int) -> _Session:
        B, T_in, E = memory.shape
        bucket = self.length_bucket or (32 if memory.device.type == "cuda" else 1)
        T_pad = math.ceil(T_in / bucket) * bucket
        dec = self.engine.decoder
        # a captured graph holds the buffers' sizes and the step's Python constants: a change of any makes
        # another session
        key = (B, T_pad, str(memory.device), dec.max_decoder_steps, dec.gate_threshold, dec.prenet.always_dropout,
               dec.early_stopping)
        if key in self.sessions:
            self.sessions.move_to_end(key)
            return self.sessions[key]
        session = _Session(self.engine, B, T_pad, E, A, memory.device, self.steps_per_check,
                           capture=memory.device.type == "cuda" and self.cuda_graphs)
        self.sessions[key] = session
        while len(self.sessions) > self.max_sessions:
            self.sessions.popitem(last=False)
        return session

    @torch.no_grad()
    def infer(self, memory: torch.Tensor, memory_lengths: torch.Tensor) -> greedy.DecoderOutput:
        """memory (B, T_in, E), lengths (B,) -> what greedy decoding gives (`Decoder.infer`), trimmed."""
        self.engine.check_weights()
        dec = self.engine.decoder
        memory = memory.float()
        processed_memory = dec.attention_layer.memory_layer(memory)  # (B, T_in, A), once per batch
        session = self._session(memory, processed_memory.size(2))
        session.reset(memory, processed_memory.float(), memory_lengths)
        steps = 0
        while steps < dec.max_decoder_steps:
            session.run_chunk()
            steps += session.k
            if dec.early_stopping and not bool(session.not_finished.any()):  # the one host read per K steps
                break
        running = session.running_steps.clone()
        not_finished = session.not_finished.clone()
        if dec.early_stopping and not bool(not_finished.any()):
            steps = int(running.max()) + 1  # the plain loop stops after the step on which the last item stopped
        steps = min(steps, dec.max_decoder_steps)
        T_in = memory.size(1)
        return greedy.finish(session.frames[:, :steps].clone(), session.gates[:, :steps].clone(),
                             session.alignments[:, :steps, :T_in].clone(), running, not_finished,
                             dec.n_mel_channels, dec.n_frames_per_step, dec.max_decoder_steps)
