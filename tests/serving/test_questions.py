"""Reading QA examples: SQuAD JSON, CSV and JSON Lines, and the errors for bad answers."""

import json

import pytest

from tests.conftest import SHARED_DATA, write_csv, write_jsonl
from tuneship.errors import DataError
from tuneship.data.question_answering import read_qa_examples

CONTEXT = "The bridge was finished in 1932 by the city engineers."


def squad(path, qas, context=CONTEXT):
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}))
    return path


def test_squad_json_csv_and_jsonl_give_the_same_examples(tmp_path):
    start = CONTEXT.index("1932")
    from_json = read_qa_examples(squad(tmp_path / "a.json", [
        {"id": "q1", "question": "When?", "answers": [{"text": "1932", "answer_start": start}]}]))
    from_csv = read_qa_examples(write_csv(tmp_path / "a.csv", [
        {"id": "q1", "question": "When?", "context": CONTEXT, "answer_text": "1932", "answer_start": start}]))
    from_jsonl = read_qa_examples(write_jsonl(tmp_path / "a.jsonl", [
        {"id": "q1", "question": "When?", "context": CONTEXT, "answers": {"text": ["1932"], "answer_start": [start]}}]))
    assert from_json == from_csv == from_jsonl
    assert from_json[0].answers == [("1932", start)]


def test_bad_answers_and_empty_contexts_are_named(tmp_path):
    with pytest.raises(DataError, match=r"question 'q7': answer '1933' is not at character 27 of its context; it does not occur"):
        read_qa_examples(squad(tmp_path / "b.json", [{"id": "q7", "question": "When?", "answers": [{"text": "1933", "answer_start": 27}]}]))
    with pytest.raises(DataError, match=r"row 2: answer '1932' is not at character 3 of its context; it occurs at character 27"):
        read_qa_examples(write_csv(tmp_path / "b.csv", [
            {"question": "When?", "context": CONTEXT, "answer_text": "1932", "answer_start": 27},
            {"question": "When?", "context": CONTEXT, "answer_text": "1932", "answer_start": 3}]))
    with pytest.raises(DataError, match=r"row 1: no answer given"):
        read_qa_examples(write_csv(tmp_path / "c.csv", [{"question": "When?", "context": CONTEXT, "answer_text": "", "answer_start": ""}]))
    assert read_qa_examples(tmp_path / "c.csv", require_answers=False)[0].answers == []
    with pytest.raises(DataError, match=r"question 'q1': the context is empty"):
        read_qa_examples(squad(tmp_path / "d.json", [{"id": "q1", "question": "When?", "answers": []}], context="  "))
    with pytest.raises(DataError, match="expected SQuAD JSON"):
        (tmp_path / "e.json").write_text('{"rows": []}')
        read_qa_examples(tmp_path / "e.json")


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED_DATA / "squad").is_dir(), reason="../shared/data/squad is absent")
def test_the_shared_squad_files_read_whole():
    assert len(read_qa_examples(SHARED_DATA / "squad/train.json")) == 3147
    assert len(read_qa_examples(SHARED_DATA / "squad/validation.json")) == 492
