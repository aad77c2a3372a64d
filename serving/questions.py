"""Extractive QA examples: read from SQuAD-format JSON, or CSV / JSON Lines / Parquet rows, and checked.

Rows need `context` and `question`, and for training or scoring the answers, either as an `answers`
field (`{"text": [...], "answer_start": [...]}`, or that as a JSON string, as in Hugging Face's
`squad`) or as `answer_text` and `answer_start` columns. An `id` column is optional. Errors name the
file and the question id (SQuAD JSON) or row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .records import RecordReader, field_value


@dataclass
class QAExample:
    """One question on one context, with its gold answers as (text, character start) pairs."""

    id: str
    question: str
    context: str
    answers: list[tuple[str, int]] = field(default_factory=list)


def _check(example: QAExample, where: str, require_answers: bool) -> QAExample:
    if not example.context.strip():
        raise DataError(f"{where}: the context is empty")
    if not example.question.strip():
        raise DataError(f"{where}: the question is empty")
    if require_answers and not example.answers:
        raise DataError(f"{where}: no answer given (answers need a text and its character start in the context)")
    for text, start in example.answers:
        if not text.strip():
            raise DataError(f"{where}: an answer text is empty")
        if example.context[start : start + len(text)] != text:
            found = example.context.find(text)
            hint = f"; it occurs at character {found}" if found >= 0 else "; it does not occur in the context at all"
            raise DataError(f"{where}: answer {text!r} is not at character {start} of its context{hint}")
    return example


def _squad(path: Path, require_answers: bool) -> list[QAExample]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f'{path}: expected SQuAD JSON, {{"data": [{{"paragraphs": [{{"context", "qas"}}]}}]}}')
    examples = []
    for article in document["data"]:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                where = f"{path}: question {qa.get('id', '?')!r}"
                answers = [(str(a.get("text", "")), int(a.get("answer_start", -1))) for a in qa.get("answers", [])]
                example = QAExample(str(qa.get("id", len(examples))), str(qa.get("question", "")),
                                    str(paragraph.get("context", "")), answers)
                examples.append(_check(example, where, require_answers))
    return examples


def _row_answers(record, path: Path) -> list[tuple[str, int]]:
    values = record.values
    if values.get("answers") not in (None, ""):
        answers = values["answers"]
        if isinstance(answers, str):
            try:
                answers = json.loads(answers)
            except json.JSONDecodeError:
                raise DataError(f"{path}: row {record.row}, column 'answers' is not JSON "
                                '(expected {"text": [...], "answer_start": [...]})') from None
        if not isinstance(answers, dict) or not {"text", "answer_start"} <= set(answers):
            raise DataError(f"{path}: row {record.row}, column 'answers' needs 'text' and 'answer_start' lists")
        return [(str(t), int(s)) for t, s in zip(answers["text"], answers["answer_start"])]
    if values.get("answer_text") not in (None, ""):
        start = values.get("answer_start")
        try:
            return [(str(values["answer_text"]), int(start))]
        except (TypeError, ValueError):
            raise DataError(f"{path}: row {record.row}, column 'answer_start' must be a character offset, "
                            f"not {start!r}") from None
    return []


def read_qa_examples(path: str | Path, require_answers: bool = True) -> list[QAExample]:
    """Every question in `path` (SQuAD JSON, or rows), checked: non-empty context and question, and answers
    that sit in their context at their `answer_start`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() == ".json" and path.read_text(encoding="utf-8", errors="replace").lstrip().startswith("{"):
        examples = _squad(path, require_answers)
    else:
        examples = []
        for record in RecordReader(path):
            example = QAExample(str(record.values.get("id") or record.row),
                                str(field_value(record, "question", path)), str(field_value(record, "context", path)),
                                _row_answers(record, path))
            examples.append(_check(example, f"{path}: row {record.row}", require_answers))
    if not examples:
        raise DataError(f"{path}: no questions found")
    return examples
