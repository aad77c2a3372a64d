"""`tuneship train`, `tuneship evaluate` and `tuneship predict` for PyTorch checkpoints."""

from __future__ import annotations

import argparse

from ..cli import add_config_arguments, config_from_args, print_json
from ..files import write_json
from .config import TrainConfig


def run_train(args: argparse.Namespace) -> int:
    from .training import train

    config = config_from_args(TrainConfig, args, args.config)
    train(config)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from .inference import TorchClassifier, evaluate

    metrics = evaluate(TorchClassifier.from_checkpoint(args.model), args.data, batch_size=args.batch_size)
    print_json(metrics)
    if args.output:
        write_json(args.output, metrics)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from .inference import TorchClassifier

    classifier = TorchClassifier.from_checkpoint(args.model)
    pairs = None if args.text_pair is None else [args.text_pair]
    print_json(classifier.predict([args.text], pairs)[0])
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="fine-tune a model for text or text-pair classification",
        description="Fine-tune a Hugging Face model with transformers.Trainer and save a self-contained checkpoint.",
    )
    train.add_argument("--config", metavar="FILE", help="YAML or JSON file of options; flags given here override it")
    add_config_arguments(train, TrainConfig)
    train.set_defaults(run=run_train)

    evaluate = subparsers.add_parser("evaluate", help="score a checkpoint on a labelled file and print the metrics as JSON")
    evaluate.add_argument("--model", required=True, metavar="DIR", help="checkpoint folder written by `tuneship train`")
    evaluate.add_argument("--data", required=True, metavar="FILE", help="labelled CSV, TSV, JSON, JSONL or Parquet file")
    evaluate.add_argument("--output", metavar="FILE", help="also write the metrics to this JSON file")
    evaluate.add_argument("--batch-size", type=int, default=64, help="inference batch size (default: 64)")
    evaluate.set_defaults(run=run_evaluate)

    predict = subparsers.add_parser("predict", help="classify one text (or pair) and print label and probabilities as JSON")
    predict.add_argument("--model", required=True, metavar="DIR", help="checkpoint folder written by `tuneship train`")
    predict.add_argument("--text", required=True, help="the text (the first text of a pair)")
    predict.add_argument("--text-pair", help="the second text, for pair models")
    predict.set_defaults(run=run_predict)
