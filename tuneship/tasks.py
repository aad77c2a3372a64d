"""The task registry: a task's name, and which module of each stage serves it.

A task is the unit of extension. Every stage package has one module per task, named the same in each
(`trainer/classification.py`, `export/classification.py`, `serving/classification.py`,
`serving/api/classification.py`, `bench/classification.py`), and the drivers (`train`, `export`,
`serve`, `predict`/`evaluate`, `bench`, the Gradio app) find it here instead of branching on the task.
Adding a task means adding its modules and one entry in `TASKS`.

What each stage module provides:
- `tuneship.trainer.<module>`: `train(config, callbacks) -> TrainResult`, `from_checkpoint(path)` (the PyTorch model).
- `tuneship.export.<module>`: `export(config) -> ExportResult`.
- `tuneship.serving.<module>`: `Settings` (the manifest's task part), `from_bundle(path, precision, threads,
  spinning)`, `evaluate(model, data_file, batch_size)`, `predict_text(model, text, text_pair)` and
  `predict_rows(model, records, source, batch_size)` (for `predict --input`); each works on the bundle's model
  and on the checkpoint's PyTorch model alike (both carry a `task` attribute).
- `tuneship.serving.api.<module>`: `create_app(model, config, api_key)` and the `ROUTE` it adds.
- `tuneship.bench.<module>`: `read_rows`, `make_inputs`, `score`, and the end-to-end and model-only calls.
- `gradio_app.build_<module>_demo(bundle, checkpoint, threads)`: the demo.
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

# The stages of the support matrix, and the package that holds each one's task modules.
STAGES = {"train": "trainer", "evaluate": "serving", "predict": "serving", "export": "export", "serve": "serving.api",
          "bench": "bench", "demo": None}


@dataclass(frozen=True)
class Task:
    """One task: its name (as in `--task` and the manifests), its module name in every stage, and what it lacks."""

    name: str
    module: str
    description: str
    unsupported: Mapping[str, str] = field(default_factory=dict)  # stage -> why not, and what to use instead

    def supports(self, stage: str) -> bool:
        return stage not in self.unsupported

    def check(self, stage: str) -> None:
        """Raise a clear error when `stage` does not support this task."""
        if stage in self.unsupported:
            raise TuneshipError(f"{self.name} has no {stage} stage yet: {self.unsupported[stage]}")

    def stage(self, package: str) -> ModuleType:
        """The task's module in `package` (`trainer`, `export`, `serving`, `serving.api`, `bench`)."""
        return importlib.import_module(f"tuneship.{package}.{self.module}")


TASKS: dict[str, Task] = {task.name: task for task in (
    Task(CLASSIFICATION, "classification", "one text or a text pair into labels"),
    Task(QUESTION_ANSWERING, "question_answering", "extractive: an answer span of a context", unsupported={
        "search": "train with chosen settings (--learning-rate, --epochs, --batch-size ...) instead of --search",
        "distill": "distillation takes a text-classification teacher; train a smaller model with --model instead",
    }),
    Task(SUMMARIZATION, "summarization", "abstractive: a short summary of a document", unsupported={
        "bench": "time generation with: python benchmarks/summarization_speed.py --checkpoint CKPT --bundle BUNDLE "
                 "--data FILE",
        "search": "train with chosen settings (--learning-rate, --epochs, --batch-size ...) instead of --search",
        "distill": "distillation takes a text-classification teacher; train a smaller model with --model instead",
    }),
)}
TASK_NAMES = tuple(TASKS)


def get(name: str) -> Task:
    """The registered task `name`, or a clear error listing the known ones."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise TuneshipError(f"unknown task {name!r}; tuneship knows {', '.join(TASK_NAMES)}") from None
