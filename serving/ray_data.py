"""Batch prediction past one machine, on Ray Data: a bundle's model in a pool of actors over files or a Dataset.

    tuneship predict --bundle B --data 'comments/*.parquet' --output predictions/ --engine ray \
        [--address auto] [--actors 4] [--threads-per-actor 2] [--batch-size 64]

Files (a file, a folder, a glob; local, or on object storage as `s3://...` or `gs://...`) are read by tuneship's
own reader, one read task per file, so rows keep their numbers and a bad row is named as `tuneship predict` names
it (file, row, column). Each actor loads the model once, with onnxruntime threads from the CPUs Ray gives it,
and predicts batches with the same code as `predict --data`, so the outputs (input columns, `predicted_label`,
`score`, `truncated`, `probability_<label>`) are those of the local path. The output folder is written beside
its final place and renamed into it at the end: never half-written there.
"""

from __future__ import annotations

import glob
from pathlib import Path

from .. import tasks
from ..bundle import BundleManifest
from ..data.records import READ_FORMATS, Record, RecordReader, field_value
from ..errors import DataError, TuneshipError, require
from ..files import write_directory_atomically
from ..log import get_logger

logger = get_logger(__name__)
ROW, FILE, ERROR = "__tuneship_row", "__tuneship_file", "__tuneship_error"
BLOCK_ROWS = 4096
OUTPUT_FORMATS = ("parquet", "jsonl")


def input_files(inputs: str | Path | list) -> list[str]:
    """The data files named by `inputs`: files, folders (their data files, sorted) and globs; URIs as they are."""
    found: list[str] = []
    for item in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
        item = str(item)
        if "://" in item:
            found.append(item)
        elif Path(item).is_dir():
            found += sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lower() in READ_FORMATS and p.is_file())
        elif any(c in item for c in "*?["):
            found += sorted(p for p in glob.glob(item, recursive=True) if Path(p).suffix.lower() in READ_FORMATS)
        else:
            found.append(item)
    if not found:
        raise DataError(f"{inputs}: no data files ({', '.join(READ_FORMATS)}) found")
    return found


def read_files(paths: list[str]):
    """A `ray.data.Dataset` of the files' records, with each row's file and number (`__tuneship_file`, `__tuneship_row`)."""
    ray_data = require("ray.data", "ray")
    pyarrow = require("pyarrow", "ray")
    from ray.data.block import BlockMetadata

    def blocks(path: str):
        def read():
            reader, chunk = RecordReader(path), []
            for record in reader:
                chunk.append(record)
                if len(chunk) == BLOCK_ROWS:
                    yield _table(pyarrow, chunk, path)
                    chunk = []
            if chunk:
                yield _table(pyarrow, chunk, path)
        return read

    class Files(ray_data.Datasource):
        def estimate_inmemory_data_size(self) -> int:
            return sum(RecordReader(path).size for path in paths)

        def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
            return [ray_data.ReadTask(blocks(path), BlockMetadata(num_rows=None, size_bytes=RecordReader(path).size,
                                                                  exec_stats=None, input_files=(path,)))
                    for path in paths]

    for path in paths:
        RecordReader(path)  # a missing or unsupported file is an error now, not inside a task
    # Reading reserves no CPU: the actors hold the CPUs they predict with, and reading must not wait for them.
    return ray_data.read_datasource(Files(), ray_remote_args={"num_cpus": 0})


def _table(pyarrow, records: list[Record], path: str):
    names = list(dict.fromkeys(key for record in records for key in record.values))
    rows = [{**{name: record.values.get(name) for name in names}, ROW: record.row, FILE: path} for record in records]
    return pyarrow.Table.from_pylist(rows)


class BatchPredictor:
    """A Ray Data actor: the bundle's model loaded once, predicting batches (`pyarrow.Table`) of records."""

    def __init__(self, bundle: str, precision: str, threads: int, batch_size: int):
        manifest = BundleManifest.load(bundle)  # read once, passed down
        self.serving = tasks.get(manifest.task).stage("serving")
        self.model = self.serving.from_bundle(bundle, precision, threads, manifest=manifest)
        self.columns = self.serving.input_columns(self.model)
        self.batch_size = batch_size

    def __call__(self, table):
        import pyarrow

        rows = table.to_pylist()
        kept, errors = [], {}
        for index, row in enumerate(rows):
            record = Record(row[ROW], {k: v for k, v in row.items() if k not in (ROW, FILE)})
            try:
                for column in self.columns:
                    field_value(record, column, row[FILE])
            except DataError as error:  # reported by the driver: it skips the row, or stops before writing
                errors[index] = str(error)
                continue
            kept.append((index, record))
        outputs = self.serving.predict_rows(self.model, [r for _, r in kept], rows[0][FILE], self.batch_size) if kept else []
        by_index = dict(zip((i for i, _ in kept), outputs))
        names = list(outputs[0]) if outputs else []
        result = [{**row, **by_index.get(i, dict.fromkeys(names)), ERROR: errors.get(i)} for i, row in enumerate(rows)]
        return pyarrow.Table.from_pylist(result)


