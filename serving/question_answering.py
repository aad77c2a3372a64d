"""Extractive question answering on onnxruntime: the manifest's `Settings`, `QuestionAnswerer`, and file
evaluation. No torch.

The file functions take any answerer with `answer_examples` (a bundle's `QuestionAnswerer` or the trainer's
`TorchQuestionAnswerer`), so a bundle is scored exactly as its checkpoint is.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..bundle import BundleManifest, ManifestError, TaskSettings
from ..data.question_answering import QAExample, read_qa_examples
from ..data.records import Record, field_value
from ..encoding import TOKENIZER_FILE
from ..metrics.question_answering import squad_score
from ..spans import SpanAnswerer
from ..tasks import QUESTION_ANSWERING
from .plan import Plan, make_plan


@dataclass
class Settings(TaskSettings):
    """The question-answering part of a manifest: the input columns, and how contexts are windowed and answered."""

    task: ClassVar[str] = QUESTION_ANSWERING

    doc_stride: int
    max_answer_length: int
    n_best: int = 20
    question_column: str = "question"
    context_column: str = "context"

    @property
    def input_columns(self) -> list[str]:
        return [self.question_column, self.context_column]

    def check(self, where: str) -> None:
        for name in ("doc_stride", "max_answer_length", "n_best"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ManifestError(f"{where}: field 'settings.{name}' must be a positive whole number, not {value!r}")


class QuestionAnswerer(SpanAnswerer):
    """Answer questions from a context with a bundle's fp32 or int8 ONNX model.

    Example:
        >>> qa = QuestionAnswerer.from_bundle("runs/squad-onnx")  # doctest: +SKIP
        >>> qa.answer(["When was it built?"], ["The bridge was built in 1932."])[0].to_dict()  # doctest: +SKIP
        {'answer': '1932', 'start': 24, 'end': 28, 'score': 0.93}
    """

    task = QUESTION_ANSWERING
    plan: Plan | None = None  # set by `from_bundle`: which runtime and model serve, and why

    def __init__(self, session, tokenizer, manifest: BundleManifest, precision: str):
        self.session = session
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.precision = precision
        settings = manifest.task_settings(Settings)
        self.settings = {"max_length": manifest.max_length, **settings.to_dict()}
        pad_id = tokenizer.token_to_id("[PAD]")
        self.pad_id = 0 if pad_id is None else pad_id
        self.input_names = [i.name for i in session.get_inputs()]

    @classmethod
    def from_bundle(cls, path: str | Path, precision: str | None = "auto", threads: int | None = None,
                    spinning: bool | str = True, runtime: str | None = "auto", batch_size: int = 32,
                    plan_cache: bool = True, manifest: BundleManifest | None = None) -> "QuestionAnswerer":
        """Load `path` served by its plan on this CPU (see `serving.plan`): windows are padded to the longest in a
        batch, so one candidate serves every length (a fixed-width one pads every window to max length).
        `precision` and `runtime` narrow the choice."""
        from tokenizers import Tokenizer

        path = Path(path)
        manifest = BundleManifest.load(path, QUESTION_ANSWERING, loaded=manifest)
        manifest.task_settings(Settings)
        tokenizer = Tokenizer.from_file(str(path / TOKENIZER_FILE))
        return make_plan(path, manifest, precision, runtime, threads, spinning,
                         lambda session, name: cls(session, tokenizer, manifest, name), golden_outputs, golden_agreement,
                         batch_sizes=[batch_size], buckets=[manifest.max_length], cache=plan_cache, granule=None)

    def window_logits(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.session.run(None, arrays)[:2]
        return start, end


from_bundle = QuestionAnswerer.from_bundle


def golden_outputs(answerer, rows: list[list[str]]) -> np.ndarray:
    """The answer span (start, end characters) of each golden (question, context) row."""
    return np.array([[a.start, a.end] for a in answerer.answer([r[0] for r in rows], [r[1] for r in rows])])


def golden_agreement(expected: np.ndarray, found: np.ndarray) -> tuple[float, float]:
    """The share of golden questions answered with the same span, and the difference: none where every span is the
    same, unbounded where one is not (a span is right or wrong: never a near tie)."""
    same = (expected == found).all(axis=-1)
    return float(np.mean(same)), 0.0 if same.all() else math.inf


def predict_text(answerer, question: str, context: str | None = None) -> dict:
    """The best answer to `question` in `context`: answer, start, end, score."""
    from ..errors import TuneshipError

    if context is None:
        raise TuneshipError("question answering: give the question with --text and the context with --text-pair")
    return answerer.answer([question], [context])[0].to_dict()


def input_columns(answerer) -> list[str]:
    """The columns a file to predict must have: the question and the context."""
    return ["question", "context"]


def predict_rows(answerer, records: list[Record], source: Path, batch_size: int = 32) -> list[dict]:
    """The output columns of each record (its `question` and `context`): `answer`, `answer_start`, `answer_end`,
    `score`."""
    examples = [QAExample(str(r.row), str(field_value(r, "question", source, allow_empty=False)),
                          str(field_value(r, "context", source, allow_empty=False))) for r in records]
    return [{"answer": a.text, "answer_start": a.start, "answer_end": a.end, "score": a.score}
            for a in answerer.answer_examples(examples)]


def evaluate(answerer, data_file: str | Path, batch_size: int = 32) -> dict:
    """Exact match and F1 of any QA answerer (`answer_examples`: a bundle's or a checkpoint's) on a labelled file."""
    examples = read_qa_examples(data_file, split="validation")
    return squad_score(examples, answerer.answer_examples(examples))
