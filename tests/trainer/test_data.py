"""Data loading: formats, column detection, label mapping, split, and every bad-input error."""

import json

import pandas as pd
import pytest

from tests.conftest import EXAMPLES, SHARED_DATA, pair_rows, ticket_rows, write_csv, write_jsonl
from tuneship.errors import DataError
from tuneship.data.classification import label_names_from, load_labelled_texts, positive_label_id, stratified_split
from tuneship.data.columns import detect_columns
from tuneship.data.records import read_records
from tuneship.trainer.classification import load_classification_data


def test_every_file_format_loads_the_same_rows(tmp_path):
    rows = ticket_rows(12)
    frame = pd.DataFrame(rows)
    write_csv(tmp_path / "d.csv", rows)
    frame.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    (tmp_path / "d.json").write_text(json.dumps(rows))
    write_jsonl(tmp_path / "d.jsonl", rows)
    frame.to_parquet(tmp_path / "d.parquet")
    for suffix in ("csv", "tsv", "json", "jsonl", "parquet"):
        table = read_records(tmp_path / f"d.{suffix}")
        assert [record.values for record in table] == rows, suffix


@pytest.mark.parametrize(
    "columns, expected",
    [
        (["sentence1", "sentence2", "label"], ("sentence1", "sentence2", "label")),
        (["question", "sentence", "label"], ("question", "sentence", "label")),
        (["Article", "Comment", "label"], ("Article", "Comment", "label")),
        (["premise", "hypothesis", "labels"], ("premise", "hypothesis", "labels")),
        (["id", "text", "label"], ("text", None, "label")),
        (["sentence", "label"], ("sentence", None, "label")),
    ],
)
def test_columns_are_detected_from_the_usual_names(columns, expected):
    mapping = detect_columns(pd.DataFrame(columns=columns), "f.csv")
    assert (mapping.text, mapping.text_pair, mapping.label) == expected


def test_given_columns_win_and_missing_ones_are_named():
    table = pd.DataFrame(columns=["body", "title", "category"])
    mapping = detect_columns(table, "f.csv", text="body", text_pair="title", label="category")
    assert mapping.is_pair and mapping.label == "category"
    with pytest.raises(DataError, match=r"f\.csv: no label column 'tag'; the columns are 'body', 'title', 'category'"):
        detect_columns(table, "f.csv", text="body", label="tag")
    with pytest.raises(DataError, match=r"f\.csv: no text column found among 'body', 'title', 'category'"):
        detect_columns(table, "f.csv")


def test_label_mapping_is_deterministic():
    assert label_names_from(["10", "2", "1"]) == ["1", "2", "10"]
    assert label_names_from(["feature_request", "bug", "general_inquiry"]) == ["bug", "feature_request", "general_inquiry"]
    assert positive_label_id(["negative", "positive"], None) == 1
    assert positive_label_id(["irrelevant", "relevant"], None) == 1
    assert positive_label_id(["no", "yes"], "no") == 0
    assert positive_label_id(["a", "b", "c"], None) is None


def test_stratified_split_is_seeded_and_keeps_proportions():
    labels = [0] * 80 + [1] * 20
    train, held = stratified_split(labels, 0.2, seed=7)
    assert sorted([*train, *held]) == list(range(100))
    assert sum(labels[i] for i in held) == 4 and len(held) == 20
    assert (train == stratified_split(labels, 0.2, seed=7)[0]).all()
    assert not (held == stratified_split(labels, 0.2, seed=8)[1]).all()


def test_load_with_split_maps_columns_and_labels(tmp_path):
    data = load_classification_data(str(write_csv(tmp_path / "t.csv", ticket_rows(30))), validation_split=0.2)
    assert data.label_names == ["bug", "feature_request", "general_inquiry"]
    assert data.train.column_names == ["text", "label"] and len(data.train) + len(data.validation) == 30
    assert sorted(data.validation["label"]) == [0, 0, 1, 1, 2, 2]
    assert list(data.validation_rows[0]) == ["text", "label"]


def test_integer_labels_keep_their_values(tmp_path):
    data = load_classification_data(str(write_csv(tmp_path / "p.csv", pair_rows(20))))
    assert data.label_names == ["0", "1"] and data.columns.is_pair and data.positive_label_id == 1
    assert data.train.column_names == ["text", "text_pair", "label"]


# --------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        load_classification_data(str(tmp_path / "nope.csv"))


def test_empty_file_and_header_only(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        load_classification_data(str(tmp_path / "empty.csv"))
    (tmp_path / "header.csv").write_text("text,label\n")
    with pytest.raises(DataError, match=r"header\.csv: the file has a header but no data rows"):
        load_classification_data(str(tmp_path / "header.csv"))


def test_unsupported_type_and_folder(tmp_path):
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'"):
        read_records(tmp_path / "d.xlsx")
    with pytest.raises(DataError, match="is a folder"):
        read_records(tmp_path)


def test_empty_and_missing_values_are_counted_with_rows(tmp_path):
    rows = ticket_rows(12)
    rows[2]["text"] = "   "
    rows[7]["text"] = ""
    rows[9]["label"] = ""
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError) as error:
        load_classification_data(str(path))
    message = str(error.value)
    assert "bad.csv: 3 row(s) with empty or missing values" in message
    assert "column 'text': 2 empty or missing (rows 3, 8)" in message
    assert "column 'label': 1 empty or missing (rows 10)" in message
    assert "--drop-invalid" in message


