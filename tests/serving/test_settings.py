"""Each task's part of the manifest (`settings`) goes through one serialization, `bundle.TaskSettings`: it reads
back what it wrote, and a value that cannot serve is one error naming the file, the task and the field."""

from __future__ import annotations

import pytest

from tuneship import tasks
from tuneship.bundle import ManifestError, TaskSettings

GOOD = {
    tasks.CLASSIFICATION: {"text_column": "article", "text_pair_column": "comment", "label_column": "label",
                           "labels": ["irrelevant", "relevant"], "positive_label": "relevant"},
    tasks.QUESTION_ANSWERING: {"doc_stride": 128, "max_answer_length": 30},
    tasks.SUMMARIZATION: {"document_column": "document", "generation": {"decoder_start_token_id": 2,
                                                                        "eos_token_id": 2, "pad_token_id": 1}},
}
BAD = [
    (tasks.CLASSIFICATION, "labels", ["only"], "field 'settings.labels' must be a list of at least two label names"),
    (tasks.CLASSIFICATION, "labels", ["a", "a"], "field 'settings.labels' names a label twice"),
    (tasks.CLASSIFICATION, "positive_label", "maybe", "field 'settings.positive_label' 'maybe' is not a label"),
    (tasks.CLASSIFICATION, "truncation", "middle", "field 'settings.truncation' must be one of"),
    (tasks.QUESTION_ANSWERING, "n_best", 0, "field 'settings.n_best' must be a positive whole number, not 0"),
    (tasks.QUESTION_ANSWERING, "doc_stride", True, "field 'settings.doc_stride' must be a positive whole number"),
    (tasks.SUMMARIZATION, "generation", {"num_beams": 4}, "field 'settings.generation' does not fit a summarization"),
    (tasks.SUMMARIZATION, "generation", "beam", "field 'settings.generation' does not fit a summarization"),
]


def settings_of(task: str) -> type[TaskSettings]:
    return tasks.get(task).stage("serving").Settings


@pytest.mark.parametrize("task", sorted(GOOD))
def test_every_task_reads_back_what_it_wrote(task):
    cls = settings_of(task)
    assert issubclass(cls, TaskSettings) and cls.task == task
    settings = cls.from_dict(GOOD[task])
    assert cls.from_dict(settings.to_dict()) == settings
    assert settings.input_columns and all(isinstance(c, str) for c in settings.input_columns)


@pytest.mark.parametrize("task", sorted(GOOD))
def test_a_field_of_another_task_names_the_task(task):
    with pytest.raises(ManifestError, match=f"b/tuneship.json: field 'settings' does not fit a {task} bundle"):
        settings_of(task).from_dict({**GOOD[task], "unknown_field": 1}, "b/tuneship.json")


@pytest.mark.parametrize("task, name, value, message", BAD)
def test_a_value_that_cannot_serve_names_the_field(task, name, value, message):
    with pytest.raises(ManifestError, match="^b/tuneship.json: ") as error:
        settings_of(task).from_dict({**GOOD[task], name: value}, "b/tuneship.json")
    assert message in str(error.value)
