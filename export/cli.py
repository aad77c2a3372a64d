"""`tuneship export`: checkpoint to an ONNX bundle with fp32 and int8 models."""

from __future__ import annotations

import argparse

from ..cli import add_config_arguments, config_from_args
from .config import ExportConfig


def run_export(args: argparse.Namespace) -> int:
    from .exporting import export

    config = config_from_args(ExportConfig, args)
    result = export(config)
    return 1 if config.strict and config.quantize != "none" and not result.int8_passed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="export a checkpoint to optimized fp32 and int8 ONNX models, with parity gates",
        description="Export a fine-tuned checkpoint to ONNX with Optimum, fuse and quantize it, check that it predicts "
        "what PyTorch predicts, and write a self-contained bundle for serving.",
    )
    add_config_arguments(export, ExportConfig)
    export.set_defaults(run=run_export)
