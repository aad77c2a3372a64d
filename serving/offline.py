"""Inference over files: `predict_file` (streaming, resumable) and `evaluate` (metrics).

Both take any classifier with `columns`, `label_names`, `positive_label_id` and
`predict(texts, text_pairs, batch_size)`: a serving `Predictor` (ONNX bundle) or the trainer's
`TorchClassifier` (checkpoint), so a bundle is scored exactly as its checkpoint is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..columns import label_text
from ..errors import DataError
from ..metrics import classification_metrics
from ..squad import squad_metrics
from .records import Record, RecordReader, ResumableWriter, field_value

CHUNK_ROWS = 1024


def _chunks(reader: RecordReader, size: int) -> Iterator[list[Record]]:
    chunk = []
    for record in reader:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _inputs(classifier, records: list[Record], source: Path, allow_empty: bool):
    columns = classifier.columns
    texts = [str(field_value(r, columns.text, source, allow_empty)) for r in records]
    pairs = [str(field_value(r, columns.text_pair, source, allow_empty)) for r in records] if columns.is_pair else None
    return texts, pairs


def _progress(reader: RecordReader, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=reader.size, unit="B", unit_scale=True, desc=description, leave=False)


def prediction_columns(prediction: dict) -> dict:
    """A prediction as flat output columns (the same in CSV and JSON Lines)."""
    columns = {"predicted_label": prediction["label"], "score": prediction["score"], "truncated": prediction["truncated"]}
    columns.update({f"probability_{name}": p for name, p in prediction["probabilities"].items()})
    return columns


def predict_file(classifier, input_file: str | Path, output_file: str | Path, batch_size: int = 32,
                 overwrite: bool = False, model_id: str = "") -> Path:
    """Classify every row of `input_file` into `output_file` (CSV, TSV or JSON Lines): the input columns
    plus `predicted_label`, `score`, `truncated` and one `probability_<label>` column per class.

    Reads and writes in chunks, so files larger than memory work. The output appears only when complete;
    an interrupted run repeated with the same input, output and `model_id` resumes after the last chunk written.
    """
    reader = RecordReader(input_file)
    stat = reader.path.stat()
    key = {"input": str(reader.path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "model": model_id}
    writer = ResumableWriter(output_file, key, overwrite)
    if writer.done:
        print(f"{output_file}: resuming after the {writer.done} rows already written")
    progress = _progress(reader, "predicting")
    try:
        for chunk in _chunks(reader, CHUNK_ROWS):
            chunk = [record for record in chunk if record.row > writer.done]
            if chunk:
                texts, pairs = _inputs(classifier, chunk, reader.path, allow_empty=True)
                predictions = classifier.predict(texts, pairs, batch_size=batch_size)
                writer.write([{**r.values, **prediction_columns(p)} for r, p in zip(chunk, predictions)])
            progress.update(reader.position - progress.n)
        return writer.finish()
    finally:
        writer.close()
        progress.close()


def evaluate(classifier, data_file: str | Path, batch_size: int = 64) -> dict:
    """Score `classifier` on a labelled file: accuracy, macro F1, per-class figures (see `tuneship.metrics`)."""
    reader = RecordReader(data_file)
    label2id = {name: i for i, name in enumerate(classifier.label_names)}
    label_column = classifier.columns.label
    labels, predicted = [], []
    progress = _progress(reader, "evaluating")
    try:
        for chunk in _chunks(reader, CHUNK_ROWS):
            texts, pairs = _inputs(classifier, chunk, reader.path, allow_empty=False)
            for record in chunk:
                value = label_text(field_value(record, label_column, reader.path, allow_empty=False))
                if value not in label2id:
                    raise DataError(f"{reader.path}: row {record.row}, column {label_column!r} has label {value!r} "
                                    f"never seen in training; the known labels are {', '.join(map(repr, label2id))}")
                labels.append(label2id[value])
            predicted += [label2id[p["label"]] for p in classifier.predict(texts, pairs, batch_size=batch_size)]
            progress.update(reader.position - progress.n)
    finally:
        progress.close()
    if not labels:
        raise DataError(f"{reader.path}: no rows to evaluate")
    return classification_metrics(labels, predicted, classifier.label_names, classifier.positive_label_id)


def squad_score(examples, answers) -> dict:
    """SQuAD exact match and F1 (percent) of `answers` against the examples' gold answers."""
    return squad_metrics({e.id: a.text for e, a in zip(examples, answers)},
                         {e.id: [text for text, _ in e.answers] for e in examples})


def evaluate_qa(answerer, data_file: str | Path) -> dict:
    """Exact match and F1 of any QA answerer (`answer_examples`: a bundle's or a checkpoint's) on a labelled file."""
    from .questions import read_qa_examples

    examples = read_qa_examples(data_file)
    return squad_score(examples, answerer.answer_examples(examples))


def lead3_scores(examples) -> dict[str, float]:
    """ROUGE of the lead-3 baseline (each document's first three sentences) against the examples' summaries, as
    `lead3_rouge1`, `lead3_rouge2`, `lead3_rougeL`: the yardstick printed next to every summarizer's scores."""
    from ..rouge import rouge
    from .documents import lead

    scores = rouge([lead(e.document) for e in examples], [e.summary for e in examples])
    return {f"lead3_{name}": value for name, value in scores.items()}


def evaluate_summaries(summarizer, data_file: str | Path, batch_size: int = 8) -> dict:
    """ROUGE-1/2/L of any summarizer (`summaries(documents)`: a bundle's or a checkpoint's) on a file of documents
    and reference summaries, next to the lead-3 baseline on the same documents, with a few examples."""
    from tqdm.auto import tqdm

    from ..rouge import rouge
    from .documents import read_summaries

    examples, _ = read_summaries(data_file)
    summaries: list[str] = []
    for start in tqdm(range(0, len(examples), batch_size), desc="summarizing", unit="batch"):
        summaries += summarizer.summaries([e.document for e in examples[start : start + batch_size]])
    references = [e.summary for e in examples]
    return {**rouge(summaries, references), **lead3_scores(examples), "num_examples": len(examples),
            "examples": [{"summary": s, "reference": r} for s, r in zip(summaries[:3], references[:3])]}
