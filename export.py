"""Export trained models for deployment without this repository's Python code.

    python export.py --tacotron2 T2.pt --waveglow WG.pt -o exported/ [--onnx]

Writes TorchScript files: `tacotron2_encoder.pt` (text ids, lengths -> memory), `tacotron2_decoder_step.pt`
(one greedy step, prenet included with its dropout off), `tacotron2_postnet.pt` (mel -> final mel), and
`waveglow.pt` (mel and latent z -> audio); with --onnx also the same parts as ONNX with NVIDIA's file and tensor
names (`encoder.onnx`: sequences, sequence_lengths -> memory, processed_memory; `decoder_iter.onnx`: decoder_input,
the seven state tensors, memory, processed_memory, mask (True on the symbols) -> decoder_output, gate_prediction,
out_<state>; `postnet.onnx`: mel_outputs -> mel_outputs_postnet; `waveglow.onnx`: mel, z (B, 8, samples / 8) ->
audio), so NVIDIA's TensorRT scripts take them on; unlike NVIDIA's, the encoder has no `lens` output. An
autoregressive loop cannot be traced, so the decoder is exported as a step and `ExportedTacotron2` runs the loop
around it (20 lines to port), on the TorchScript parts or, through onnxruntime, the ONNX ones. Each export is
checked against the eager model on inputs of another length than the one traced with.
"""
import argparse
import os
import sys
from typing import Optional, Sequence

import torch

import models
from common.checkpoint import CheckpointError
from common.flag_types import NONNEG
from exporting import ExportedTacotron2, export_tacotron2, export_waveglow  # noqa: F401 (export.ExportedTacotron2)
from synthesis import SIGMA_INFER
from common.output import check_outputs


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tacotron2", default=None)
    parser.add_argument("--waveglow", default=None)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--onnx", action="store_true",
                        help="also write ONNX files: Tacotron 2's encoder, decoder step and postnet, and WaveGlow")
    parser.add_argument("-s", "--sigma-infer", type=NONNEG, default=SIGMA_INFER,
                        help=f"the traced WaveGlow's latent sigma (inference.py's default, {SIGMA_INFER})")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the exported TorchScript files will run (they are traced there)")
    args = parser.parse_args(argv)
    check_outputs(parser, folders=[("-o", args.output)])
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda: no CUDA device here")
    device = torch.device(args.device)
    os.makedirs(args.output, exist_ok=True)
    written = []
    try:
        if args.tacotron2:
            written += export_tacotron2(models.load_model(args.tacotron2, "Tacotron2", device)[0], args.output,
                                        args.onnx)
        if args.waveglow:
            written += export_waveglow(models.load_model(args.waveglow, "WaveGlow", device)[0], args.output,
                                       args.sigma_infer, args.onnx)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    except OSError as e:  # a disk that fills part-way: each file is whole or absent (atomic writes)
        sys.exit(f"error: cannot write {e.filename} ({e.strerror or e}): the files written before it are whole, "
                 "it was not written: free some space and export again")
    if not written:
        sys.exit("error: nothing to export: give --tacotron2 and/or --waveglow")
    for path in written:
        print(f"wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
    if args.onnx:
        print("the ONNX parts carry the input and output names of NVIDIA's TensorRT scripts "
              "(tensorrt/convert_onnx2trt.py --encoder encoder.onnx --decoder decoder_iter.onnx ...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
