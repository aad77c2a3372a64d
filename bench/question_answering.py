"""The benchmark's question-answering parts: one window of an exact token length per input, calls to time, answer
spans to score."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.question_answering import QAExample, read_qa_examples
from ..encoding import pad_encodings
from ..metrics.question_answering import squad_score
from ..serving.question_answering import QuestionAnswerer
from ..spans import Answer, windows_of
from .inputs import make_inputs as make_texts


def serving_model(session, bundle: Path, manifest, precision: str) -> QuestionAnswerer:
    """The bundle's answerer on `session` (onnxruntime's, or OpenVINO's behind the same `run` call)."""
    from tokenizers import Tokenizer

    return QuestionAnswerer(session, Tokenizer.from_file(str(bundle / "tokenizer.json")), manifest, precision)


def sized(model, max_length: int):
    """`model` (either runtime's answerer) reading windows of `max_length` tokens, with a stride to match."""
    clone = copy.copy(model)
    clone.settings = {**model.settings, "max_length": max_length}
    if max_length != model.settings["max_length"]:
        clone.settings["doc_stride"] = min(model.settings["doc_stride"], max_length // 4)  # short windows, short stride
    return clone


def end_to_end(model, questions: Sequence[str], contexts: Sequence[str] | None):
    """Raw strings in, answer spans out."""
    return model.answer(questions, contexts)


def predictions(model, questions: Sequence[str], contexts: Sequence[str] | None) -> list:
    """(start, end) answer spans, for scoring."""
    return [(a.start, a.end) for a in model.answer(questions, contexts)]


def model_inputs(model, questions: Sequence[str], contexts: Sequence[str] | None) -> dict[str, np.ndarray]:
    """The padded windows the model itself reads (cut once, for the model-only timings)."""
    windows, _ = windows_of([QAExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, contexts))],
                            model.tokenizer, model.settings["max_length"], model.settings["doc_stride"])
    return pad_encodings(windows, model.input_names, model.pad_id)


def make_inputs(words: Sequence[str], seq_len: int, batch_size: int, bundle: Path, manifest):
    """`batch_size` (question, context) inputs that each make exactly one window of `seq_len` tokens: a short
    question, and a context cut where the bundle's tokenizer fills the window."""
    from tokenizers import Tokenizer

    from ..spans import context_range, encode_windows

    tokenizer = Tokenizer.from_file(str(Path(bundle) / "tokenizer.json"))
    questions, contexts = make_texts(words, seq_len, batch_size, is_pair=True)
    questions = [" ".join(q.split()[:6]) + "?" for q in questions]
    cut = []
    for question, context in zip(questions, contexts):
        window = encode_windows(tokenizer, question, context, seq_len, doc_stride=min(8, seq_len // 4))[0]
        cut.append(context[: window.offsets[context_range(window)[1]][1]])
    return questions, cut


def read_rows(data: str, manifest, limit: int) -> tuple[list[str], list[str], list[QAExample]]:
    """The first `limit` questions of `data`: (questions, contexts, examples)."""
    examples = read_qa_examples(data, split="validation")[:limit]
    return [e.question for e in examples], [e.context for e in examples], examples


def score(outputs: list, rows: tuple, manifest) -> dict:
    """Exact match and F1 of predicted spans against the examples' gold answers."""
    examples = rows[2]
    answers = [Answer(e.context[start:end], start, end, 0.0) for e, (start, end) in zip(examples, outputs)]
    scores = squad_score(examples, answers)
    return {"exact_match": scores["exact_match"], "f1": scores["f1"]}
