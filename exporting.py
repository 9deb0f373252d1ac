"""Export of trained models for deployment without this repository's Python code (export.py is the command).

TorchScript parts: Tacotron 2's encoder (text ids, lengths -> memory), decoder step (one greedy step, prenet
included with its dropout off) and postnet, and WaveGlow (mel and latent noise -> audio); optionally the same parts
as ONNX, as NVIDIA exports them. An autoregressive loop cannot be traced, so the decoder is exported as a step and
`ExportedTacotron2` runs the loop around it, on the TorchScript parts or, through onnxruntime, the ONNX ones. Each
export is checked against the eager model on inputs of another length than the one traced with.
"""
import dataclasses
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from vocoders import SIGMA_INFER
from common.audio import AudioConfig
from common.checkpoint import atomic_save, atomic_save_bytes, model_card
from tacotron2 import greedy
from tacotron2.data_function import pad_ids
from tacotron2.text.frontend import DEFAULT_CLEANERS, FrontendError, TextFrontend, frontend_for
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
    """prenet + one decoder step, with the recurrent state flattened into tensors; `mask` (B, T_in) is True on the
    text's symbols, as NVIDIA's decoder_iter takes it."""

    def __init__(self, model: Tacotron2) -> None:
        super().__init__()
        self.decoder = model.decoder

    def forward(self, frame, att_h, att_c, dec_h, dec_c, weights, weights_cum, context, memory, processed_memory,
                mask):
        state = DecoderState(att_h, att_c, dec_h, dec_c, weights, weights_cum, context)
        frame, gate, s = self.decoder.step(self.decoder.prenet(frame), state, memory, processed_memory, ~mask)
        return (frame, gate) + tuple(s)


class _Postnet(nn.Module):
    """mel -> mel + postnet(mel): the final mel, as NVIDIA's postnet part returns it."""

    def __init__(self, model: Tacotron2) -> None:
        super().__init__()
        self.postnet = model.postnet

    def forward(self, mel_outputs: torch.Tensor) -> torch.Tensor:
        return mel_outputs + self.postnet(mel_outputs)


