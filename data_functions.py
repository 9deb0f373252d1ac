"""Data dispatch by model name (the reference's function names): look-ups in the registry of models.py."""
import argparse

from models import package


def get_data_loader(model_name: str, dataset_path: str, audiopaths_and_text: str, args: argparse.Namespace):
    """The dataset of `model_name` over a filelist (the reference's name for it)."""
    return package(model_name).dataset(dataset_path, audiopaths_and_text, args)


def get_collate_function(model_name: str, args: argparse.Namespace):
    return package(model_name).collate(args)


def get_batch_to_device(model_name: str):
    """A function collated batch, device -> Batch(x, y, n_items)."""
    return package(model_name).batch_to_device
