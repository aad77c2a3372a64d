"""Inference over files for any task: `predict_file` (streaming, resumable, atomic) and `evaluate` (metrics).

Both take a model of any runtime with a `task` (a bundle's model, or a checkpoint's PyTorch model) and hand
the task's part to its serving module (`predict_rows`, `evaluate`), so a bundle is scored exactly as its
checkpoint is and every task predicts files the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .. import tasks
from ..data.records import Record, RecordReader, ResumableWriter
from ..log import get_logger

logger = get_logger(__name__)
CHUNK_ROWS = 1024


def chunks_of(reader: RecordReader, description: str) -> Iterator[list[Record]]:
    """The records of `reader` in chunks of `CHUNK_ROWS`, with a progress bar over the file's bytes."""
    from tqdm.auto import tqdm

    size = CHUNK_ROWS
    progress = tqdm(total=reader.size, unit="B", unit_scale=True, desc=description, leave=False)
    try:
        chunk: list[Record] = []
        for record in reader:
            chunk.append(record)
            if len(chunk) == size:
                yield chunk
                chunk = []
                progress.update(reader.position - progress.n)
        if chunk:
            yield chunk
        progress.update(reader.position - progress.n)
    finally:
        progress.close()


def predict_file(model, input_file: str | Path, output_file: str | Path, batch_size: int = 32,
                 overwrite: bool = False, model_id: str = "") -> Path:
    """Predict every row of `input_file` into `output_file` (CSV, TSV or JSON Lines): the input columns plus the
    task's output columns (classification: `predicted_label`, `score`, `truncated`, `probability_<label>`).

    Reads and writes in chunks, so files larger than memory work. The output appears only when complete;
    an interrupted run repeated with the same input, output and `model_id` resumes after the last chunk written.
    """
    predict_rows = tasks.get(model.task).stage("serving").predict_rows
    reader = RecordReader(input_file)
    stat = reader.path.stat()
    key = {"input": str(reader.path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "model": model_id}
    writer = ResumableWriter(output_file, key, overwrite)
    if writer.done:
        logger.info(f"{output_file}: resuming after the {writer.done} rows already written")
    try:
        for chunk in chunks_of(reader, "predicting"):
            chunk = [record for record in chunk if record.row > writer.done]
            if chunk:
                outputs = predict_rows(model, chunk, reader.path, batch_size)
                writer.write([{**r.values, **columns} for r, columns in zip(chunk, outputs)])
        return writer.finish()
    finally:
        writer.close()


def evaluate(model, data_file: str | Path, batch_size: int = 64) -> dict:
    """The task's metrics of `model` on a labelled file (classification: accuracy, F1, per class; question
    answering: exact match and F1; summarization: ROUGE and the lead-3 baseline)."""
    return tasks.get(model.task).stage("serving").evaluate(model, data_file, batch_size)
