"""WaveGlow as a model package (see common/model_package.py)."""
import argparse
from typing import Any, Dict

from common.model_package import ContentItems, ModelPackage
from waveglow import arg_parser, data_function, metrics
from waveglow.loss_function import WaveGlowLoss
from waveglow.model import UPSAMPLE_STRIDE, WaveGlow


def loss(args: argparse.Namespace) -> WaveGlowLoss:
    return WaveGlowLoss(sigma=args.sigma)


def resolve_flags(dataset: data_function.MelAudioLoader, args: argparse.Namespace) -> Dict[str, Any]:
    """Refuse audio settings WaveGlow cannot follow: its upsampler turns each mel frame into a fixed number of
    samples (256), so mels of another hop would be stretched or squeezed silently."""
    if args.hop_length != UPSAMPLE_STRIDE:
        raise ValueError(f"--hop-length {args.hop_length}: WaveGlow's upsampler makes {UPSAMPLE_STRIDE} samples of "
                         f"each mel frame, so it trains and vocodes only mels of hop {UPSAMPLE_STRIDE} (keep the "
                         "default, or vocode such mels with Griffin-Lim)")
    return {}


def content_items(dataset: data_function.MelAudioLoader, args: argparse.Namespace) -> ContentItems:
    return ContentItems(dataset.entries, None, args.segment_length)


PACKAGE = ModelPackage(
    name="WaveGlow", model_class=WaveGlow, add_flags=arg_parser.parse_waveglow_args,
    config_from_args=arg_parser.config_from_args, flags_from_config=arg_parser.flags_from_config,
    config_from_weights=arg_parser.config_from_state_dict,
    signature_key="upsample.weight", loss=loss, dataset=data_function.get_data_loader,
    collate=data_function.get_collate_function, batch_to_device=data_function.batch_to_device,
    dataset_per_epoch=True, content_items=content_items, quality_metrics=metrics.score,
    resolve_flags=resolve_flags)
