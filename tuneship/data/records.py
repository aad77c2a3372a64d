"""One reader for every input: CSV, TSV, JSON (records, `{"data": [...]}` or columns), JSON Lines, Parquet and
Hub datasets, as records numbered from 1; and resumable, atomic writes of record files.

Training, evaluation, prediction, the export's calibration and the Gradio batch tab all read through
`RecordReader`, so a file that trains also evaluates, and every error names the file, the row (data rows
count from 1; the header is not a row) and the column. CSV, TSV, JSON Lines and Parquet are streamed, so
files larger than memory work. Outputs go to `OUTPUT.partial` with a progress file beside it and are
renamed to `OUTPUT` at the end: an interrupted job run again with the same input and output resumes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from ..errors import DataError, TuneshipError, require
from ..files import write_json

READ_FORMATS = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
WRITE_FORMATS = (".csv", ".tsv", ".jsonl", ".parquet")
HUB_NAME = re.compile(r"^[\w.-]+(/[\w.-]+)?(:[\w.-]+)?$")  # owner/name or owner/name:config
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents are legitimate inputs


@dataclass
class Record:
    """One input row: `row` counts data rows from 1 (the header is not a row), as error messages do."""

    row: int
    values: dict


# Binary formats a text file's name may hide, by their first bytes: what the file is, and what to do.
MAGIC = ((b"PAR1", "a Parquet file", "name it .parquet"),
         (b"PK\x03\x04", "a zip archive (an .xlsx workbook is one)", "save the sheet as CSV, or unzip it"),
         (b"\x1f\x8b", "a gzip archive", "decompress it"))


def _first_invalid_utf8(path: Path) -> DataError:
    """The error naming the line and character of the first byte of `path` that is not UTF-8 (or, for a binary
    file under a text file's name, what it is)."""
    raw = path.read_bytes()
    for magic, what, fix in MAGIC:
        if raw.startswith(magic):
            return DataError(f"{path}: this is {what} (it starts with {magic!r}), not {path.suffix or 'text'}; {fix}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        return DataError(f"{path}: line {line}, character {column} is not valid UTF-8 (byte 0x{raw[error.start]:02x}); "
                         "save the file as UTF-8 and try again")
    return DataError(f"{path}: not valid UTF-8; save the file as UTF-8 and try again")


class RecordReader:
    """Iterate over the records of a file or a Hub dataset; `position` and `size` (bytes) drive a progress bar.

    Args:
        source (`str` or `Path`): a `.csv`, `.tsv`, `.json`, `.jsonl` or `.parquet` file, or a Hub dataset named
            `owner/name` or `owner/name:config` (needs the `datasets` package and a connection).
        split (`str`, defaults to `"train"`): the split of a Hub dataset.

    Example:
        >>> rows = [record.values for record in RecordReader("examples/tickets/train.csv")]  # doctest: +SKIP
    """

    def __init__(self, source: str | Path, split: str = "train"):
        self.source = str(source)
        self.path = Path(source)
        self.split = split
        self.format = self.path.suffix.lower()
        self.hub = False
        self._binary: IO[bytes] | None = None
        self._remote = None  # (pyarrow filesystem, path) for s3://, gs://, hdfs:// ... sources
        if "://" in self.source:
            self._open_remote()
            return
        if self.path.is_dir():
            raise DataError(f"{self.path}: is a folder; give a data file ({', '.join(READ_FORMATS)})")
        exists = self.path.is_file()
        if not exists and self.format not in READ_FORMATS and HUB_NAME.match(self.source):
            self.hub = True
        elif self.format not in READ_FORMATS:
            raise DataError(f"{self.path}: unsupported file type {self.format or '(none)'!r}; "
                            f"use one of {', '.join(READ_FORMATS)}")
        elif not exists:
            raise DataError(f"{self.path}: no such file")
        self.size = 0 if self.hub else self.path.stat().st_size

    def _open_remote(self) -> None:
        """A file on object storage (`s3://`, `gs://`, ...), read with pyarrow's file systems."""
        fs_module = require("pyarrow.fs", "train")
        if self.format not in READ_FORMATS:
            raise DataError(f"{self.source}: unsupported file type {self.format or '(none)'!r}; "
                            f"use one of {', '.join(READ_FORMATS)}")
        try:
            filesystem, path = fs_module.FileSystem.from_uri(self.source)
            info = filesystem.get_file_info(path)
        except Exception as error:  # noqa: BLE001 - unknown scheme, credentials, network: the user's to fix
            raise DataError(f"{self.source}: could not be opened: {error}") from None
        if info.type != fs_module.FileType.File:
            raise DataError(f"{self.source}: no such file")
        self._remote = (filesystem, path)
        self.size = info.size

    def _open(self):
        if self._remote is not None:
            filesystem, path = self._remote
            return filesystem.open_input_stream(path)
        return open(self.path, "rb")

    @property
    def position(self) -> int:
        return self._binary.tell() if self._binary is not None and not self._binary.closed else self.size

    def __iter__(self) -> Iterator[Record]:
        if self.hub:
            yield from self._hub()
            return
        if self.size == 0:
            raise DataError(f"{self.path}: the file is empty")
        if self.format == ".parquet":
            yield from self._parquet()
            return
        try:
            opened = self._open()
        except OSError as error:  # permissions, a folder, a file gone since the check
            raise DataError(f"{self.source}: could not be opened ({error.strerror or error})") from None
        with opened as binary:
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
                if self._remote is not None:
                    raise DataError(f"{self.source}: not valid UTF-8 ({error.reason}); save the file as UTF-8") from None
                raise _first_invalid_utf8(self.path) from None

    def _delimited(self, text: IO[str]) -> Iterator[Record]:
        reader = csv.reader(text, delimiter="\t" if self.format == ".tsv" else ",", strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{self.path}: the file is empty") from None
        except csv.Error as error:
            raise DataError(f"{self.path}: the header could not be read: {error}") from None
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise DataError(f"{self.path}: the header names column(s) {', '.join(map(repr, repeated))} more than once; "
                            "give every column its own name")
        row = 0
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                if "unexpected end of data" in str(error):  # strict: a quote left open swallows the rest of the file
                    raise DataError(f"{self.path}: row {row + 1} (line {line}) opens a quote that is never closed") from None
                raise DataError(f"{self.path}: row {row + 1} (line {line}) could not be read: {error}") from None
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
            except RecursionError:
                raise DataError(f"{self.path}: line {number} is JSON nested too deeply to read") from None
            if not isinstance(values, dict):
                raise DataError(f"{self.path}: line {number} is not a JSON object")
            yield Record(row, values)

    def _json(self, text: IO[str]) -> Iterator[Record]:
        try:
            payload = json.load(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{self.path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
        except RecursionError:
            raise DataError(f"{self.path}: the JSON is nested too deeply to read") from None
        if isinstance(payload, dict) and isinstance(payload.get("data"), list):
            payload = payload["data"]  # {"data": [...]}, as SQuAD and many exports have it
        if isinstance(payload, dict) and payload and all(isinstance(v, list) for v in payload.values()):
            lengths = {name: len(values) for name, values in payload.items()}
            if len(set(lengths.values())) > 1:
                raise DataError(f"{self.path}: the columns have different lengths "
                                f"({', '.join(f'{k}: {v}' for k, v in lengths.items())})")
            payload = [dict(zip(payload, values)) for values in zip(*payload.values())]
        if not isinstance(payload, list) or not all(isinstance(values, dict) for values in payload):
            raise DataError(f"{self.path}: expected a list of records, {{\"data\": [records]}} or a mapping of columns "
                            "to lists")
        for row, values in enumerate(payload, start=1):
            yield Record(row, values)

    def _parquet(self) -> Iterator[Record]:
        parquet = require("pyarrow.parquet", "train")
        row = 0
        try:
            batches = parquet.ParquetFile(self._open() if self._remote else self.path).iter_batches(batch_size=1024)
            for batch in batches:
                for values in batch.to_pylist():
                    row += 1
                    yield Record(row, values)
        except (OSError, ValueError) as error:  # pyarrow's ArrowIOError is an OSError, its ArrowInvalid a ValueError
            where = f" after row {row}" if row else ""
            raise DataError(f"{self.path}: could not be read as Parquet{where} (damaged or not Parquet): {error}") from None

    def _hub(self) -> Iterator[Record]:
        datasets = require("datasets", "train")
        repo, _, subset = self.source.partition(":")
        try:
            dataset = datasets.load_dataset(repo, subset or None, split=self.split)
        except Exception as error:  # noqa: BLE001 - network, auth and naming errors all end here
            raise DataError(
                f"{self.source!r} is not a file here, and the Hub dataset {repo!r} (split {self.split!r}) could not be "
                f"loaded: {type(error).__name__}: {error}. Check the path or the dataset name and your connection; "
                "with HF_HUB_OFFLINE=1 only datasets already in the cache load."
            ) from None
        for row, values in enumerate(dataset, start=1):
            yield Record(row, dict(values))


def read_records(source: str | Path, split: str = "train") -> list[Record]:
    """Every record of `source` (see `RecordReader`), in order."""
    return list(RecordReader(source, split))


def column_names(records: list[Record]) -> list[str]:
    """The columns of `records` in the order they first appear (a CSV's header order)."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(map(str, record.values)))
    return list(names)


def is_missing(value) -> bool:
    """None, NaN, or a string of whitespace only."""
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    return isinstance(value, str) and not value.strip()


def check_text(value: str, where: str) -> str:
    """`value`, or an error naming `where` when it is not valid Unicode (a lone surrogate from a JSON escape)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{where} holds text that is not valid Unicode (a lone surrogate such as \\ud800)") from None
    return value


def field_value(record: Record, column: str, source: Path | str, allow_empty: bool = True):
    """The value in `column` of `record` (a string, number or boolean), or a DataError naming file, row and column."""
    if column not in record.values:
        raise DataError(f"{source}: row {record.row} has no column {column!r} (it has {', '.join(map(repr, record.values))})")
    value = record.values[column]
    if value is None or (not allow_empty and is_missing(value)):
        raise DataError(f"{source}: row {record.row}, column {column!r} is empty or missing")
    if isinstance(value, (dict, list)):
        raise DataError(f"{source}: row {record.row}, column {column!r} holds a {type(value).__name__}, not text")
    if isinstance(value, str):
        check_text(value, f"{source}: row {record.row}, column {column!r}")
    return value


def cell_text(value):
    """A value as a CSV cell: a nested one (a JSON Lines input's list or object) as JSON, not as Python's repr."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


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
        """Append `records` and make them durable, with the progress that lets a rerun skip them (a Parquet
        output is written as JSON Lines until `finish`, since a Parquet file cannot be appended to)."""
        if not records:
            return
        if self.format in (".jsonl", ".parquet"):
            for values in records:
                self._text.write(json.dumps(values, ensure_ascii=False) + "\n")
        else:
            if self._csv is None:
                fresh = self.done == 0  # a resumed output has its header already
                if self.fields is None:
                    self.fields = list(records[0])
                delimiter = "\t" if self.format == ".tsv" else ","
                self._csv = csv.DictWriter(self._text, self.fields, delimiter=delimiter, extrasaction="ignore")
                if fresh:
                    self._csv.writeheader()
            self._csv.writerows([{k: cell_text(v) for k, v in values.items()} for values in records])
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done += len(records)
        write_json(self.progress_file, {"key": self.key, "records": self.done, "bytes": self._file.tell(),
                                        "fields": self.fields})

    def finish(self) -> Path:
        self._text.close()
        if self.format == ".parquet":  # the JSON Lines written so far, as one Parquet file beside it, then in place
            json_reader, parquet = require("pyarrow.json", "train"), require("pyarrow.parquet", "train")
            converted = self.path.with_name(self.path.name + ".partial.parquet")
            table = json_reader.read_json(self.partial) if self.done else require("pyarrow", "train").table({})
            parquet.write_table(table, converted)
            os.replace(converted, self.path)
            self.partial.unlink(missing_ok=True)
        else:
            os.replace(self.partial, self.path)
        self.progress_file.unlink(missing_ok=True)
        return self.path

    def close(self) -> None:
        """Stop without finishing: the partial output and its progress stay for a rerun to resume."""
        if not self._text.closed:
            self._text.close()

    def discard(self) -> None:
        """Remove the partial output and its progress file (when nothing was written that a rerun could keep)."""
        self.close()
        self.partial.unlink(missing_ok=True)
        self.progress_file.unlink(missing_ok=True)
