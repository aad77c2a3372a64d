"""Extractive QA fine-tuning on a tiny random model: train, answer, evaluate; bad data named."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import squad_file
from tuneship.serving.question_answering import evaluate as evaluate_qa
from tuneship.trainer.question_answering import TorchQuestionAnswerer

TUNESHIP = str(Path(sys.executable).with_name("tuneship"))


def test_checkpoint_answers_spans_of_long_contexts(qa_checkpoint):
    saved = json.loads((qa_checkpoint / "config.json").read_text())
    assert saved["tuneship"] == {"task": "question-answering", "max_length": 48, "doc_stride": 12,
                                 "max_answer_length": 30, "n_best": 20}
    assert {"exact_match", "f1"} <= set(json.loads((qa_checkpoint / "metrics.json").read_text()))
    assert "license: apache-2.0" in (qa_checkpoint / "README.md").read_text()
    qa = TorchQuestionAnswerer.from_checkpoint(qa_checkpoint)
    context = " ".join(f"Note {j} is about nothing." for j in range(30)) + " The tower was built in 1911 by the city."
    (answer,) = qa.answer(["When was the tower built?"], [context])
    assert context[answer.start:answer.end] == answer.text and 0 < answer.score <= 1


def test_evaluate_prints_exact_match_and_f1(qa_checkpoint):
    validation = qa_checkpoint.parent / "validation.json"
    result = subprocess.run([TUNESHIP, "evaluate", "--model", str(qa_checkpoint), "--data", str(validation)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    assert printed["num_examples"] == 8 and 0 <= printed["exact_match"] <= printed["f1"] <= 100
    assert printed == evaluate_qa(TorchQuestionAnswerer.from_checkpoint(qa_checkpoint), validation)


def test_bad_answers_stop_training_with_the_question_named(tiny_model, tmp_path):
    bad = squad_file(tmp_path / "bad.json", 4)
    document = json.loads(bad.read_text())
    document["data"][0]["paragraphs"][2]["qas"][0]["answers"][0]["answer_start"] = 0
    bad.write_text(json.dumps(document))
    result = subprocess.run([TUNESHIP, "train", "--task", "question-answering", "--base-model", str(tiny_model), "--train",
                             str(bad), "--output", str(tmp_path / "m")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "question 'q2': answer '1902' is not at character 0" in result.stderr
    assert not (tmp_path / "m").exists()


def test_card_is_built_like_every_task_s_with_eval_results(qa_checkpoint):
    from huggingface_hub import ModelCard

    card = ModelCard.load(qa_checkpoint / "README.md")
    metrics = json.loads((qa_checkpoint / "metrics.json").read_text())
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {"exact_match": round(metrics["exact_match"], 4), "f1": round(metrics["f1"], 4)}
    assert card.data.pipeline_tag == "question-answering"
    for section in ("## Evaluation", "## Intended use", "## How to use", "## Training procedure", "## Limitations"):
        assert section in card.text


def test_a_refit_is_refused_for_question_answering_before_any_data_is_read(tmp_path):
    import pytest

    from tuneship.errors import TuneshipError
    from tuneship.trainer import TrainConfig, train

    config = TrainConfig(task="question-answering", train_file=str(tmp_path / "absent.json"), refit="yes",
                         output_dir=str(tmp_path / "out"))
    with pytest.raises(TuneshipError, match="question-answering has no refit stage yet: its epoch rule"):
        train(config)
    assert not (tmp_path / "out").exists()
