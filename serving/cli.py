"""`tuneship serve`, `tuneship predict` and `tuneship evaluate`.

`predict` and `evaluate` take a bundle (`--bundle`, ONNX through onnxruntime, no torch) or a
checkpoint (`--model`, PyTorch, needs the `train` extra); the task's serving module does the rest
for both (`serving/<task>.py`), so their outputs have the same shape and keys.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import tasks
from ..cli import add_config_arguments, config_from_args, print_json
from ..data.records import check_text
from ..errors import TuneshipError
from ..files import write_json
from .config import ServeConfig
from .engines import RUNTIMES
from .plan import PRECISIONS


def load_model(args: argparse.Namespace) -> tuple[tasks.Task, object]:
    """The task and its model of `--bundle` (its serving class, no torch; the manifest read once) or of `--model`
    (the trainer's PyTorch class)."""
    if not args.bundle and (args.precision or args.threads or args.runtime):
        raise TuneshipError("--precision, --runtime and --threads apply to --bundle only")
    if args.bundle:
        from ..bundle import BundleManifest

        manifest = BundleManifest.load(args.bundle)
        task = tasks.get(manifest.task)
        model = task.stage("serving").from_bundle(args.bundle, args.precision or "auto", args.threads,
                                                  runtime=args.runtime or "auto", batch_size=args.batch_size,
                                                  manifest=manifest)
        for line in model.plan.describe():  # standard error: standard output is the prediction's JSON
            print(line, file=sys.stderr)
        return task, model
    from ..checkpoint import checkpoint_task  # reads config.json, imports no torch

    task = tasks.get(checkpoint_task(args.model))
    return task, task.stage("trainer").from_checkpoint(args.model)


def _model_id(args: argparse.Namespace) -> str:
    return f"bundle:{Path(args.bundle).resolve()}:{args.precision or 'auto'}:{args.runtime or 'auto'}" if args.bundle else \
        f"checkpoint:{Path(args.model).resolve()}"


def run_serve(args: argparse.Namespace) -> int:
    from .server import serve

    serve(config_from_args(ServeConfig, args))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from .offline import predict_file

    if (args.text is None) == (args.data is None):
        raise TuneshipError("give either --text (and --text-pair) for one input, or --data FILE --output FILE")
    if args.data is not None and args.output is None:
        raise TuneshipError("--data needs --output (a .csv, .tsv, .jsonl or .parquet file to write)")
    if args.engine == "ray":
        return _predict_on_ray(args)
    task, model = load_model(args)
    if args.text is not None:
        for flag, value in (("--text", args.text), ("--text-pair", args.text_pair)):
            if value is not None:
                check_text(value, flag)  # bytes that are not UTF-8 reach Python as lone surrogates
        print_json(task.stage("serving").predict_text(model, args.text, args.text_pair))
        return 0
    written = predict_file(model, args.data, args.output, args.batch_size, args.overwrite, _model_id(args),
                           args.drop_invalid)
    print(f"wrote {written}")
    return 0


def _predict_on_ray(args: argparse.Namespace) -> int:
    from .ray_data import predict_to_folder

    if not args.bundle or args.data is None:
        raise TuneshipError("--engine ray predicts files (--data, --output FOLDER) with a bundle (--bundle)")
    done = predict_to_folder(args.bundle, args.data, args.output, overwrite=args.overwrite,
                             output_format=args.output_format, address=args.address, precision=args.precision or "auto",
                             actors=args.actors, threads_per_actor=args.threads_per_actor, batch_size=args.batch_size,
                             drop_invalid=args.drop_invalid)
    print(f"wrote {done['output']}: {done['rows']} rows from {done['files']} file(s)"
          + (f", {done['skipped']} invalid row(s) skipped" if done["skipped"] else ""))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from .offline import evaluate

    metrics = evaluate(load_model(args)[1], args.data, batch_size=args.batch_size)
    print_json(metrics)
    if args.output:
        write_json(args.output, metrics)
    return 0


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle", metavar="DIR", help="bundle folder written by `tuneship export` (ONNX, no torch)")
    source.add_argument("--model", metavar="DIR", help="checkpoint folder written by `tuneship train` (PyTorch)")
    parser.add_argument("--precision", choices=("auto", *PRECISIONS),
                        help="auto (the default) plans on load: per input length, the fastest model and runtime that "
                        "passes its check on this CPU; fp32, int8 or bf16 narrows the plan to that precision")
    parser.add_argument("--runtime", choices=("auto", *RUNTIMES),
                        help="onnxruntime or openvino narrows the plan to that runtime; with --precision, forces one")
    parser.add_argument("--threads", type=int, help="onnxruntime threads (default: the cores available)")


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve", help="serve a bundle over HTTP (FastAPI on uvicorn, dynamic batching)",
        description="Serve a bundle's ONNX model over HTTP: POST /v1/classify (or /v1/answer, /v1/summarize), "
        "GET /v1/model, /healthz, /readyz, /metrics, /docs. Concurrent requests are batched by length under a token "
        "budget. Set TUNESHIP_API_KEY to require `Authorization: Bearer <key>`.",
    )
    add_config_arguments(serve, ServeConfig)
    serve.set_defaults(run=run_serve)

    predict = subparsers.add_parser(
        "predict", help="classify one text (or pair), or a whole file; answer a question; summarize a document",
        description="Predict --text (and --text-pair) and print the result as JSON, or stream --data FILE to "
        "--output FILE with a progress bar (resumes an interrupted run). Question answering: --text QUESTION "
        "--text-pair CONTEXT (files: question and context columns). Summarization: --text DOCUMENT.",
    )
    _add_model_arguments(predict)
    predict.add_argument("--text", help="the text (the first text of a pair; the question; the document)")
    predict.add_argument("--text-pair", help="the second text, for pair models (the context, for question answering)")
    predict.add_argument("--data", metavar="FILE", help="CSV, TSV, JSON Lines, JSON or Parquet file of inputs")
    predict.add_argument("--output", metavar="FILE", help="CSV, TSV, JSON Lines or Parquet file to write the predictions to")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    predict.add_argument("--batch-size", type=int, default=32, help="inference batch size (default: 32)")
    predict.add_argument("--drop-invalid", action="store_true",
                         help="skip rows whose input is missing or not valid text (counted) instead of stopping")
    engine = predict.add_argument_group("past one machine (--engine ray: Ray Data; needs the `ray` extra)")
    engine.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local (this process), or ray: --data is a file, folder or glob (local, s3://, gs://), "
                        "--output a folder of Parquet or JSON Lines files")
    engine.add_argument("--address", help="the Ray cluster to join (auto, ray://host:10001); default: a local one")
    engine.add_argument("--actors", type=int, default=1, help="actors, each with its own model (default: 1)")
    engine.add_argument("--threads-per-actor", type=int, default=1,
                        help="onnxruntime threads (and Ray CPUs) per actor (default: 1)")
    engine.add_argument("--output-format", choices=("parquet", "jsonl"), default="parquet",
                        help="--engine ray: the files written under --output (default: parquet)")
    predict.set_defaults(run=run_predict)

    evaluate = subparsers.add_parser(
        "evaluate", help="score a bundle or a checkpoint on a labelled file and print the metrics as JSON",
    )
    _add_model_arguments(evaluate)
    evaluate.add_argument("--data", required=True, metavar="FILE", help="labelled CSV, TSV, JSON Lines, JSON or Parquet file")
    evaluate.add_argument("--output", metavar="FILE", help="also write the metrics to this JSON file")
    evaluate.add_argument("--batch-size", type=int, default=32, help="inference batch size (default: 32, as predict)")
    evaluate.set_defaults(run=run_evaluate)
