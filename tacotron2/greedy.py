"""Greedy decoding's stop rule and bookkeeping, shared by every decoder loop.

The plain loop (`Decoder.infer`), the fused engine (`tacotron2/fast_inference.py`), the
static-buffer engine (`tacotron2/static_decoder.py`) and the exported step's loop (`export.py`)
all stop the same way: an item is finished for good once sigmoid(gate) > gate_threshold, its
length counts the frames before the stop step, and decoding ends when every item has stopped
(unless early stopping is off) or after max_decoder_steps steps.
"""
import warnings
from typing import Any, Callable, List, NamedTuple, Tuple

import torch


class DecoderOutput(NamedTuple):
    """What greedy decoding produced for a batch."""
    mel_outputs: torch.Tensor  # (B, n_mel, steps * r), before the postnet
    gate_outputs: torch.Tensor  # (B, steps) stop-gate logits
    alignments: torch.Tensor  # (B, steps, T_in)
    mel_lengths: torch.Tensor  # (B,) int32 frames before the stop
    reached_max: torch.Tensor  # (B,) bool: the gate never fired within max_decoder_steps


class StopRule(NamedTuple):
    """When greedy decoding stops (the decoder's config: max_decoder_steps, gate_threshold, early stopping)."""
    max_decoder_steps: int
    gate_threshold: float
    early_stopping: bool = True


def running(gate: torch.Tensor, gate_threshold: float) -> torch.Tensor:
    """(B,) gate logits -> (B,) int32, 1 where the item has not stopped on this step."""
    return (torch.sigmoid(gate) <= gate_threshold).int()


# frame (B, n_mel * r) -> next frame (B, n_mel * r), gate logit (B,), attention weights (B, T_in)
Step = Callable[[torch.Tensor], Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def greedy_loop(step: Step, first_frame: torch.Tensor, rule: StopRule
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run `step` from `first_frame` until the stop rule says so.

    Returns the per-step outputs frames (B, steps, n_mel * r), gates (B, steps), alignments
    (B, steps, T_in) and the stop counters running_steps (B,) int32 and not_finished (B,) int32;
    `finish` turns them into a DecoderOutput. One host read per step (early stopping).
    """
    B = first_frame.size(0)
    device = first_frame.device
    running_steps = torch.zeros(B, dtype=torch.int32, device=device)
    not_finished = torch.ones(B, dtype=torch.int32, device=device)
    frames: List[torch.Tensor] = []
    gates: List[torch.Tensor] = []
    alignments: List[torch.Tensor] = []
    frame = first_frame
    while True:
        frame, gate, weights = step(frame)
        frames.append(frame)
        gates.append(gate)
        alignments.append(weights)
        not_finished = not_finished * running(gate, rule.gate_threshold)
        running_steps += not_finished
        if rule.early_stopping and int(not_finished.sum()) == 0:
            break
        if len(frames) == rule.max_decoder_steps:
            break
    return (torch.stack(frames, dim=1), torch.stack(gates, dim=1), torch.stack(alignments, dim=1), running_steps,
            not_finished)


# prenet_out (B, prenet_dim), state, memory, processed memory, pad_mask -> frames, gate (B, 1), new state
DecoderStep = Callable[..., Tuple[torch.Tensor, torch.Tensor, Any]]


def decode(prenet: Callable[[torch.Tensor], torch.Tensor], step: DecoderStep, state: Any, memory: torch.Tensor,
           processed_memory: torch.Tensor, pad_mask: torch.Tensor, n_mel_channels: int, r: int,
           rule: StopRule) -> DecoderOutput:
    """Greedy decoding of memory (B, T_in, E) from a go frame of zeros with a decoder's prenet and step
    (the plain `Decoder.step` or a fast engine's); `state` is the initial DecoderState."""
    def one_step(frame: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        nonlocal state
        frame, gate, state = step(prenet(frame), state, memory, processed_memory, pad_mask)
        return frame, gate.squeeze(1), state.attention_weights
    first = memory.new_zeros(memory.size(0), n_mel_channels * r)
    return finish(*greedy_loop(one_step, first, rule), n_mel_channels, r, rule.max_decoder_steps)


def frames_to_mels(frames: torch.Tensor, n_mel_channels: int) -> torch.Tensor:
    """Per-step outputs (B, steps, n_mel * r) -> (B, n_mel, steps * r)."""
    mels = frames.reshape(frames.size(0), -1, n_mel_channels)  # (B, steps * r, n_mel)
    return mels.transpose(1, 2)  # -> (B, n_mel, steps * r)


def mel_lengths(running_steps: torch.Tensor, not_finished: torch.Tensor, r: int) -> torch.Tensor:
    """Frames before each item's stop: for r > 1 the stop group's frames up to its last one are kept
    (r = 1: none of it, as in the reference). (B,) int32."""
    return running_steps * r + (1 - not_finished) * (r - 1)


def finish(frames: torch.Tensor, gates: torch.Tensor, alignments: torch.Tensor, running_steps: torch.Tensor,
           not_finished: torch.Tensor, n_mel_channels: int, r: int, max_decoder_steps: int) -> DecoderOutput:
    """Per-step outputs (B, steps, ...) and stop counters -> DecoderOutput; warns about items that never stopped."""
    reached_max = not_finished.bool()
    if frames.size(1) == max_decoder_steps and bool(reached_max.any()):
        items = reached_max.nonzero().flatten().tolist()
        warnings.warn(f"reached max_decoder_steps={max_decoder_steps} for batch items {items}: "
                      f"their speech may be cut off", stacklevel=3)
    return DecoderOutput(frames_to_mels(frames, n_mel_channels), gates, alignments,
                         mel_lengths(running_steps, not_finished, r), reached_max)
