"""`QuestionAnsweringOptions`: the options only question answering reads, which `TrainConfig` inherits (a run of another
task refuses them by name)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError
from ...options import TaskOptions, option
from ...tasks import QUESTION_ANSWERING


@dataclass
class QuestionAnsweringOptions(TaskOptions):
    """The options only question answering reads."""

    doc_stride: int = option(128, "question answering: context tokens shared by consecutive windows of a long context",
                             "data", task=QUESTION_ANSWERING)
    max_answer_length: int = option(30, "question answering: longest answer, in tokens", "data", task=QUESTION_ANSWERING)

    def __post_init__(self) -> None:
        if self.doc_stride < 1 or self.max_answer_length < 1:
            raise ConfigError(f"doc_stride and max_answer_length must be positive, got {self.doc_stride}, "
                              f"{self.max_answer_length}")
        super().__post_init__()
