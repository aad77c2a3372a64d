"""Streaming reads and resumable, atomic writes of record files (CSV, TSV, JSON Lines; Parquet with pyarrow).

Inference over files never holds the whole file in memory: records are read in chunks, and the
output is written to `OUTPUT.partial` with a progress file next to it, renamed to `OUTPUT` at the
end. An interrupted job run again with the same input and output continues where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from ..errors import DataError, TuneshipError, require
from ..files import write_json

READ_FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
WRITE_FORMATS = (".csv", ".tsv", ".jsonl")
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents are legitimate inputs


@dataclass
class Record:
    """One input row: `row` counts data rows from 1 (the header is not a row), as error messages do."""

    row: int
    values: dict


class RecordReader:
    """Iterate over a file's records; `position` and `size` (bytes) drive a progress bar."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = self.path.suffix.lower()
        if self.format not in READ_FORMATS:
            raise DataError(f"{self.path}: unsupported file type {self.format or '(none)'}; use one of {', '.join(READ_FORMATS)}")
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such file")
        self.size = self.path.stat().st_size
        self._binary: IO[bytes] | None = None

    @property
    def position(self) -> int:
        return self._binary.tell() if self._binary is not None and not self._binary.closed else self.size

    def __iter__(self) -> Iterator[Record]:
        if self.format == ".parquet":
            yield from self._parquet()
            return
        with open(self.path, "rb") as binary:
            self._binary = binary
            text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
            try:
                if self.format in (".csv", ".tsv"):
                    yield from self._delimited(text)
                elif self.format == ".jsonl":
                    yield from self._json_lines(text)
                else:
                    yield from self._json(text)
            except UnicodeDecodeError as error:
                raise DataError(f"{self.path}: not valid UTF-8 near byte {binary.tell()}: {error.reason}; "
                                "save the file as UTF-8") from None

    def _delimited(self, text: IO[str]) -> Iterator[Record]:
        reader = csv.reader(text, delimiter="\t" if self.format == ".tsv" else ",")
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{self.path}: the file is empty") from None
        except csv.Error as error:
            raise DataError(f"{self.path}: the header could not be read: {error}") from None
        row = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise DataError(f"{self.path}: row {row + 1} could not be read: {error}") from None
            if not cells:
                continue
            row += 1
            if len(cells) != len(header):
                raise DataError(f"{self.path}: row {row} has {len(cells)} fields but the header has {len(header)}")
            yield Record(row, dict(zip(header, cells)))

    def _json_lines(self, text: IO[str]) -> Iterator[Record]:
        row = 0
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            row += 1
            try:
                values = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{self.path}: line {number} is not valid JSON: {error.msg}") from None
            if not isinstance(values, dict):
                raise DataError(f"{self.path}: line {number} is not a JSON object")
            yield Record(row, values)

    def _json(self, text: IO[str]) -> Iterator[Record]:
        try:
            payload = json.load(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{self.path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
        if not isinstance(payload, list) or not all(isinstance(values, dict) for values in payload):
            raise DataError(f"{self.path}: expected a list of JSON objects (for large files use JSON Lines)")
        for row, values in enumerate(payload, start=1):
            yield Record(row, values)

    def _parquet(self) -> Iterator[Record]:
        parquet = require("pyarrow.parquet", "train")
        row = 0
        for batch in parquet.ParquetFile(self.path).iter_batches(batch_size=1024):
            for values in batch.to_pylist():
                row += 1
                yield Record(row, values)


def field_value(record: Record, column: str, source: Path, allow_empty: bool = True):
    """The value in `column` of `record` (a string, number or boolean), or a DataError naming file, row and column."""
    if column not in record.values:
        raise DataError(f"{source}: row {record.row} has no column {column!r} (it has {', '.join(map(repr, record.values))})")
    value = record.values[column]
    if value is None or (not allow_empty and isinstance(value, str) and not value.strip()):
        raise DataError(f"{source}: row {record.row}, column {column!r} is empty or missing")
    if isinstance(value, (dict, list)):
        raise DataError(f"{source}: row {record.row}, column {column!r} holds a {type(value).__name__}, not text")
    return value


class ResumableWriter:
    """Write records to `OUTPUT.partial`, checkpointing progress after each chunk; `finish()` renames it.

    `key` identifies the job (input file, model...): a partial output left by the same job is resumed,
    any other is discarded.
    """

    def __init__(self, path: str | Path, key: dict, overwrite: bool = False):
        self.path = Path(path)
        self.format = self.path.suffix.lower()
        if self.format not in WRITE_FORMATS:
            raise TuneshipError(f"{self.path}: unsupported output type {self.format or '(none)'}; "
                                f"use one of {', '.join(WRITE_FORMATS)}")
        if self.path.exists() and not overwrite:
            raise TuneshipError(f"{self.path} already exists; pass --overwrite to replace it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.progress_file = self.path.with_name(self.path.name + ".progress.json")
        self.key = key
        self.done, offset, self.fields = self._previous_progress()
        self._file = open(self.partial, "r+b" if offset else "wb")
        self._file.truncate(offset)
        self._file.seek(offset)
        self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="", write_through=True)
        self._csv = None

    def _previous_progress(self) -> tuple[int, int, list[str] | None]:
        try:
            progress = json.loads(self.progress_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0, 0, None
        if (progress.get("key") != self.key or not self.partial.is_file()
                or self.partial.stat().st_size < progress.get("bytes", 0)):
            return 0, 0, None
        return int(progress["records"]), int(progress["bytes"]), progress.get("fields")

    def write(self, records: list[dict]) -> None:
        """Append `records` and make them durable, with the progress that lets a rerun skip them."""
        if not records:
            return
        if self.format == ".jsonl":
            for values in records:
                self._text.write(json.dumps(values, ensure_ascii=False) + "\n")
        else:
            if self._csv is None:
                fresh = self.fields is None
                if fresh:
                    self.fields = list(records[0])
                delimiter = "\t" if self.format == ".tsv" else ","
                self._csv = csv.DictWriter(self._text, self.fields, delimiter=delimiter, extrasaction="ignore")
                if fresh:
                    self._csv.writeheader()
            self._csv.writerows(records)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done += len(records)
        write_json(self.progress_file, {"key": self.key, "records": self.done, "bytes": self._file.tell(),
                                        "fields": self.fields})

    def finish(self) -> Path:
        self._text.close()
        os.replace(self.partial, self.path)
        self.progress_file.unlink(missing_ok=True)
        return self.path

    def close(self) -> None:
        """Stop without finishing: the partial output and its progress stay for a rerun to resume."""
        if not self._text.closed:
            self._text.close()
