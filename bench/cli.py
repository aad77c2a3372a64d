"""`tuneship bench`: time and score a checkpoint and its bundle on every backend, side by side."""

from __future__ import annotations

import argparse

from ..cli import add_config_arguments, config_from_args
from .config import BenchConfig


def run_bench(args: argparse.Namespace) -> int:
    from .benchmark import benchmark
    from .report import markdown

    result = benchmark(config_from_args(BenchConfig, args, args.config))
    print(markdown(result))
    print(f"wrote {result.output / 'bench.json'}, bench.md and bench.png")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench", help="compare PyTorch, ONNX fp32, ONNX int8 (and OpenVINO): latency, throughput, size, memory, accuracy",
        description="Benchmark a checkpoint and the bundle exported from it on this machine: PyTorch eager fp32 and "
        "dynamic int8, ONNX fp32 and int8 on onnxruntime, and OpenVINO on the fp32 ONNX file when installed. Each "
        "backend runs in its own process with the same thread count; they take turns so that noise hits all alike.",
    )
    bench.add_argument("--config", metavar="FILE", help="options from a YAML or JSON file; flags override it")
    add_config_arguments(bench, BenchConfig)
    bench.set_defaults(run=run_bench)
