"""benchmarks/squad_sentences.py: SQuAD questions as answer-sentence pairs, and its refusal of a file it cannot read."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import benchmark_script


@pytest.fixture(scope="module")
def script():
    return benchmark_script("squad_sentences")


CONTEXT = ("In Prosecutor v. Krstic the tribunal ruled in 2001. Dr. Smith wrote the appeal! Was it heard? "
           "It was heard in 2004.")


def test_sentences_split_at_ends_but_not_after_initials_or_titles(script):
    found = script.sentences(CONTEXT)
    assert [text for _, text in found] == [
        "In Prosecutor v. Krstic the tribunal ruled in 2001.", "Dr. Smith wrote the appeal!", "Was it heard?",
        "It was heard in 2004.",
    ]
    assert all(CONTEXT[offset:].startswith(text) for offset, text in found)


def test_each_question_is_paired_with_every_sentence_and_the_answer_holder_is_positive(script, tmp_path):
    answer = CONTEXT.index("2004")
    squad = {"data": [{"title": "t", "paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "a", "question": "When was it heard?", "answers": [{"answer_start": answer, "text": "2004"}]},
        {"id": "b", "question": "Unanswerable?", "answers": []},
    ]}]}]}
    source = tmp_path / "squad.json"
    source.write_text(json.dumps(squad))
    output = tmp_path / "pairs.csv"
    assert script.main(["--squad", str(source), "--output", str(output)]) == 0
    rows = list(csv.DictReader(output.open()))
    assert [row["label"] for row in rows] == ["0", "0", "0", "1"]
    assert {row["question"] for row in rows} == {"When was it heard?"}
    assert rows[3]["sentence"] == "It was heard in 2004."
    assert not output.with_name("pairs.csv.partial").exists()


def test_a_file_that_is_not_squad_is_refused_by_name(script, tmp_path):
    source = tmp_path / "rows.json"
    source.write_text(json.dumps([{"question": "q"}]))
    with pytest.raises(SystemExit, match=r"rows\.json: not a readable SQuAD-format file"):
        script.main(["--squad", str(source), "--output", str(tmp_path / "out.csv")])
    assert not (tmp_path / "out.csv").exists()
