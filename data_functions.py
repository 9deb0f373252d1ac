"""Data dispatch by model name: datasets, collate functions, batch-to-device."""
import argparse
import importlib

from models import MODEL_PACKAGES


def _data_module(model_name: str):
    if model_name not in MODEL_PACKAGES:
        raise ValueError(f"unknown model {model_name!r}; choose from {sorted(MODEL_PACKAGES)}")
    return importlib.import_module(f"{MODEL_PACKAGES[model_name]}.data_function")


def get_data_loader(model_name: str, dataset_path: str, audiopaths_and_text: str, args: argparse.Namespace):
    """The dataset of `model_name` over a filelist (the reference's name for it)."""
    return _data_module(model_name).get_data_loader(dataset_path, audiopaths_and_text, args)


def get_collate_function(model_name: str, args: argparse.Namespace):
    return _data_module(model_name).get_collate_function(args)


def get_batch_to_device(model_name: str):
    """A function collated batch, device -> Batch(x, y, n_items)."""
    return _data_module(model_name).batch_to_device