class _WaveGlowInfer(nn.Module):
    def __init__(self, model: WaveGlow, sigma: float) -> None:
        super().__init__()
        self.model = model
        self.sigma = sigma
        # inverses as constants: ONNX has no matrix inverse
        self.W_inverses = [inv.inverse_weight().detach() for inv in model.convinv]

    def forward(self, mel: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(B, n_mel, F) mel and (B, n_group, F * 256 / n_group) unit Gaussian latent -> (B, F * 256) audio; z's
        channels are taken in NVIDIA's order: the first n_remaining_channels start the flows, the next n_early_size
        are added at each early output."""
        m = self.model
        noise = [z[:, :m.n_remaining_channels]]
        for start in range(m.n_remaining_channels, m.n_group, m.n_early_size):
            noise.append(z[:, start:start + m.n_early_size])
        return m.infer(mel, self.sigma, noise=noise, W_inverses=self.W_inverses)


class ExportedTacotron2:
    """Greedy synthesis with the exported parts (batch of texts, lengths): the TorchScript files, or with
    `onnx=True` the ONNX ones through onnxruntime (CPU). `sequences(texts)` makes the text ids from plain text
    through the model's own front end, which the export records with its audio settings:

        exported = ExportedTacotron2("exported/", onnx=True)
        mel, mel_lengths = exported(*exported.sequences(["Hello world."]))
    """

    def __init__(self, folder: str, max_decoder_steps: int = 2000, gate_threshold: float = 0.5,
                 device: Optional[torch.device] = None, onnx: bool = False) -> None:
        names = ("encoder", "decoder_step", "postnet")
        if onnx:
            import onnxruntime
            self.encoder, self.step, self.postnet = (_OnnxPart(onnxruntime.InferenceSession(
                os.path.join(folder, ONNX_FILES[n]), providers=["CPUExecutionProvider"]))
                for n in ("encoder", "decoder_iter", "postnet"))
        else:  # parts traced on a GPU run there only; device None: where they were traced
            self.encoder, self.step, self.postnet = (torch.jit.load(os.path.join(folder, f"tacotron2_{n}.pt"),
                                                                    map_location=device) for n in names)
        self.sizes = torch.load(os.path.join(folder, "tacotron2_meta.pt"), weights_only=True)
        self.max_decoder_steps = max_decoder_steps
        self.gate_threshold = gate_threshold
        # the model's text front end and audio settings (exports written before they were saved: NVIDIA's)
        self.frontend = TextFrontend(self.sizes.get("text_frontend", "characters"),
                                     tuple(self.sizes.get("text_cleaners", DEFAULT_CLEANERS)))
        self.audio = AudioConfig(**self.sizes.get("audio", {}))

    def sequences(self, texts: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Plain text -> (text ids (B, T_in) zero-padded, lengths (B,)) as the exported model reads text."""
        return pad_ids(self.frontend.sequences(texts))

    @torch.no_grad()
    def __call__(self, text: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        memory, processed = self.encoder(text, lengths)
        B, T_in, E = memory.shape
        lengths = lengths.to(memory.device)
        mask = torch.arange(T_in, device=memory.device)[None, :] < lengths[:, None]  # True on the symbols
        z = lambda n: memory.new_zeros(B, n)  # noqa: E731
        s = self.sizes
        state = [z(s["attention_rnn_dim"]), z(s["attention_rnn_dim"]), z(s["decoder_rnn_dim"]),
                 z(s["decoder_rnn_dim"]), z(T_in), z(T_in), z(E)]

        def step(frame: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            nonlocal state
            frame, gate, *state = self.step(frame, *state, memory, processed, mask)
            return frame, gate[:, 0], state[4]  # state[4]: this step's attention weights
        rule = greedy.StopRule(self.max_decoder_steps, self.gate_threshold)
        out = greedy.finish(*greedy.greedy_loop(step, z(s["frame_dim"]), rule), s["n_mel_channels"],
                            s["frame_dim"] // s["n_mel_channels"], self.max_decoder_steps)
        return self.postnet(out.mel_outputs), out.mel_lengths


class _OnnxPart:
    """An onnxruntime session called like the traced module it was exported from: tensors in, tensors out."""

    def __init__(self, session) -> None:
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]

    def __call__(self, *tensors: torch.Tensor):
        outputs = self.session.run(None, {name: t.cpu().numpy() for name, t in zip(self.inputs, tensors)})
        outputs = [torch.from_numpy(o) for o in outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


STATE_NAMES = DecoderState._fields  # in the model's order, which NVIDIA's ONNX names follow
# the ONNX parts' input and output names, those of NVIDIA's convert_tacotron22onnx.py and convert_waveglow2onnx.py,
# which its TensorRT conversion (convert_onnx2trt.py) builds its optimisation profiles from
ONNX_NAMES = {
    "encoder": (["sequences", "sequence_lengths"], ["memory", "processed_memory"]),
    "decoder_iter": (["decoder_input", *STATE_NAMES, "memory", "processed_memory", "mask"],
                     ["decoder_output", "gate_prediction", *(f"out_{n}" for n in STATE_NAMES)]),
    "postnet": (["mel_outputs"], ["mel_outputs_postnet"]),
    "waveglow": (["mel", "z"], ["audio"]),
}
ONNX_FILES = {"encoder": "encoder.onnx", "decoder_iter": "decoder_iter.onnx", "postnet": "postnet.onnx",
              "waveglow": "waveglow.onnx"}


def _export_onnx(module: nn.Module, inputs: tuple, path: str, part: str, axes: Dict[str, Dict[int, str]]) -> None:
    names_in, names_out = ONNX_NAMES[part]
    atomic_save_bytes(lambda f: torch.onnx.export(module.eval(), inputs, f, input_names=names_in,
                                                  output_names=names_out, dynamic_axes=axes, opset_version=17,
                                                  dynamo=False), path)


def export_tacotron2_onnx(model: Tacotron2, folder: str, encoder_inputs: tuple, step_inputs: tuple,
                          mels: torch.Tensor) -> None:
    """The three parts as ONNX, with NVIDIA's file and tensor names and dynamic batch, text and mel lengths.
    Wrappers are made in eval mode: the exporter puts a module back in its own mode afterwards, and a wrapper made in
    training mode would take the model with it."""
    per_symbol = {0: "batch", 1: "symbols"}
    _export_onnx(_OnnxEncoder(model), encoder_inputs, os.path.join(folder, ONNX_FILES["encoder"]), "encoder",
                 {"sequences": per_symbol, "sequence_lengths": {0: "batch"}, "memory": per_symbol,
                  "processed_memory": per_symbol})
    names_in, names_out = ONNX_NAMES["decoder_iter"]
    symbol_sized = {"attention_weights", "attention_weights_cum", "memory", "processed_memory", "mask"}
    axes = {n: per_symbol if n in symbol_sized or n[len("out_"):] in symbol_sized else {0: "batch"}
            for n in names_in + names_out}
    _export_onnx(_DecoderStep(model), step_inputs, os.path.join(folder, ONNX_FILES["decoder_iter"]), "decoder_iter",
                 axes)
    per_frame = {0: "batch", 2: "frames"}
    _export_onnx(_Postnet(model), (mels,), os.path.join(folder, ONNX_FILES["postnet"]), "postnet",
                 {"mel_outputs": per_frame, "mel_outputs_postnet": per_frame})


def write_meta(model: Tacotron2, path: str) -> None:
    """What the exported parts need beside their graphs: the decoder state's sizes, how the model reads text and
    the mels it makes."""
    d = model.decoder
    card = model_card(model)
    try:
        frontend = frontend_for(card.train_args, card.path)
    except FrontendError:  # an older phoneme checkpoint: its phonemes are read, plain text is refused
        frontend = TextFrontend("arpabet", tuple((card.train_args or {}).get("text_cleaners") or DEFAULT_CLEANERS))
    atomic_save({"attention_rnn_dim": d.attention_rnn.hidden_size, "decoder_rnn_dim": d.decoder_rnn.hidden_size,
                 "frame_dim": d.n_mel_channels * d.n_frames_per_step, "n_mel_channels": d.n_mel_channels,
                 "text_frontend": frontend.kind, "text_cleaners": list(frontend.cleaners),
                 "audio": dataclasses.asdict(card.audio)}, path)


def export_tacotron2(model: Tacotron2, folder: str, onnx: bool = False) -> List[str]:
    """Trace the parts on the model's device: the files run there (a GPU's only on a GPU); with `onnx` also the
    ONNX parts (encoder, decoder step, postnet), with dynamic batch, text and mel lengths. Returns the files
    written."""
    model = model.eval()
    device = model.embedding.weight.device
    d = model.decoder
    # traced as the reference computes (no batch-invariant masking), the prenet's dropout left to the engine
    with warnings.catch_warnings(), model.using(prenet_dropout=False, batch_invariant=False):
        warnings.simplefilter("ignore")
        text = torch.randint(12, 60, (2, 23), device=device)
        lengths = torch.tensor([23, 17], device=device)
        enc = torch.jit.trace(_Encoder(model).eval(), (text, lengths), check_trace=False)
        memory, processed = enc(text, lengths)
        B, T_in, E = memory.shape
        state = model.decoder.initial_state(memory)
        frame = memory.new_zeros(B, d.n_mel_channels * d.n_frames_per_step)
        mask = torch.arange(T_in, device=device)[None, :] < lengths[:, None]
        step_inputs = (frame, *state, memory, processed, mask)
        step = torch.jit.trace(_DecoderStep(model).eval(), step_inputs, check_trace=False)
        mels = torch.randn(2, d.n_mel_channels, 30, device=device)
        post = torch.jit.trace(_Postnet(model).eval(), (mels,), check_trace=False)
        if onnx:
            export_tacotron2_onnx(model, folder, (text, lengths), step_inputs, mels)
    for part, name in ((enc, "encoder"), (step, "decoder_step"), (post, "postnet")):
        atomic_save_bytes(lambda f, part=part: torch.jit.save(part, f), os.path.join(folder, f"tacotron2_{name}.pt"))
    write_meta(model, os.path.join(folder, "tacotron2_meta.pt"))
    written = [f"tacotron2_{n}.pt" for n in ("encoder", "decoder_step", "postnet", "meta")]
    written += [ONNX_FILES[n] for n in ("encoder", "decoder_iter", "postnet")] if onnx else []
    return [os.path.join(folder, name) for name in written]


def export_waveglow(model: WaveGlow, folder: str, sigma: float = SIGMA_INFER, onnx: bool = False) -> List[str]:
    """Trace on the model's device (the TorchScript file runs there); ONNX from the same graph. Returns the files
    written."""
    model = model.eval()
    model.remove_weightnorm()
    device = model.upsample.weight.device
    mel = torch.randn(1, model.upsample.in_channels, 8, device=device)
    z = torch.randn(1, model.n_group, 8 * model.upsample.stride[0] // model.n_group, device=device)
    wrapper = _WaveGlowInfer(model, sigma)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, (mel, z), check_trace=False)
    atomic_save_bytes(lambda f: torch.jit.save(traced, f), os.path.join(folder, "waveglow.pt"))
    if onnx:
        _export_onnx(wrapper, (mel, z), os.path.join(folder, ONNX_FILES["waveglow"]), "waveglow",
                     {"mel": {0: "batch", 2: "frames"}, "z": {0: "batch", 2: "groups"},
                      "audio": {0: "batch", 1: "samples"}})
    return [os.path.join(folder, name) for name in ["waveglow.pt"] + ([ONNX_FILES["waveglow"]] if onnx else [])]
