"""The task registry: a task's name, and which module of each stage serves it.

A task is the unit of extension. Every stage package has one module per task, named the same in each
(`trainer/classification.py`, `export/classification.py`, `serving/classification.py`,
`serving/api/classification.py`, `bench/classification.py`), and the drivers (`train`, `export`,
`serve`, `predict`/`evaluate`, `bench`, the Gradio app) find it here instead of branching on the task.
Adding a task means adding its modules and one entry in `TASKS`.

What each stage module provides is `contract.py`'s Protocol of that stage (`STAGE_PROTOCOLS`); `Task.stage`
returns the module, and `tests/test_layout.py` checks every task module against its Protocol. The demo is
`gradio_app.build_<module>_demo(bundle, checkpoint, threads)`, whose main event and views `Task.demo` names.
What a task does not support is said here (`Task.unsupported`) and nowhere else.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Mapping

from .errors import TuneshipError

CLASSIFICATION = "text-classification"
QUESTION_ANSWERING = "question-answering"
SUMMARIZATION = "summarization"

REFIT_MEASURED = ("its epoch rule was measured on classification only; the epoch kept is the selection run's best "
                  "(train on every row with --validation FILE to select on other rows)")

# The stages of the support matrix, and the package that holds each one's task modules.
STAGES = {"train": "trainer", "evaluate": "serving", "predict": "serving", "export": "export", "serve": "serving.api",
          "bench": "bench", "demo": None}


@dataclass(frozen=True)
class Demo:
    """A task's Gradio demo, as a Space's README lists it: the main event's API name and the views."""

    api_name: str
    views: tuple[str, ...]


@dataclass(frozen=True)
class Task:
    """One task: its name (as in `--task` and the manifests), its module name in every stage, its demo, and what it
    lacks."""

    name: str
    module: str
    description: str
    demo: Demo
    unsupported: Mapping[str, str] = field(default_factory=dict)  # stage -> why not, and what to use instead

    def supports(self, stage: str) -> bool:
        return stage not in self.unsupported

    def check(self, stage: str) -> None:
        """Raise a clear error when `stage` does not support this task."""
        if stage in self.unsupported:
            raise TuneshipError(f"{self.name} has no {stage} stage yet: {self.unsupported[stage]}")

    def stage(self, package: str) -> ModuleType:
        """The task's module in `package` (`trainer`, `export`, `serving`, `serving.api`, `bench`): it fits the
        package's Protocol in `contract.STAGE_PROTOCOLS`."""
        return importlib.import_module(f"tuneship.{package}.{self.module}")


TASKS: dict[str, Task] = {task.name: task for task in (
    Task(CLASSIFICATION, "classification", "one text or a text pair into labels", Demo("classify", (
        "**Classify**: the prediction with every class probability, and the latency of the call.",
        "**Compare**: the same input through each of the bundle's models, and a short benchmark.",
        "**Batch**: upload a CSV or JSON Lines file, download the predictions."))),
    Task(QUESTION_ANSWERING, "question_answering", "extractive: an answer span of a context", Demo("answer", (
        "**Answer**: a question and a context in, the answer highlighted in its context, with its score and the "
        "latency of the call.",)), unsupported={
        "search": "train with chosen settings (--learning-rate, --epochs, --batch-size ...) instead of --search",
        "distill": "distillation takes a text-classification teacher; train a smaller model with --base-model instead",
        "refit": REFIT_MEASURED,
    }),
    Task(SUMMARIZATION, "summarization", "abstractive: a short summary of a document", Demo("summarize", (
        "**Summarize**: a document in, its summary out, greedy or with beams, with the latency of the call.",)),
         unsupported={
        "bench": "time generation with: python benchmarks/summarization_speed.py --model CKPT --bundle BUNDLE "
                 "--data FILE",
        "search": "train with chosen settings (--learning-rate, --epochs, --batch-size ...) instead of --search",
        "distill": "distillation takes a text-classification teacher; train a smaller model with --base-model instead",
        "refit": REFIT_MEASURED,
    }),
)}
TASK_NAMES = tuple(TASKS)


def get(name: str) -> Task:
    """The registered task `name`, or a clear error listing the known ones."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise TuneshipError(f"unknown task {name!r}; tuneship knows {', '.join(TASK_NAMES)}") from None
