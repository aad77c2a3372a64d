"""`tuneship serve`, `tuneship predict` and `tuneship evaluate`.

`predict` and `evaluate` take a bundle (`--bundle`, ONNX through onnxruntime, no torch) or a
checkpoint (`--model`, PyTorch, needs the `train` extra); both go through the same code in
`serving.offline`, so their outputs have the same shape and keys.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_config_arguments, config_from_args, print_json
from ..errors import TuneshipError
from ..files import write_json
from .config import ServeConfig
from .manifest import CLASSIFICATION, PRECISIONS, QUESTION_ANSWERING, SUMMARIZATION


# Per task: the serving class a bundle loads into (onnxruntime) and the trainer class a checkpoint loads into (PyTorch).
MODELS = {
    CLASSIFICATION: ("tuneship.serving.predictor:Predictor", "tuneship.trainer.inference:TorchClassifier"),
    QUESTION_ANSWERING: ("tuneship.serving.answering:QuestionAnswerer", "tuneship.trainer.qa:TorchQuestionAnswerer"),
    SUMMARIZATION: ("tuneship.serving.summarizing:Summarizer", "tuneship.trainer.summarization:TorchSummarizer"),
}


def load_model(args: argparse.Namespace, task: str):
    """The `task` model of `--bundle` (its serving class, no torch) or of `--model` (the trainer's PyTorch class)."""
    import importlib

    if not args.bundle and (args.precision or args.threads):
        raise TuneshipError("--precision and --threads apply to --bundle only")
    module, name = MODELS[task][0 if args.bundle else 1].split(":")
    cls = getattr(importlib.import_module(module), name)
    if args.bundle:
        return cls.from_bundle(args.bundle, args.precision, args.threads)
    return cls.from_checkpoint(args.model)


def _model_id(args: argparse.Namespace) -> str:
    return f"bundle:{Path(args.bundle).resolve()}:{args.precision or 'default'}" if args.bundle else \
        f"checkpoint:{Path(args.model).resolve()}"


def run_serve(args: argparse.Namespace) -> int:
    from .server import serve

    serve(config_from_args(ServeConfig, args))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    if (args.text is None) == (args.input is None):
        raise TuneshipError("give either --text (and --text-pair) for one input, or --input FILE --output FILE")
    if args.input is not None and args.output is None:
        raise TuneshipError("--input needs --output (a .csv, .tsv or .jsonl file to write)")
    task = _task(args)
    if task != CLASSIFICATION:
        if args.text is None:
            raise TuneshipError(f"{task} models predict one input given with --text; use `tuneship evaluate` for a file")
        if task == QUESTION_ANSWERING:
            if args.text_pair is None:
                raise TuneshipError("question answering: give the question with --text and the context with --text-pair")
            print_json(load_model(args, task).answer([args.text], [args.text_pair])[0].to_dict())
        else:
            print_json({"summary": load_model(args, task).summaries([args.text])[0]})
        return 0
    classifier = load_model(args, task)
    if args.text is not None:
        pairs = None if args.text_pair is None else [args.text_pair]
        print_json(classifier.predict([args.text], pairs)[0])
        return 0
    from .offline import predict_file

    written = predict_file(classifier, args.input, args.output, args.batch_size, args.overwrite, _model_id(args))
    print(f"wrote {written}")
    return 0


def _task(args: argparse.Namespace) -> str:
    if args.bundle:
        from .manifest import BundleManifest

        return BundleManifest.load(args.bundle).task
    from ..trainer.config import checkpoint_task

    return checkpoint_task(args.model)


def run_evaluate(args: argparse.Namespace) -> int:
    from .offline import evaluate

    task = _task(args)
    if task == QUESTION_ANSWERING:  # SQuAD exact match and F1
        from .offline import evaluate_qa

        metrics = evaluate_qa(load_model(args, task), args.data)
    elif task == SUMMARIZATION:  # ROUGE-1/2/L, and the lead-3 baseline on the same documents
        from .offline import evaluate_summaries

        metrics = evaluate_summaries(load_model(args, task), args.data)
    else:
        metrics = evaluate(load_model(args, task), args.data, batch_size=args.batch_size)
    print_json(metrics)
    if args.output:
        write_json(args.output, metrics)
    return 0


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle", metavar="DIR", help="bundle folder written by `tuneship export` (ONNX, no torch)")
    source.add_argument("--model", metavar="DIR", help="checkpoint folder written by `tuneship train` (PyTorch)")
    parser.add_argument("--precision", choices=PRECISIONS, help="bundle model to use (default: the bundle's default)")
    parser.add_argument("--threads", type=int, help="onnxruntime threads (default: the cores available)")


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve", help="serve a bundle over HTTP (FastAPI on uvicorn, dynamic batching)",
        description="Serve a bundle's ONNX model over HTTP: POST /v1/classify, GET /v1/model, /healthz, /readyz, "
        "/metrics, /docs. Concurrent requests are batched by length under a token budget. Set TUNESHIP_API_KEY to "
        "require `Authorization: Bearer <key>`.",
    )
    add_config_arguments(serve, ServeConfig)
    serve.set_defaults(run=run_serve)

    predict = subparsers.add_parser(
        "predict", help="classify one text (or pair), or a whole file; answer a question; summarize a document",
        description="Classify --text (and --text-pair) and print label and probabilities as JSON, or stream "
        "--input FILE to --output FILE with a progress bar (resumes an interrupted run). Question answering: "
        "--text QUESTION --text-pair CONTEXT. Summarization: --text DOCUMENT.",
    )
    _add_model_arguments(predict)
    predict.add_argument("--text", help="the text (the first text of a pair; the question; the document)")
    predict.add_argument("--text-pair", help="the second text, for pair models (the context, for question answering)")
    predict.add_argument("--input", metavar="FILE", help="CSV, TSV, JSON Lines, JSON or Parquet file of inputs")
    predict.add_argument("--output", metavar="FILE", help="CSV, TSV or JSON Lines file to write the predictions to")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    predict.add_argument("--batch-size", type=int, default=32, help="inference batch size (default: 32)")
    predict.set_defaults(run=run_predict)

    evaluate = subparsers.add_parser(
        "evaluate", help="score a bundle or a checkpoint on a labelled file and print the metrics as JSON",
    )
    _add_model_arguments(evaluate)
    evaluate.add_argument("--data", required=True, metavar="FILE", help="labelled CSV, TSV, JSON Lines, JSON or Parquet file")
    evaluate.add_argument("--output", metavar="FILE", help="also write the metrics to this JSON file")
    evaluate.add_argument("--batch-size", type=int, default=64, help="inference batch size (default: 64)")
    evaluate.set_defaults(run=run_evaluate)
