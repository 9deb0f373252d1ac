"""Command-line flags of Tacotron 2 (the reference's names and defaults) and its config."""
import argparse
import dataclasses
from typing import Any, Dict

from common.config_file import str2bool
from common.flag_types import COUNT, POSITIVE, NONNEG, PROBABILITY, GATE_THRESHOLD
from .text.frontend import FRONTENDS

from .text import symbols


@dataclasses.dataclass(frozen=True)
class Tacotron2Config:
    """Constructor arguments of `Tacotron2`; field names equal the argparse dests."""
    mask_padding: bool = False
    n_mel_channels: int = 80
    n_symbols: int = len(symbols)
    symbols_embedding_dim: int = 512
    encoder_kernel_size: int = 5
    encoder_n_convolutions: int = 3
    encoder_embedding_dim: int = 512
    attention_rnn_dim: int = 1024
    attention_dim: int = 128
    attention_location_n_filters: int = 32
    attention_location_kernel_size: int = 31
    n_frames_per_step: int = 1
    decoder_rnn_dim: int = 1024
    prenet_dim: int = 256
    max_decoder_steps: int = 2000
    gate_threshold: float = 0.5
    p_attention_dropout: float = 0.1
    p_decoder_dropout: float = 0.1
    postnet_embedding_dim: int = 512
    postnet_kernel_size: int = 5
    postnet_n_convolutions: int = 5
    decoder_no_early_stopping: bool = False


def config_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    """The model's constructor dict (the `config` stored in checkpoints), read field by field."""
    return dataclasses.asdict(Tacotron2Config(**{f.name: getattr(args, f.name)
                                                 for f in dataclasses.fields(Tacotron2Config)}))


def flags_from_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """The flags (dest -> value) that build `config`: config_from_args's inverse (the names are the same)."""
    return {f.name: config[f.name] for f in dataclasses.fields(Tacotron2Config) if f.name in config}


