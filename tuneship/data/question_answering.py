"""Extractive QA examples: read from SQuAD-format JSON, or CSV / JSON Lines / Parquet / Hub rows, and checked.

Everything is read by the one `RecordReader`; a SQuAD file's records are its articles, whose paragraphs are
flattened here into questions. Rows need `context` and `question`, and for training or scoring the answers, either as an `answers`
field (`{"text": [...], "answer_start": [...]}`, or that as a JSON string, as in Hugging Face's
`squad`) or as `answer_text` and `answer_start` columns. An `id` column is optional. Errors name the
file and the question id (SQuAD JSON) or row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .records import Record, RecordReader, field_value


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


def _squad_article(article: Record, path: Path, require_answers: bool, count: int) -> list[QAExample]:
    """The questions of one SQuAD article (`{"title", "paragraphs": [{"context", "qas": [...]}]}`)."""
    paragraphs = article.values.get("paragraphs")
    if not isinstance(paragraphs, list):
        raise DataError(f'{path}: article {article.row} has no "paragraphs" list')
    examples = []
    for paragraph in paragraphs:
        for qa in paragraph.get("qas", []):
            where = f"{path}: question {qa.get('id', '?')!r}"
            answers = [(str(a.get("text", "")), int(a.get("answer_start", -1))) for a in qa.get("answers", [])]
            example = QAExample(str(qa.get("id", count + len(examples))), str(qa.get("question", "")),
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


def read_qa_examples(path: str | Path, require_answers: bool = True, split: str = "train") -> list[QAExample]:
    """Every question in `path` (SQuAD JSON, rows in any format `RecordReader` reads, or a Hub dataset), checked:
    non-empty context and question, and answers that sit in their context at their `answer_start`."""
    reader = RecordReader(path, split)
    path = reader.path
    examples: list[QAExample] = []
    for record in reader:
        if "paragraphs" in record.values:
            examples += _squad_article(record, path, require_answers, len(examples))
            continue
        example = QAExample(str(record.values.get("id") or record.row),
                            str(field_value(record, "question", path)), str(field_value(record, "context", path)),
                            _row_answers(record, path))
        examples.append(_check(example, f"{path}: row {record.row}", require_answers))
    if not examples:
        raise DataError(f'{path}: no questions found; expected SQuAD JSON ({{"data": [{{"paragraphs": [{{"context", '
                        f'"qas"}}]}}]}}) or rows with question, context and answers')
    return examples
