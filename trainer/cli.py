"""`tuneship train` (`predict` and `evaluate` live in `serving.cli`: they take a checkpoint or a bundle)."""

from __future__ import annotations

import argparse

from ..cli import add_config_arguments, config_from_args
from .config import TrainConfig


def run_train(args: argparse.Namespace) -> int:
    from .training import train

    config = config_from_args(TrainConfig, args, args.config)
    train(config)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="fine-tune a model for text or text-pair classification, or extractive question answering",
        description="Fine-tune a Hugging Face model with transformers.Trainer and save a self-contained checkpoint.",
    )
    train.add_argument("--config", metavar="FILE", help="YAML or JSON file of options; flags given here override it")
    add_config_arguments(train, TrainConfig)
    train.set_defaults(run=run_train)