def predict_dataset(bundle: str | Path, dataset, *, precision: str = "auto", actors: int = 1, threads_per_actor: int = 1,
                    batch_size: int = 64):
    """Predict every row of `dataset` (a `ray.data.Dataset` with the model's input columns, or files: see
    `input_files`) in a pool of `actors` actors, each with `threads_per_actor` onnxruntime threads (and as many CPUs
    from Ray). Returns a Dataset of the input columns, the predictions, and `__tuneship_error` (why a row could not be
    predicted: missing or invalid input; its predictions are empty); rows read from files also keep
    `__tuneship_file` and `__tuneship_row`.

    Example:
        >>> import ray
        >>> predicted = predict_dataset("runs/relevance-onnx", "comments/*.parquet", actors=4)  # doctest: +SKIP
        >>> predicted.filter(lambda row: row["predicted_label"] == "relevant").count()  # doctest: +SKIP
    """
    ray_data = require("ray.data", "ray")
    if not isinstance(dataset, ray_data.Dataset):
        dataset = read_files(input_files(dataset))
    if actors < 1 or threads_per_actor < 1 or batch_size < 1:
        raise TuneshipError("actors, threads_per_actor and batch_size must be at least 1")
    return dataset.map_batches(
        BatchPredictor, fn_constructor_kwargs={"bundle": str(bundle), "precision": precision, "threads": threads_per_actor,
                                               "batch_size": batch_size},
        batch_size=batch_size, batch_format="pyarrow", concurrency=actors, num_cpus=threads_per_actor,
    )


def predict_to_folder(bundle: str | Path, inputs, output: str | Path, *, overwrite: bool = False,
                      output_format: str = "parquet", address: str | None = None, drop_invalid: bool = False,
                      **options) -> dict:
    """`predict_dataset` over files, written to the folder `output` (Parquet or JSON Lines files) atomically. A row
    that cannot be predicted stops the job before anything is written, naming its file, row and column, or with
    `drop_invalid` is skipped and counted. Returns counts: rows written and rows skipped."""
    ray = require("ray", "ray")
    output = Path(output)
    if output_format not in OUTPUT_FORMATS:
        raise TuneshipError(f"--output-format must be one of {', '.join(OUTPUT_FORMATS)}, not {output_format!r}")
    if output.exists() and not overwrite:
        raise TuneshipError(f"{output} already exists; pass --overwrite to replace it")
    files = input_files(inputs)
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the output rows in the input's order
    context.enable_progress_bars = True
    counts = {"rows": 0, "skipped": 0}

    def write(staging: Path) -> None:  # an empty input writes no file: still an output folder
        predicted = predict_dataset(bundle, read_files(files), **options).materialize()
        skipped = predicted.filter(lambda row: row[ERROR] is not None)
        counts["skipped"] = skipped.count()
        if counts["skipped"] and not drop_invalid:
            raise DataError(f"{skipped.take(1)[0][ERROR]} ({counts['skipped']} row(s) cannot be predicted; fix them, "
                            "or pass --drop-invalid to skip them)")
        if counts["skipped"]:
            logger.warning(f"skipped {counts['skipped']} invalid row(s) (--drop-invalid); the first: "
                           f"{skipped.take(1)[0][ERROR]}")
        kept = predicted.filter(lambda row: row[ERROR] is None).drop_columns([ERROR, ROW, FILE])
        counts["rows"] = kept.count()
        if output_format == "parquet":
            kept.write_parquet(str(staging))
        else:
            kept.write_json(str(staging))

    try:
        write_directory_atomically(output, write)
    except Exception as error:  # noqa: BLE001 - a task's DataError reaches us wrapped in Ray's exception
        cause = _cause(error)
        if isinstance(cause, TuneshipError):
            raise type(cause)(str(cause)) from None
        raise
    return {**counts, "files": len(files), "output": str(output)}


def _cause(error: BaseException) -> BaseException:
    """The user-facing error inside Ray's wrappers (RayTaskError keeps the task's exception as `cause`)."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, TuneshipError):
            return error
        inner = getattr(error, "cause", None) or error.__cause__
        if inner is None:
            return error
        error = inner
    return error
