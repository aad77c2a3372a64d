"""Summarization examples: documents with their reference summaries, read from CSV / TSV / JSON Lines / Parquet.

The columns are found by name (`document`, `article`, `text`, ... and `summary`, `highlights`,
`tldr`, ...) unless given. Errors name the file, row and column. `lead()` is the lead-N baseline
(the document's first N sentences), the yardstick every summarizer is reported against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .records import RecordReader, field_value

DOCUMENT_COLUMNS = ("document", "article", "text", "source", "dialogue", "content", "input")
SUMMARY_COLUMNS = ("summary", "highlights", "tldr", "abstract", "target", "reference")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass
class SummaryExample:
    """One document and its reference summary (empty when only documents are given)."""

    id: str
    document: str
    summary: str = ""


def _column(names, wanted: str | None, candidates: tuple[str, ...], path: Path, role: str) -> str | None:
    if wanted is not None:
        if wanted not in names:
            raise DataError(f"{path}: no column {wanted!r} for the {role} (it has {', '.join(map(repr, names))})")
        return wanted
    lowered = {name.lower(): name for name in names}
    return next((lowered[c] for c in candidates if c in lowered), None)


def read_summaries(path: str | Path, document_column: str | None = None, summary_column: str | None = None,
                   require_summary: bool = True, split: str = "train") -> tuple[list[SummaryExample], tuple[str, str | None]]:
    """Every row of `path` as a `SummaryExample`, checked (no empty document; no empty summary when required),
    and the (document, summary) column names used."""
    reader = RecordReader(path, split)
    path = reader.path
    examples: list[SummaryExample] = []
    columns: tuple[str, str | None] | None = None
    for record in reader:
        if columns is None:
            names = list(record.values)
            document = _column(names, document_column, DOCUMENT_COLUMNS, path, "documents")
            summary = _column(names, summary_column, SUMMARY_COLUMNS, path, "summaries")
            if document is None:
                raise DataError(f"{path}: no document column (looked for {', '.join(DOCUMENT_COLUMNS)}; it has "
                                f"{', '.join(map(repr, names))}); name it with --text-column")
            if summary is None and require_summary:
                raise DataError(f"{path}: no summary column (looked for {', '.join(SUMMARY_COLUMNS)}; it has "
                                f"{', '.join(map(repr, names))}); name it with --label-column")
            columns = (document, summary)
        text = str(field_value(record, columns[0], path))
        if not text.strip():
            raise DataError(f"{path}: row {record.row}, column {columns[0]!r}: the document is empty")
        reference = ""
        if columns[1] is not None and (require_summary or record.values.get(columns[1]) not in (None, "")):
            reference = str(field_value(record, columns[1], path))
            if require_summary and not reference.strip():
                raise DataError(f"{path}: row {record.row}, column {columns[1]!r}: the summary is empty")
        examples.append(SummaryExample(str(record.values.get("id") or record.row), text, reference))
    if columns is None:
        raise DataError(f"{path}: no rows found")
    return examples, columns


def sentences(text: str) -> list[str]:
    """Split `text` into sentences at ., ! or ? followed by space and a capital letter or digit."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def lead(document: str, n: int = 3) -> str:
    """The lead-`n` baseline: the first `n` sentences of `document`."""
    return " ".join(sentences(document)[:n])


def trim_generated(tokens: list[int], eos_token_id: int, pad_token_id: int) -> list[int]:
    """Generated ids cut after the end token, padding dropped (what both ONNX and PyTorch generation return)."""
    if eos_token_id in tokens:
        tokens = tokens[: tokens.index(eos_token_id) + 1]
    return [t for t in tokens if t != pad_token_id or t == eos_token_id]
