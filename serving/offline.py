"""Inference over files for any task: `predict_file` (streaming, resumable, atomic) and `evaluate` (metrics).

Both take a model of any runtime with a `task` (a bundle's model, or a checkpoint's PyTorch model) and hand
the task's part to its serving module (`predict_rows`, `evaluate`), so a bundle is scored exactly as its
checkpoint is and every task predicts files the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .. import tasks
from ..data.records import Record, RecordReader, ResumableWriter, field_value
from ..errors import DataError
from ..log import get_logger

logger = get_logger(__name__)
CHUNK_ROWS = 1024


def chunks_of(reader: RecordReader, description: str) -> Iterator[list[Record]]:
    """The records of `reader` in chunks of `CHUNK_ROWS`, with a progress bar: the share of the file read (a stream
    has no row count until its end), the rows done and rows per second."""
    import time

    from tqdm.auto import tqdm

    size = CHUNK_ROWS
    progress = tqdm(total=reader.size, desc=description, leave=False,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]")
    started, rows = time.perf_counter(), 0

    def advance(done: int) -> None:
        rate = done / max(time.perf_counter() - started, 1e-9)
        progress.update(reader.position - progress.n)
        progress.set_postfix_str(f"{done} rows, {rate:.0f} rows/s")  # drawn once per chunk of rows

    try:
        chunk: list[Record] = []
        for record in reader:
            chunk.append(record)
            if len(chunk) == size:
                yield chunk
                rows += len(chunk)
                chunk = []
                advance(rows)
        if chunk:
            yield chunk
            rows += len(chunk)
        advance(rows)
    finally:
        progress.close()


def _input_fields(reader: RecordReader) -> list[str] | None:
    """Every key of a JSON Lines, JSON or Parquet input, in order of first appearance (a CSV's header is enough):
    a CSV output of records with different keys keeps them all."""
    if reader.format in (".csv", ".tsv"):
        return None
    names: dict[str, None] = {}
    for record in RecordReader(reader.source, reader.split):
        names.update(dict.fromkeys(map(str, record.values)))
    return list(names)


def _checked(records: list[Record], columns: list[str], source: Path, drop_invalid: bool) -> tuple[list[Record], list[str]]:
    """The records whose input columns hold text (others raise, or with `drop_invalid` are left out and named)."""
    kept, dropped = [], []
    for record in records:
        try:
            for column in columns:
                field_value(record, column, source)
        except DataError as error:
            if not drop_invalid:
                raise
            dropped.append(str(error))
            continue
        kept.append(record)
    return kept, dropped


def predict_file(model, input_file: str | Path, output_file: str | Path, batch_size: int = 32,
                 overwrite: bool = False, model_id: str = "", drop_invalid: bool = False) -> Path:
    """Predict every row of `input_file` into `output_file` (CSV, TSV or JSON Lines): the input columns plus the
    task's output columns (classification: `predicted_label`, `score`, `truncated`, `probability_<label>`).

    Reads and writes in chunks, so files larger than memory work. The output appears only when complete;
    an interrupted run repeated with the same input, output and `model_id` resumes after the last chunk written.
    A row whose input is missing, empty or not valid text stops the job naming the file, row and column, or with
    `drop_invalid` is skipped and counted. An input column named like an output column is refused by name.
    """
    serving = tasks.get(model.task).stage("serving")
    reader = RecordReader(input_file)
    stat = reader.path.stat()
    key = {"input": str(reader.path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "model": model_id}
    writer = ResumableWriter(output_file, key, overwrite)
    if writer.done:
        logger.info(f"{output_file}: resuming after the {writer.done} rows already written")
    fields = _input_fields(reader) if writer.format != ".jsonl" and writer.fields is None else None
    columns = serving.input_columns(model)
    predicted, dropped = 0, []
    try:
        for chunk in chunks_of(reader, "predicting"):
            chunk = [record for record in chunk if record.row > writer.done]
            chunk, skipped = _checked(chunk, columns, reader.path, drop_invalid)
            dropped += skipped
            if not chunk:
                continue
            outputs = serving.predict_rows(model, chunk, reader.path, batch_size)
            clash = sorted(set(outputs[0]) & set(fields or chunk[0].values))
            if clash:
                raise DataError(f"{reader.path}: input column(s) {', '.join(map(repr, clash))} would be overwritten by "
                                f"the predictions ({', '.join(outputs[0])}); rename them and run again")
            if fields is not None:
                writer.fields, fields = [*fields, *outputs[0]], None
            writer.write([{**r.values, **columns} for r, columns in zip(chunk, outputs)])
            predicted += len(chunk)
        written = writer.finish()
    finally:
        writer.close()
        if writer.done == 0:  # nothing to resume: no half output, no progress file left behind
            writer.discard()
    if dropped:
        logger.warning(f"skipped {len(dropped)} invalid row(s) (--drop-invalid); the first: {dropped[0]}")
    if predicted == 0 and writer.done == 0:
        logger.warning(f"{reader.path}: 0 rows to predict; {written} has none")
    return written


def evaluate(model, data_file: str | Path, batch_size: int = 32) -> dict:
    """The task's metrics of `model` on a labelled file (classification: accuracy, F1, per class; question
    answering: exact match and F1; summarization: ROUGE and the lead-3 baseline)."""
    return tasks.get(model.task).stage("serving").evaluate(model, data_file, batch_size)
