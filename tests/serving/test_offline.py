"""predict_file and evaluate: streaming, resumable, atomic; the same for a bundle and a checkpoint."""

import csv
import json
import subprocess
import sys

import pytest

from tests.conftest import pair_rows, write_csv, write_jsonl
from tuneship.errors import DataError, TuneshipError
from tuneship.serving import Predictor, evaluate, predict_file, offline


@pytest.fixture(scope="module")
def predictor(pair_bundle) -> Predictor:
    return Predictor.from_bundle(pair_bundle)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_predict_file_writes_inputs_and_predictions(predictor, tmp_path):
    rows = pair_rows(25)
    source = write_csv(tmp_path / "in.csv", rows)
    written = predict_file(predictor, source, tmp_path / "out.csv")
    out = read_csv(written)
    expected = predictor.predict([r["sentence1"] for r in rows], [r["sentence2"] for r in rows])
    assert [r["predicted_label"] for r in out] == [e["label"] for e in expected]
    assert list(out[0]) == ["sentence1", "sentence2", "label", "predicted_label", "score", "truncated",
                            "probability_0", "probability_1"]
    assert not (tmp_path / "out.csv.partial").exists() and not (tmp_path / "out.csv.progress.json").exists()

    jsonl = predict_file(predictor, write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl")
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["predicted_label"] for r in records] == [e["label"] for e in expected]
    assert records[0]["probability_1"] == pytest.approx(expected[0]["probabilities"]["1"])
    with pytest.raises(TuneshipError, match="already exists; pass --overwrite"):
        predict_file(predictor, source, written)


