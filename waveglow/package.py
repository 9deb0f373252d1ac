"""WaveGlow as a model package (see common/model_package.py)."""
import argparse

from common.model_package import ContentItems, ModelPackage
from waveglow import arg_parser, data_function, metrics
from waveglow.loss_function import WaveGlowLoss
from waveglow.model import WaveGlow


def loss(args: argparse.Namespace) -> WaveGlowLoss:
    return WaveGlowLoss(sigma=args.sigma)


def content_items(dataset: data_function.MelAudioLoader, args: argparse.Namespace) -> ContentItems:
    return ContentItems(dataset.entries, None, args.segment_length)


PACKAGE = ModelPackage(
    name="WaveGlow", model_class=WaveGlow, add_flags=arg_parser.parse_waveglow_args,
    config_from_args=arg_parser.config_from_args, config_from_weights=arg_parser.config_from_state_dict,
    signature_key="upsample.weight", loss=loss, dataset=data_function.get_data_loader,
    collate=data_function.get_collate_function, batch_to_device=data_function.batch_to_device,
    dataset_per_epoch=True, content_items=content_items, quality_metrics=metrics.score)
