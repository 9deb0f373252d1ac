"""A speech server: text in, wav out over HTTP, concurrent requests batched (serving.py is its library).

    python serve.py --tacotron2 demo_output/tacotron2_averaged.pt --vocoder hifigan
    curl -s -X POST http://127.0.0.1:8000/synthesize -H 'Content-Type: application/json' \\
        -d '{"text": "Hello from the server."}' -o hello.wav

GET /health, GET /info (the models, how they read text, their audio settings, the precision chosen, the limits).
The text goes through the model's own front end, as inference.py reads a phrase file. Binds to 127.0.0.1 unless
--host says otherwise. One process holds the models and uses every core for each batch; for more throughput run
more processes (each on its own port and cores) behind a proxy, or on GPUs NVIDIA's Triton path.
"""
import argparse
import sys
from typing import Optional, Sequence

import torch

from common.checkpoint import CheckpointError
from common.cpu.host_memory import keep_freed_memory
from hifigan.weights import VocoderUnavailable
from serving import Limits, Speaker, make_app
from synthesis import InputError, add_inference_flags, load_models, synthesizer_from_flags
from tacotron2.text.frontend import FrontendError
from common.flag_types import COUNT, COUNT0, PORT, NONNEG
from vocoders import VocoderMismatch


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--tacotron2", required=True, help="Tacotron 2 checkpoint")
    parser.add_argument("--waveglow", default=None, help="WaveGlow checkpoint (--vocoder waveglow)")
    add_inference_flags(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=PORT, default=8000)
    d = Limits()
    parser.add_argument("--max-chars", type=COUNT, default=d.max_chars, help="characters of one request's text")
    parser.add_argument("--max-batch", type=COUNT, default=d.max_batch, help="phrases decoded together")
    parser.add_argument("--max-wait-ms", type=NONNEG, default=d.max_wait_ms,
                        help="how long a request waits for others to share its batch")
    parser.add_argument("--max-queue", type=COUNT0, default=d.max_queue,
                        help="phrases waiting; more are answered 503 with Retry-After")
    parser.add_argument("--deterministic", action="store_true",
                        help="prenet dropout off: the same text always gives the same audio")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is present")
    return parser.parse_args(argv)  # every number's range is in its type (common/flag_types.py)


def build_speaker(args: argparse.Namespace) -> Speaker:
    """The models loaded and checked (as inference.py checks them), then the Speaker over them."""
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    keep_freed_memory(device)
    tacotron2, waveglow, frontend = load_models(args, device)
    tacotron2.set_modes(prenet_dropout=not args.deterministic)
    synth = synthesizer_from_flags(args, tacotron2, waveglow, device, args.max_batch)
    synth.report_fast_paths()
    return Speaker(synth, frontend, Limits(args.max_chars, args.max_batch, args.max_wait_ms, args.max_queue))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        speaker = build_speaker(args)
    except (InputError, CheckpointError, FrontendError, VocoderMismatch, VocoderUnavailable) as e:
        sys.exit(f"error: {e}")
    import uvicorn
    print(f"serving {args.tacotron2} ({speaker.frontend.kind} text, {speaker.synth.vocoder.name}) on "
          f"http://{args.host}:{args.port}", file=sys.stderr)
    try:
        uvicorn.run(make_app(speaker), host=args.host, port=args.port, log_level="warning")
    finally:
        speaker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
