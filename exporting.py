"""Export of trained models for deployment without this repository's Python code (export.py is the command).

TorchScript parts: Tacotron 2's encoder (text ids, lengths -> memory), decoder step (one greedy step, prenet
included with its dropout off) and postnet, and WaveGlow (mel and latent noise -> audio); optionally the same parts
as ONNX, as NVIDIA exports them. An autoregressive loop cannot be traced, so the decoder is exported as a step and
`ExportedTacotron2` runs the loop around it, on the TorchScript parts or, through onnxruntime, the ONNX ones. Each
export is checked against the eager model on inputs of another length than the one traced with.
"""
import os
import warnings
from typing import Optional, Tuple

import torch
from torch import nn

from synthesis import SIGMA_INFER
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


class _OnnxEncoder(nn.Module):
    """The encoder with its bidirectional LSTM run as two directions over the padded batch, the backward one on
    each text reversed within its own length: what the packed sequences compute, in operators ONNX has (the
    exporter turns an unsorted packed batch into a wrong graph)."""

    def __init__(self, model: Tacotron2) -> None:
        super().__init__()
        self.model = model
        lstm = model.encoder.lstm
        self.directions = nn.ModuleList()
        for suffix in ("", "_reverse"):
            one = nn.LSTM(lstm.input_size, lstm.hidden_size, 1, batch_first=True)
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                setattr(one, name, getattr(lstm, name + suffix))
            self.directions.append(one)

    def forward(self, text: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.model.encoder.convolve(self.model.embedding(text).transpose(1, 2), lengths)  # (B, T, E)
        t = torch.arange(x.size(1), device=x.device)[None, :]  # (1, T)
        inside = t < lengths[:, None]  # (B, T)
        flip = torch.where(inside, lengths[:, None] - 1 - t, t)  # each text reversed within its length
        index = flip[:, :, None].expand(-1, -1, x.size(2))
        forward_out, _ = self.directions[0](x)
        backward_out, _ = self.directions[1](torch.gather(x, 1, index))
        backward_out = torch.gather(backward_out, 1, flip[:, :, None].expand(-1, -1, backward_out.size(2)))
        memory = torch.cat((forward_out, backward_out), 2) * inside[:, :, None].to(x.dtype)
        memory = memory[:, :lengths.max()]  # (B, max(lengths), E), as the packed encoder returns
        return memory, self.model.decoder.attention_layer.memory_layer(memory)


class _DecoderStep(nn.Module):
    """prenet + one decoder step, with the recurrent state flattened into tensors."""

    def __init__(self, model: Tacotron2) -> None:
        super().__init__()
        self.decoder = model.decoder

    def forward(self, frame, att_h, att_c, dec_h, dec_c, weights, weights_cum, context, memory, processed_memory,
                pad_mask):
        state = DecoderState(att_h, att_c, dec_h, dec_c, weights, weights_cum, context)
        frame, gate, s = self.decoder.step(self.decoder.prenet(frame), state, memory, processed_memory, pad_mask)
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


class ExportedTacotron2:
    """Greedy synthesis with the exported parts (batch of texts, lengths): the TorchScript files, or with
    `onnx=True` the ONNX ones through onnxruntime (CPU)."""

    def __init__(self, folder: str, max_decoder_steps: int = 2000, gate_threshold: float = 0.5,
                 device: Optional[torch.device] = None, onnx: bool = False) -> None:
        names = ("encoder", "decoder_step", "postnet")
        if onnx:
            import onnxruntime
            self.encoder, self.step, self.postnet = (_OnnxPart(onnxruntime.InferenceSession(
                os.path.join(folder, f"tacotron2_{n}.onnx"), providers=["CPUExecutionProvider"])) for n in names)
        else:  # parts traced on a GPU run there only; device None: where they were traced
            self.encoder, self.step, self.postnet = (torch.jit.load(os.path.join(folder, f"tacotron2_{n}.pt"),
                                                                    map_location=device) for n in names)
        self.sizes = torch.load(os.path.join(folder, "tacotron2_meta.pt"), weights_only=True)
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


class _OnnxPart:
    """An onnxruntime session called like the traced module it was exported from: tensors in, tensors out."""

    def __init__(self, session) -> None:
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]

    def __call__(self, *tensors: torch.Tensor):
        outputs = self.session.run(None, {name: t.cpu().numpy() for name, t in zip(self.inputs, tensors)})
        outputs = [torch.from_numpy(o) for o in outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


STATE_NAMES = ("attention_hidden", "attention_cell", "decoder_hidden", "decoder_cell", "attention_weights",
               "attention_weights_cum", "attention_context")


def export_tacotron2(model: Tacotron2, folder: str, onnx: bool = False) -> None:
    """Trace the parts on the model's device: the files run there (a GPU's only on a GPU); with `onnx` also the
    ONNX parts (encoder, decoder step, postnet), with dynamic batch, text and mel lengths."""
    model = model.eval()
    model.set_prenet_dropout(False)
    model.set_batch_invariant(False)
    device = model.embedding.weight.device
    d = model.decoder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = torch.randint(12, 60, (2, 23), device=device)
        lengths = torch.tensor([23, 17], device=device)
        enc = torch.jit.trace(_Encoder(model).eval(), (text, lengths), check_trace=False)
        memory, processed = enc(text, lengths)
        B, T_in, E = memory.shape
        state = model.decoder.initial_state(memory)
        frame = memory.new_zeros(B, d.n_mel_channels * d.n_frames_per_step)
        pad_mask = torch.arange(T_in, device=device)[None, :] >= lengths[:, None]
        step_inputs = (frame, *state, memory, processed, pad_mask)
        step = torch.jit.trace(_DecoderStep(model).eval(), step_inputs, check_trace=False)
        mels = torch.randn(2, d.n_mel_channels, 30, device=device)
        post = torch.jit.trace(model.postnet, (mels,), check_trace=False)
        if onnx:
            batch = {0: "batch"}
            # wrappers in eval mode: the exporter puts a module back in its own mode afterwards, and a wrapper made
            # in training mode would take the model with it
            torch.onnx.export(_OnnxEncoder(model).eval(), (text, lengths), os.path.join(folder, "tacotron2_encoder.onnx"),
                              input_names=["text", "lengths"], output_names=["memory", "processed_memory"],
                              dynamic_axes={"text": {0: "batch", 1: "symbols"}, "lengths": batch,
                                            "memory": {0: "batch", 1: "symbols"},
                                            "processed_memory": {0: "batch", 1: "symbols"}},
                              opset_version=17, dynamo=False)
            step_names = ["frame", *STATE_NAMES, "memory", "processed_memory", "pad_mask"]
            per_symbol = {"attention_weights", "attention_weights_cum", "pad_mask"}
            axes = {n: ({0: "batch", 1: "symbols"} if n in per_symbol or n.endswith("memory") else batch)
                    for n in step_names}
            out_names = ["frame_out", "gate", *(f"{n}_out" for n in STATE_NAMES)]
            axes.update({n: ({0: "batch", 1: "symbols"} if n[:-4] in per_symbol else batch) for n in out_names})
            torch.onnx.export(_DecoderStep(model).eval(), step_inputs, os.path.join(folder, "tacotron2_decoder_step.onnx"),
                              input_names=step_names, output_names=out_names, dynamic_axes=axes, opset_version=17,
                              dynamo=False)
            torch.onnx.export(model.postnet, (mels,), os.path.join(folder, "tacotron2_postnet.onnx"),
                              input_names=["mel"], output_names=["residual"],
                              dynamic_axes={"mel": {0: "batch", 2: "frames"}, "residual": {0: "batch", 2: "frames"}},
                              opset_version=17, dynamo=False)
    enc.save(os.path.join(folder, "tacotron2_encoder.pt"))
    step.save(os.path.join(folder, "tacotron2_decoder_step.pt"))
    post.save(os.path.join(folder, "tacotron2_postnet.pt"))
    torch.save({"attention_rnn_dim": d.attention_rnn.hidden_size, "decoder_rnn_dim": d.decoder_rnn.hidden_size,
                "frame_dim": d.n_mel_channels * d.n_frames_per_step, "n_mel_channels": d.n_mel_channels},
               os.path.join(folder, "tacotron2_meta.pt"))


def export_waveglow(model: WaveGlow, folder: str, sigma: float = SIGMA_INFER, onnx: bool = False) -> None:
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
