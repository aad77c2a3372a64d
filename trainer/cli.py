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


def run_distill(args: argparse.Namespace) -> int:
    from .distillation import DistillConfig, distill

    distill(config_from_args(DistillConfig, args, args.config))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="fine-tune a model for text or text-pair classification, extractive question answering or summarization",
        description="Fine-tune a Hugging Face model with transformers.Trainer and save a self-contained checkpoint.",
    )
    train.add_argument("--config", metavar="FILE", help="YAML or JSON file of options; flags given here override it")
    add_config_arguments(train, TrainConfig)
    train.set_defaults(run=run_train)

    from .distillation import NOT_FOR_DISTILLATION, DistillConfig

    distill = subparsers.add_parser(
        "distill", help="distill a fine-tuned classifier into a student with fewer layers (faster to serve)",
        description="Train a student with --layers of the teacher's transformer layers on the teacher's soft labels and "
        "the hard labels (and on --unlabeled rows); it is a normal checkpoint for evaluate, export, serve and bench.",
    )
    distill.add_argument("--config", metavar="FILE", help="YAML or JSON file of options; flags given here override it")
    add_config_arguments(distill, DistillConfig, skip=NOT_FOR_DISTILLATION)
    distill.set_defaults(run=run_distill)
