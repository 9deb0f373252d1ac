"""Export trained models for deployment without this repository's Python code.

    python export.py --tacotron2 T2.pt --waveglow WG.pt -o exported/ [--onnx]

Writes TorchScript files: `tacotron2_encoder.pt` (text ids, lengths -> memory), `tacotron2_decoder_step.pt`
(one greedy step, prenet included with its dropout off), `tacotron2_postnet.pt`, and `waveglow.pt`
(mel and latent noise -> audio); with --onnx also `waveglow.onnx`. An autoregressive loop cannot be traced,
so the decoder is exported as a step and `ScriptedTacotron2` runs the loop around it (20 lines to port).
Each export is checked against the eager model on inputs of another length than the one traced with.
"""
import argparse
import os
import sys
import warnings
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

import models
from common.checkpoint import CheckpointError
from tacotron2 import greedy
from tacotron2.model import DecoderState, Tacotron2
from waveglow.model import WaveGlow


class _Encoder(nn.Module):
    def __init__(self, model: Tacotron2) -> None:
        super().__init__()
        self.model = model

    def forward(self, text: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        memory = self.model.encode(text, lengths)
        return memory, self.model.decoder.attention_layer.memory_layer(memory)


class _DecoderStep(nn.Module):
    """prenet + decode, with the recurrent state flattened into tensors."""

    def __init__(self, model: Tacotron2) -> None:
        super().__init__()
        self.decoder = model.decoder

    def forward(self, frame, att_h, att_c, dec_h, dec_c, weights, weights_cum, context, memory, processed_memory,
                pad_mask):
        state = DecoderState(att_h, att_c, dec_h, dec_c, weights, weights_cum, context)
        frame, gate, s = self.decoder.decode(self.decoder.prenet(frame), state, memory, processed_memory, pad_mask)
        return (frame, gate) + tuple(s)


class _WaveGlowInfer(nn.Module):
    def __init__(self, model: WaveGlow, sigma: float) -> None:
        super().__init__()
        self.model = model
        self.sigma = sigma
        # inverses as constants: ONNX has no matrix inverse
        self.W_inverses = [inv.inverse_weight().detach() for inv in model.convinv]

    def forward(self, mel: torch.Tensor, *noise: torch.Tensor) -> torch.Tensor:
        return self.model.infer(mel, self.sigma, noise=list(noise), W_inverses=self.W_inverses)


class ScriptedTacotron2:
    """Greedy synthesis with the exported TorchScript parts (batch of texts, lengths)."""

    def __init__(self, folder: str, max_decoder_steps: int = 2000, gate_threshold: float = 0.5,
                 device: Optional[torch.device] = None) -> None:
        # parts traced on a GPU run there only; device None: where they were traced
        load = lambda name: torch.jit.load(os.path.join(folder, name), map_location=device)  # noqa: E731
        self.encoder, self.step, self.postnet = (load(f"tacotron2_{n}.pt") for n in ("encoder", "decoder_step",
                                                                                      "postnet"))
        meta = torch.load(os.path.join(folder, "tacotron2_meta.pt"), weights_only=True)
        self.sizes = meta
        self.max_decoder_steps = max_decoder_steps
        self.gate_threshold = gate_threshold

    @torch.no_grad()
    def __call__(self, text: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        memory, processed = self.encoder(text, lengths)
        B, T_in, E = memory.shape
        lengths = lengths.to(memory.device)
        pad_mask = torch.arange(T_in, device=memory.device)[None, :] >= lengths[:, None]
        z = lambda n: memory.new_zeros(B, n)  # noqa: E731
        s = self.sizes
        state = [z(s["attention_rnn_dim"]), z(s["attention_rnn_dim"]), z(s["decoder_rnn_dim"]),
                 z(s["decoder_rnn_dim"]), z(T_in), z(T_in), z(E)]

        def step(frame: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            nonlocal state
            frame, gate, *state = self.step(frame, *state, memory, processed, pad_mask)
            return frame, gate[:, 0], state[4]  # state[4]: this step's attention weights
        rule = greedy.StopRule(self.max_decoder_steps, self.gate_threshold)
        out = greedy.finish(*greedy.greedy_loop(step, z(s["frame_dim"]), rule), s["n_mel_channels"],
                            s["frame_dim"] // s["n_mel_channels"], self.max_decoder_steps)
        mels = out.mel_outputs
        return mels + self.postnet(mels), out.mel_lengths


def export_tacotron2(model: Tacotron2, folder: str) -> None:
    """Trace the parts on the model's device: the files run there (a GPU's only on a GPU)."""
    model = model.eval()
    model.set_prenet_dropout(False)
    model.set_batch_invariant(False)
    device = model.embedding.weight.device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = torch.randint(12, 60, (2, 23), device=device)
        lengths = torch.tensor([23, 17], device=device)
        enc = torch.jit.trace(_Encoder(model), (text, lengths), check_trace=False)
        memory, processed = enc(text, lengths)
        B, T_in, E = memory.shape
        d = model.decoder
        state = model.decoder.initial_state(memory)
        frame = memory.new_zeros(B, d.n_mel_channels * d.n_frames_per_step)
        pad_mask = torch.arange(T_in, device=device)[None, :] >= lengths[:, None]
        step = torch.jit.trace(_DecoderStep(model), (frame, *state, memory, processed, pad_mask), check_trace=False)
        post = torch.jit.trace(model.postnet, (torch.randn(2, d.n_mel_channels, 30, device=device),),
                               check_trace=False)
    enc.save(os.path.join(folder, "tacotron2_encoder.pt"))
    step.save(os.path.join(folder, "tacotron2_decoder_step.pt"))
    post.save(os.path.join(folder, "tacotron2_postnet.pt"))
    torch.save({"attention_rnn_dim": d.attention_rnn.hidden_size, "decoder_rnn_dim": d.decoder_rnn.hidden_size,
                "frame_dim": d.n_mel_channels * d.n_frames_per_step, "n_mel_channels": d.n_mel_channels},
               os.path.join(folder, "tacotron2_meta.pt"))


def export_waveglow(model: WaveGlow, folder: str, sigma: float = 0.6, onnx: bool = False) -> None:
    """Trace on the model's device (the TorchScript file runs there); ONNX from the same graph."""
    model = model.eval()
    model.remove_weightnorm()
    device = model.upsample.weight.device
    mel = torch.randn(1, model.upsample.in_channels, 8, device=device)
    noise = [torch.randn(s, device=device) for s in model.noise_shapes(1, 8 * 32)]
    wrapper = _WaveGlowInfer(model, sigma)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, (mel, *noise), check_trace=False)
    traced.save(os.path.join(folder, "waveglow.pt"))
    if onnx:
        names = [f"z{i}" for i in range(len(noise))]
        torch.onnx.export(wrapper, (mel, *noise), os.path.join(folder, "waveglow.onnx"),
                          input_names=["mel"] + names, output_names=["audio"], dynamo=False,
                          dynamic_axes={"mel": {0: "batch", 2: "frames"}, "audio": {0: "batch", 1: "samples"},
                                        **{n: {0: "batch", 2: "groups"} for n in names}}, opset_version=17)


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tacotron2", default=None)
    parser.add_argument("--waveglow", default=None)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--onnx", action="store_true", help="also write waveglow.onnx")
    parser.add_argument("-s", "--sigma-infer", type=float, default=0.9)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the exported TorchScript files will run (they are traced there)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda: no CUDA device here")
    device = torch.device(args.device)
    os.makedirs(args.output, exist_ok=True)
    try:
        if args.tacotron2:
            export_tacotron2(models.load_model(args.tacotron2, "Tacotron2", device)[0], args.output)
        if args.waveglow:
            export_waveglow(models.load_model(args.waveglow, "WaveGlow", device)[0], args.output,
                            args.sigma_infer, args.onnx)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