class Interrupting:
    """A classifier that stops the job (as Ctrl-C would) after `calls` chunks, and counts rows predicted."""

    def __init__(self, predictor, calls=None):
        self.predictor, self.calls, self.rows = predictor, calls, 0
        self.columns, self.task = predictor.columns, predictor.task

    def predict(self, texts, pairs, batch_size=32):
        if self.calls is not None:
            if self.calls == 0:
                raise KeyboardInterrupt
            self.calls -= 1
        self.rows += len(texts)
        return self.predictor.predict(texts, pairs, batch_size)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_an_interrupted_job_leaves_no_output_and_resumes(predictor, tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(offline, "CHUNK_ROWS", 10)
    rows = pair_rows(35)
    source = write_csv(tmp_path / "in.csv", rows)
    output = tmp_path / f"out{suffix}"
    with pytest.raises(KeyboardInterrupt):
        predict_file(Interrupting(predictor, calls=2), source, output)
    assert not output.exists() and (tmp_path / f"out{suffix}.partial").exists()

    rerun = Interrupting(predictor)
    predict_file(rerun, source, output)
    assert rerun.rows == 15, "the 20 rows already written are not predicted again"
    once = predict_file(predictor, source, tmp_path / f"once{suffix}")
    if suffix == ".parquet":  # a Parquet file's bytes carry no promise of sameness: its rows do
        import pyarrow.parquet as pq

        written, expected = pq.read_table(output).to_pylist(), pq.read_table(once).to_pylist()
        assert len(written) == 35 and written == expected and "predicted_label" in written[0]
        assert not (tmp_path / f"out{suffix}.partial").exists()
    else:
        assert output.read_text() == once.read_text()


def test_bad_rows_are_named_and_nothing_is_written(predictor, tmp_path):
    rows = pair_rows(5)
    source = write_jsonl(tmp_path / "in.jsonl", rows[:3] + [{"sentence1": "x"}] + rows[3:])
    with pytest.raises(DataError, match=r"in.jsonl: row 4 has no column 'sentence2'"):
        predict_file(predictor, source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"sentence1": "a", "sentence2": "b"}\n{"sentence1": \n')
    with pytest.raises(DataError, match="broken.jsonl: line 2 is not valid JSON"):
        predict_file(predictor, broken, tmp_path / "out2.csv")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        predict_file(predictor, tmp_path / "in.xlsx", tmp_path / "out3.csv")


def test_evaluate_names_unknown_labels_and_empty_texts(predictor, tmp_path):
    rows = pair_rows(6)
    rows[4]["label"] = 7
    with pytest.raises(DataError, match=r"bad.csv: row 5, column 'label' has label '7' never seen in training"):
        evaluate(predictor, write_csv(tmp_path / "bad.csv", rows))
    rows = pair_rows(6)
    rows[2]["sentence2"] = " "
    with pytest.raises(DataError, match=r"empty.csv: row 3, column 'sentence2' is empty or missing"):
        evaluate(predictor, write_csv(tmp_path / "empty.csv", rows))


def test_evaluate_bundle_and_checkpoint_give_the_same_report(pair_bundle, pair_checkpoint, tmp_path):
    data = str(pair_checkpoint / "validation.jsonl")

    def run(*args):
        result = subprocess.run([sys.executable, "-m", "tuneship.cli", "evaluate", *args, "--data", data],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout)

    by_checkpoint = run("--model", str(pair_checkpoint))
    by_bundle = run("--bundle", str(pair_bundle), "--precision", "fp32")
    assert by_bundle.keys() == by_checkpoint.keys()
    assert by_bundle["accuracy"] == pytest.approx(by_checkpoint["accuracy"])


def test_predict_command_on_a_bundle(pair_bundle, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "tuneship.cli", "predict", "--bundle", str(pair_bundle), *args],
                              capture_output=True, text=True, timeout=300)

    one = run("--text", "the cat sat on mat 3", "--text-pair", "a cat was on the mat 3")
    assert one.returncode == 0 and set(json.loads(one.stdout)) == {"label", "score", "probabilities", "truncated"}
    source = write_csv(tmp_path / "in.csv", pair_rows(12))
    done = run("--data", str(source), "--output", str(tmp_path / "out.jsonl"))
    assert done.returncode == 0 and len((tmp_path / "out.jsonl").read_text().splitlines()) == 12
    missing = run("--text", "only one text")
    assert missing.returncode == 2 and "this model classifies pairs" in missing.stderr
    neither = run()
    assert neither.returncode == 2 and "give either --text" in neither.stderr


def test_progress_counts_rows_not_bytes(tmp_path, capsys, monkeypatch):
    from tuneship.data.records import RecordReader

    monkeypatch.setattr(offline, "CHUNK_ROWS", 10)
    source = write_csv(tmp_path / "rows.csv", pair_rows(25))
    chunks = list(offline.chunks_of(RecordReader(source), "reading"))
    assert [len(c) for c in chunks] == [10, 10, 5]
    shown = capsys.readouterr().err
    assert "25 rows" in shown and "rows/s" in shown and "B/s" not in shown and "100%" in shown


def test_a_binary_file_under_a_text_name_is_named_for_what_it_is(tmp_path):
    from tuneship.data.records import RecordReader

    parquet = tmp_path / "rows.csv"
    parquet.write_bytes(b"PAR1\x15\x04\x15\xff\xff\x00" * 8)
    with pytest.raises(DataError, match=r"rows.csv: this is a Parquet file .*, not .csv; name it .parquet"):
        list(RecordReader(parquet))


def test_a_damaged_parquet_file_is_one_line_naming_it(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tuneship.data.records import RecordReader

    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"sentence1": ["a"] * 500, "sentence2": ["b"] * 500}), whole)
    raw = whole.read_bytes()
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(raw[: len(raw) // 2] + raw[-8:])  # the middle cut out, the footer's length kept
    with pytest.raises(DataError, match=r"damaged.parquet: could not be read as Parquet .*damaged or not Parquet"):
        list(RecordReader(damaged))


def test_an_empty_text_is_refused_and_a_nested_value_is_written_to_csv_as_json(predictor, tmp_path):
    rows = pair_rows(4)
    rows[2]["sentence1"] = "   "
    with pytest.raises(DataError, match=r"blank.csv: row 3, column 'sentence1' is empty or missing"):
        predict_file(predictor, write_csv(tmp_path / "blank.csv", rows), tmp_path / "blank-out.csv")
    assert not (tmp_path / "blank-out.csv").exists()
    nested = [{**row, "meta": {"source": ["a", "b"]}} for row in pair_rows(2)]
    out = read_csv(predict_file(predictor, write_jsonl(tmp_path / "nested.jsonl", nested), tmp_path / "nested.csv"))
    assert json.loads(out[0]["meta"]) == {"source": ["a", "b"]}, "JSON, not Python's repr"
