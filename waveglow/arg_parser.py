"""Command-line flags of WaveGlow (the reference's names and defaults) and its config."""
import argparse
import dataclasses
from typing import Any, Dict
from common.flag_types import COUNT, POSITIVE


@dataclasses.dataclass(frozen=True)
class WaveGlowConfig:
    """WaveGlow's architecture flags; field names equal the argparse dests."""
    n_mel_channels: int = 80
    flows: int = 12
    groups: int = 8
    early_every: int = 4
    early_size: int = 2
    wn_layers: int = 8
    wn_kernel_size: int = 3
    wn_channels: int = 512

    def model_config(self) -> Dict[str, Any]:
        """The `WaveGlow(**config)` dict, as stored in checkpoints."""
        return {"n_mel_channels": self.n_mel_channels, "n_flows": self.flows, "n_group": self.groups,
                "n_early_every": self.early_every, "n_early_size": self.early_size,
                "WN_config": {"n_layers": self.wn_layers, "kernel_size": self.wn_kernel_size,
                              "n_channels": self.wn_channels}}


def config_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    """The model's constructor dict, read field by field from the parsed flags."""
    return WaveGlowConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(WaveGlowConfig)}).model_config()


def flags_from_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """The flags (dest -> value) that build `config`: config_from_args's inverse. Raises KeyError."""
    wn = config["WN_config"]
    return {"n_mel_channels": config["n_mel_channels"], "flows": config["n_flows"], "groups": config["n_group"],
            "early_every": config["n_early_every"], "early_size": config["n_early_size"],
            "wn_layers": wn["n_layers"], "wn_kernel_size": wn["kernel_size"], "wn_channels": wn["n_channels"]}


def parse_waveglow_args(parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add WaveGlow's flags to `parent` and return it."""
    d = WaveGlowConfig()
    parser = parent
    parser.add_argument("--n-mel-channels", default=d.n_mel_channels, type=COUNT, help="mel channels")
    g = parser.add_argument_group("WaveGlow parameters")
    g.add_argument("--flows", default=d.flows, type=COUNT, help="number of flows")
    g.add_argument("--groups", default=d.groups, type=COUNT, help="samples per group")
    g.add_argument("--early-every", default=d.early_every, type=COUNT, help="flows between early outputs")
    g.add_argument("--early-size", default=d.early_size, type=COUNT, help="channels output early")
    g = parser.add_argument_group("WN parameters")
    g.add_argument("--wn-kernel-size", default=d.wn_kernel_size, type=COUNT, help="WN kernel size")
    g.add_argument("--wn-channels", default=d.wn_channels, type=COUNT,
                   help="WN residual channels (512; NVIDIA's published model uses 256)")
    g.add_argument("--wn-layers", default=d.wn_layers, type=COUNT, help="WN layers per flow")
    g = parser.add_argument_group("WaveGlow training")
    g.add_argument("--sigma", default=1.0, type=POSITIVE, help="standard deviation of the latent in the loss")
    g.add_argument("--segment-length", default=4000, type=COUNT, help="audio samples per training item")
    return parser


def config_from_state_dict(state_dict: Dict[str, Any], base: Dict[str, Any] = None) -> Dict[str, Any]:
    """Architecture read off a checkpoint's tensor shapes (for files without a `config`).

    NVIDIA's published WaveGlow has 256 WN channels; this reads that (and every other size) from
    the weights instead of trusting defaults. Works before and after weight-norm removal.
    """
    sd = state_dict
    n_flows = len({k.split(".")[1] for k in sd if k.startswith("convinv.")})
    sizes = [sd[f"convinv.{k}.conv.weight"].shape[0] for k in range(n_flows)]
    drops = [k for k in range(1, n_flows) if sizes[k] < sizes[k - 1]]
    n_early_every = drops[0] if drops else n_flows
    n_early_size = sizes[0] - sizes[drops[0]] if drops else 2
    start = sd.get("WN.0.start.weight_v", sd.get("WN.0.start.weight"))
    in0 = sd.get("WN.0.in_layers.0.weight_v", sd.get("WN.0.in_layers.0.weight"))
    n_layers = len({k.split(".")[3] for k in sd if k.startswith("WN.0.in_layers.")})
    return {"n_mel_channels": int(sd["upsample.weight"].shape[0]), "n_flows": n_flows, "n_group": int(sizes[0]),
            "n_early_every": n_early_every, "n_early_size": int(n_early_size),
            "WN_config": {"n_layers": n_layers, "kernel_size": int(in0.shape[2]), "n_channels": int(start.shape[0])}}