def parse_tacotron2_args(parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add Tacotron 2's flags to `parent` and return it."""
    d = Tacotron2Config()
    parser = parent
    parser.add_argument("--mask-padding", nargs="?", const=True, default=False, type=str2bool,
                        help="zero padded output frames (the seed's form takes a value: --mask-padding True)")
    parser.add_argument("--n-mel-channels", default=d.n_mel_channels, type=COUNT, help="mel channels")
    g = parser.add_argument_group("symbols parameters")
    g.add_argument("--n-symbols", default=d.n_symbols, type=COUNT, help="number of symbols in the dictionary")
    g.add_argument("--symbols-embedding-dim", default=d.symbols_embedding_dim, type=COUNT, help="input embedding size")
    g = parser.add_argument_group("encoder parameters")
    g.add_argument("--encoder-kernel-size", default=d.encoder_kernel_size, type=COUNT, help="encoder kernel size")
    g.add_argument("--encoder-n-convolutions", default=d.encoder_n_convolutions, type=COUNT,
                   help="number of encoder convolutions")
    g.add_argument("--encoder-embedding-dim", default=d.encoder_embedding_dim, type=COUNT,
                   help="encoder embedding size")
    g = parser.add_argument_group("decoder parameters")
    g.add_argument("--n-frames-per-step", default=d.n_frames_per_step, type=COUNT,
                   help="mel frames per decoder step (reduction factor r; 2-3 help small data)")
    g.add_argument("--decoder-rnn-dim", default=d.decoder_rnn_dim, type=COUNT, help="decoder LSTM units")
    g.add_argument("--prenet-dim", default=d.prenet_dim, type=COUNT, help="prenet units")
    g.add_argument("--max-decoder-steps", default=d.max_decoder_steps, type=COUNT,
                   help="decoder steps before inference gives up")
    g.add_argument("--gate-threshold", default=d.gate_threshold, type=GATE_THRESHOLD,
                   help="stop probability above which an item ends")
    g.add_argument("--p-attention-dropout", default=d.p_attention_dropout, type=PROBABILITY,
                   help="dropout on the attention LSTM output")
    g.add_argument("--p-decoder-dropout", default=d.p_decoder_dropout, type=PROBABILITY,
                   help="dropout on the decoder LSTM output")
    g.add_argument("--decoder-no-early-stopping", action="store_true",
                   help="always run max-decoder-steps steps at inference")
    g = parser.add_argument_group("attention parameters")
    g.add_argument("--attention-rnn-dim", default=d.attention_rnn_dim, type=COUNT, help="attention LSTM units")
    g.add_argument("--attention-dim", default=d.attention_dim, type=COUNT, help="attention space size")
    g = parser.add_argument_group("location layer parameters")
    g.add_argument("--attention-location-n-filters", default=d.attention_location_n_filters, type=COUNT,
                   help="location convolution filters")
    g.add_argument("--attention-location-kernel-size", default=d.attention_location_kernel_size, type=COUNT,
                   help="location convolution width")
    g = parser.add_argument_group("postnet parameters")
    g.add_argument("--postnet-embedding-dim", default=d.postnet_embedding_dim, type=COUNT, help="postnet channels")
    g.add_argument("--postnet-kernel-size", default=d.postnet_kernel_size, type=COUNT, help="postnet kernel size")
    g.add_argument("--postnet-n-convolutions", default=d.postnet_n_convolutions, type=COUNT,
                   help="number of postnet convolutions")
    g = parser.add_argument_group("Tacotron 2 training")
    g.add_argument("--p-encoder-dropout", default=0.5, type=PROBABILITY,
                   help="dropout after each encoder convolution in training (0.5: the paper)")
    g.add_argument("--p-postnet-dropout", default=0.5, type=PROBABILITY,
                   help="dropout after each postnet convolution in training (0.5: the paper)")
    g.add_argument("--gate-pos-weight", default=None, type=POSITIVE,
                   help="weight of stop frames in the gate loss (none as in the reference; 5-10 on small data)")
    g.add_argument("--guided-attention-weight", default=0.0, type=NONNEG,
                   help="weight of a guided-attention loss at the start (0: off, as the reference; 1-10 on small data)")
    g.add_argument("--guided-attention-sigma", default=0.2, type=POSITIVE,
                   help="width of the guided-attention band along the diagonal, a fraction of the text's length")
    g.add_argument("--guided-attention-half-life", default=1000.0, type=POSITIVE,
                   help="iterations after which the guided-attention weight has halved")
    g.add_argument("--guided-attention-durations", action=argparse.BooleanOptionalAction, default=False,
                   help="guide the attention along the teacher's own segment times (the corpus's segments.csv, "
                        "written for the slt voice) instead of the diagonal; a corpus without one is guided along "
                        "the diagonal, with a warning")
    g.add_argument("--guided-attention-durations-sigma", default=0.03, type=POSITIVE,
                   help="width of the band along the teacher's segment times: narrower than the diagonal's, whose "
                        "path is a guess")
    g.add_argument("--mel-loss", default="mse", choices=["mse", "l1"],
                   help="distance of the mel outputs to the teacher's (mse: the reference; l1 blurs less on small "
                        "data)")
    g.add_argument("--mel-loss-real-frames", action="store_true",
                   help="average the mel loss over real frames, not padding (with --mask-padding; the reference "
                        "averages over both, which weighs length-bucketed batches more)")
    g.add_argument("--teacher-frame-dropout", default=0.0, type=PROBABILITY,
                   help="share of the teacher's previous frames replaced by the utterance's mean frame in training, so "
                        "that the decoder must read the text rather than extend its last frame (0: as the reference)")
    g.add_argument("--text-frontend", default="auto", choices=["auto", *FRONTENDS],
                   help="how plain text becomes the symbols of the transcripts, recorded with the checkpoints so that "
                        "inference reads plain text the same way: characters (the text itself, NVIDIA's), festival "
                        "or espeak (the phonemizer that made phoneme transcripts), arpabet (phonemes of an unnamed "
                        "phonemizer); auto: characters for plain transcripts, arpabet for phoneme ones")
    return parser


def config_from_state_dict(state_dict: Dict[str, Any], base: Dict[str, Any] = None) -> Dict[str, Any]:
    """Architecture read off a checkpoint's tensor shapes (for files without a `config`).

    Sizes come from the weights; behaviour (max_decoder_steps, gate_threshold, dropouts) from `base`
    or the defaults.
    """
    cfg = dict(base or dataclasses.asdict(Tacotron2Config()))
    sd = state_dict
    cfg["n_symbols"], cfg["symbols_embedding_dim"] = sd["embedding.weight"].shape
    cfg["encoder_embedding_dim"] = sd["encoder.convolutions.0.0.conv.weight"].shape[0]
    cfg["encoder_kernel_size"] = sd["encoder.convolutions.0.0.conv.weight"].shape[2]
    cfg["encoder_n_convolutions"] = len({k.split(".")[2] for k in sd if k.startswith("encoder.convolutions.")})
    cfg["attention_rnn_dim"] = sd["decoder.attention_rnn.weight_hh"].shape[1]
    cfg["decoder_rnn_dim"] = sd["decoder.decoder_rnn.weight_hh"].shape[1]
    cfg["prenet_dim"] = sd["decoder.prenet.layers.0.linear_layer.weight"].shape[0]
    cfg["attention_dim"] = sd["decoder.attention_layer.query_layer.linear_layer.weight"].shape[0]
    loc = sd["decoder.attention_layer.location_layer.location_conv.conv.weight"]
    cfg["attention_location_n_filters"], _, cfg["attention_location_kernel_size"] = loc.shape
    n_mel = sd["postnet.convolutions.0.0.conv.weight"].shape[1]
    cfg["n_mel_channels"] = n_mel
    cfg["n_frames_per_step"] = sd["decoder.linear_projection.linear_layer.weight"].shape[0] // n_mel
    cfg["postnet_embedding_dim"] = sd["postnet.convolutions.0.0.conv.weight"].shape[0]
    cfg["postnet_kernel_size"] = sd["postnet.convolutions.0.0.conv.weight"].shape[2]
    cfg["postnet_n_convolutions"] = len({k.split(".")[2] for k in sd if k.startswith("postnet.convolutions.")})
    return {k: int(v) if hasattr(v, "__index__") and not isinstance(v, bool) else v for k, v in cfg.items()}
