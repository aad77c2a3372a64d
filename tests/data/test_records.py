"""The one reader: every format and JSON shape, read the same by training, evaluation and prediction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import pair_rows, write_csv
from tuneship.data.records import RecordReader, read_records
from tuneship.errors import DataError
from tuneship.serving import Predictor, evaluate, predict_file
from tuneship.trainer.classification import load_classification_data


def json_shapes(tmp_path, rows: list[dict]) -> dict:
    """The same rows as JSON records, as `{"data": [...]}`, and as a mapping of columns to lists."""
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    shapes = {"records": rows, "data": {"data": rows, "version": "1"}, "columns": columns}
    for name, payload in shapes.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(payload))
    return {name: tmp_path / f"{name}.json" for name in shapes}


def test_every_json_shape_reads_as_the_same_records(tmp_path):
    rows = pair_rows(6)
    for name, path in json_shapes(tmp_path, rows).items():
        assert [r.values for r in read_records(path)] == rows, name
        assert [r.row for r in read_records(path)] == list(range(1, 7)), name


def test_a_file_that_trains_also_evaluates_and_predicts(tmp_path, pair_bundle):
    """Training, `evaluate` and `predict` read with the same reader, so no shape trains but fails to evaluate."""
    predictor = Predictor.from_bundle(pair_bundle, "fp32")
    rows = pair_rows(12)
    for name, path in json_shapes(tmp_path, rows).items():
        data = load_classification_data(str(path))
        assert len(data.train) + len(data.validation) == 12, name
        assert evaluate(predictor, path)["num_examples"] == 12, name
        written = predict_file(predictor, path, tmp_path / f"{name}.out.jsonl")
        assert len(written.read_text().splitlines()) == 12, name


def refused(path: Path, text: str, message: str) -> None:
    """`text` written to `path` and read: a DataError matching `message` (a regular expression)."""
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_records(path)


def test_bad_shapes_and_headers_are_named(tmp_path):
    refused(tmp_path / "uneven.json", json.dumps({"text": ["a", "b"], "label": ["x"]}),
            r"uneven\.json: the columns have different lengths \(text: 2, label: 1\)")
    refused(tmp_path / "scalar.json", "3", r"scalar\.json: expected a list of records")
    refused(tmp_path / "twice.csv", "text,label,text\na,b,c\n",
            r"twice\.csv: the header names column\(s\) 'text' more than once")


def test_a_quote_left_open_is_named_with_its_row_not_swallowed(tmp_path):
    # a lenient reader reads rows 2-3 into row 1's second cell and says nothing
    refused(tmp_path / "last.csv", 'sentence1,label\nfine,"0\nnext,1\nthird,0\n',
            r"last\.csv: row 1 \(line 2\) opens a quote that is never closed")
    refused(tmp_path / "first.csv", 'sentence1,label\nok,1\n"open,0\nthird,0\n',
            r"first\.csv: row 2 \(line 3\) opens a quote that is never closed")
    refused(tmp_path / "stray.csv", 'sentence1,label\n"quoted" then text,1\n', r"stray\.csv: row 1 \(line 2\) could not be read")
    multiline = tmp_path / "multiline.csv"  # a closed quote may hold line breaks and quotes
    multiline.write_text('sentence1,label\n"two\nlines, ""quoted""",1\nnext,0\n')
    assert [r.values["sentence1"] for r in RecordReader(multiline)] == ['two\nlines, "quoted"', "next"]


def test_a_file_that_cannot_be_opened_is_named_not_a_traceback(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "locked.csv", pair_rows(2))
    monkeypatch.setattr(RecordReader, "_open", lambda self: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    with pytest.raises(DataError, match=r"locked\.csv: could not be opened \(Permission denied\)"):
        read_records(path)


def test_csv_rows_keep_their_numbers_and_progress_is_in_bytes(tmp_path):
    path = write_csv(tmp_path / "d.csv", pair_rows(5))
    reader = RecordReader(path)
    assert [r.row for r in reader] == [1, 2, 3, 4, 5] and reader.position == reader.size == path.stat().st_size


def test_a_hub_name_goes_to_the_hub_for_every_task():
    """Offline, a Hub dataset fails with the same clear error whichever task reads it."""
    from tuneship.data.question_answering import read_qa_examples
    from tuneship.data.summarization import read_summaries

    for read in (read_records, read_qa_examples, read_summaries):
        with pytest.raises(DataError, match=r"the Hub dataset 'someone/no-such-dataset' \(split 'train'\) could not"):
            read("someone/no-such-dataset")