def test_drop_invalid_skips_and_reports(tmp_path, capsys):
    rows = ticket_rows(12)
    rows[0]["text"] = ""
    data = load_classification_data(str(write_csv(tmp_path / "bad.csv", rows)), drop_invalid=True)
    assert len(data.train) + len(data.validation) == 11
    assert "dropped 1 invalid row(s) of 12" in capsys.readouterr().out


def test_missing_values_in_jsonl(tmp_path):
    rows = ticket_rows(6)
    rows[4] = {"text": None, "label": "bug"}
    with pytest.raises(DataError, match=r"column 'text': 1 empty or missing \(rows 5\)"):
        load_classification_data(str(write_jsonl(tmp_path / "bad.jsonl", rows)))


def test_validation_label_never_seen_in_training(tmp_path):
    train = write_csv(tmp_path / "train.csv", ticket_rows(9))
    validation = write_csv(tmp_path / "val.csv", [{"text": "hello", "label": "bug"}, {"text": "refund?", "label": "billing"}])
    with pytest.raises(DataError, match=r"val\.csv: column 'label' has label\(s\) 'billing' never seen in training \(rows 2\)"):
        load_classification_data(str(train), str(validation))


def test_single_class(tmp_path):
    path = write_csv(tmp_path / "one.csv", [{"text": f"t{i}", "label": "bug"} for i in range(5)])
    with pytest.raises(DataError, match=r"one\.csv: column 'label' has a single class \('bug'\)"):
        load_classification_data(str(path))


def test_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\nfine,a\ncaf\u00e9 au lait,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.csv: line 3, character 4 is not valid UTF-8 \(byte 0xe9\)"):
        load_classification_data(str(path))


def test_malformed_json_lines(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", \n')
    with pytest.raises(DataError, match=r"bad\.jsonl: line 2 is not valid JSON"):
        read_records(path)


def test_unreachable_hub_dataset_is_a_clear_error():
    with pytest.raises(DataError, match=r"the Hub dataset 'someone/no-such-dataset' \(split 'train'\) could not be loaded"):
        load_classification_data("someone/no-such-dataset")


def test_evaluation_file_uses_the_model_columns(tmp_path):
    data = load_classification_data(str(write_csv(tmp_path / "p.csv", pair_rows(10))))
    texts, pairs, labels = load_labelled_texts(str(tmp_path / "p.csv"), data.columns, {"0": 0, "1": 1})
    assert len(texts) == len(pairs) == len(labels) == 10 and labels[:2] == [0, 1]
    write_csv(tmp_path / "other.csv", [{"text": "x", "label": 0}])
    with pytest.raises(DataError, match=r"other\.csv: no text column 'sentence1'"):
        load_labelled_texts(str(tmp_path / "other.csv"), data.columns, {"0": 0, "1": 1})


def test_bundled_examples_load():
    relevance = load_classification_data(str(EXAMPLES / "relevance/train.csv"), str(EXAMPLES / "relevance/validation.csv"))
    assert (relevance.columns.text, relevance.columns.text_pair) == ("Article", "Comment")
    assert relevance.label_names == ["irrelevant", "relevant"] and relevance.positive_label_id == 1
    tickets = load_classification_data(str(EXAMPLES / "tickets/train.csv"), str(EXAMPLES / "tickets/validation.csv"))
    assert tickets.label_names == ["bug", "feature_request", "general_inquiry"]
    assert len(tickets.train) >= 200 and tickets.majority_baseline_accuracy < 0.5


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")
@pytest.mark.parametrize(
    "name, pair, labels",
    [
        ("mrpc", ("sentence1", "sentence2"), ["0", "1"]),
        ("sst2", ("text", None), ["negative", "positive"]),
        ("ag_news", ("text", None), ["Business", "Sci/Tech", "Sports", "World"]),
        ("wikiqa", ("question", "sentence"), ["0", "1"]),
    ],
)
def test_shared_datasets_are_detected(name, pair, labels):
    folder = SHARED_DATA / name
    data = load_classification_data(str(folder / "train.csv"), str(folder / "validation.csv"))
    assert (data.columns.text, data.columns.text_pair) == pair and data.label_names == labels


def test_nan_like_labels_count_as_missing_not_as_a_class(tmp_path, capsys):
    rows = ticket_rows(12)
    rows[3]["label"] = "NaN"
    rows[5]["label"] = "nan"
    with pytest.raises(DataError, match=r"column 'label': 2 empty or missing \(rows 4, 6\)\)\. Labels nan, na"):
        load_classification_data(str(write_csv(tmp_path / "nan.csv", rows)))
    data = load_classification_data(str(write_csv(tmp_path / "nan.csv", rows)), drop_invalid=True)
    assert "nan" not in [name.lower() for name in data.label_names]


def test_a_text_column_of_numbers_is_warned_about(tmp_path, capsys):
    rows = [{"text": str(1000 + i), "label": "a" if i % 2 else "b"} for i in range(10)]
    load_classification_data(str(write_csv(tmp_path / "numbers.csv", rows)))
    printed = capsys.readouterr().out
    assert "warning: " in printed and "column 'text' holds only numbers" in printed
