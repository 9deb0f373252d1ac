"""Tacotron 2 as a model package (see common/model_package.py)."""
import argparse
import warnings
from typing import Any, Dict, Optional

from common.model_package import ContentItems, ModelPackage
from tacotron2 import arg_parser, data_function, metrics
from tacotron2.loss_function import Tacotron2Loss
from tacotron2.model import Tacotron2
from tacotron2.text.frontend import training_frontend


def loss(args: argparse.Namespace) -> Tacotron2Loss:
    return Tacotron2Loss(gate_pos_weight=args.gate_pos_weight, guided_attention_weight=args.guided_attention_weight,
                         guided_attention_sigma=args.guided_attention_sigma,
                         guided_attention_half_life=args.guided_attention_half_life,
                         mel_loss=args.mel_loss, real_frames=args.mel_loss_real_frames,
                         guided_attention_durations_sigma=args.guided_attention_durations_sigma)


def prepare_training(model: Tacotron2, args: argparse.Namespace) -> None:
    model.set_modes(teacher_frame_dropout=args.teacher_frame_dropout, encoder_dropout=args.p_encoder_dropout,
                    postnet_dropout=args.p_postnet_dropout)


def resolve_flags(dataset: data_function.TextMelLoader, args: argparse.Namespace) -> Dict[str, Any]:
    """--text-frontend as the checkpoints record it: `auto` resolved from the transcripts, or the flag checked
    against them (FrontendError, a ValueError, where they contradict it)."""
    kind, warning = training_frontend(args.text_frontend, [e.fields[0] for e in dataset.entries],
                                      args.training_files)
    if warning:
        warnings.warn(warning)
    return {"text_frontend": kind}


def content_items(dataset: data_function.TextMelLoader, args: argparse.Namespace) -> Optional[ContentItems]:
    if dataset.load_mel_from_disk:  # mels computed elsewhere: their wavs were checked then (preprocess_audio2mel.py)
        return None
    return ContentItems(dataset.entries, [len(t) for t in dataset.texts], 0)


PACKAGE = ModelPackage(
    name="Tacotron2", model_class=Tacotron2, add_flags=arg_parser.parse_tacotron2_args,
    config_from_args=arg_parser.config_from_args, flags_from_config=arg_parser.flags_from_config,
    config_from_weights=arg_parser.config_from_state_dict,
    signature_key="embedding.weight", loss=loss, dataset=data_function.get_data_loader,
    collate=data_function.get_collate_function, batch_to_device=data_function.batch_to_device,
    item_lengths=lambda dataset: dataset.lengths, loss_per_iteration=True, quality_metrics=metrics.score,
    health=metrics.health,
    content_items=content_items, prepare_training=prepare_training, resolve_flags=resolve_flags)
