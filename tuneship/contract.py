"""The task contract as code: what each stage's task module provides, one `typing.Protocol` per stage.

A task module is the module itself (`tuneship.serving.classification`, ...), so each Protocol's methods are the
module's functions (without `self`) and its attributes the module's names. `tasks.Task.stage` returns a module that
fits the stage's Protocol, and `tests/test_layout.py` checks every task module against its Protocol: every member
present, every function taking the Protocol's required positional parameters and its optional ones by name
(by position where the Protocol marks them positional-only with `/`).
Adding a task means writing one module per stage that fits these, and one entry in `tasks.TASKS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable


@runtime_checkable
class TrainerStage(Protocol):
    """`tuneship.trainer.<task>`: fine-tuning with `transformers.Trainer`, and the PyTorch model of a checkpoint
    (with the serving module's calls: `predict`/`evaluate` run it as they run a bundle)."""

    Run: type  # the task's `trainer.training.TrainingRun`: `Run(config, callbacks).run()` trains, the skeleton its own


    def from_checkpoint(self, path: str | Path) -> Any:
        """The PyTorch model of a checkpoint folder; it carries a `task` attribute."""


@runtime_checkable
class ExportStage(Protocol):
    """`tuneship.export.<task>`: a checkpoint to a gated ONNX bundle."""

    def export(self, config: Any) -> Any:
        """Export by `config` (an `ExportConfig`) and return an `ExportResult`."""


@runtime_checkable
class ServingStage(Protocol):
    """`tuneship.serving.<task>`: the bundle's model without torch, and the calls `predict` and `evaluate` make
    on it or on the checkpoint's PyTorch model alike."""

    Settings: type  # the manifest's task part: a `bundle.TaskSettings`

    def from_bundle(self, path: str | Path, precision: str | None = "auto", threads: int | None = None,
                    spinning: bool | str = True, runtime: str | None = "auto", batch_size: int = 32,
                    plan_cache: bool = True, manifest: Any = None) -> Any:
        """The bundle's model, served by its plan on this CPU (`serving.plan`)."""

    def evaluate(self, model: Any, data_file: str | Path, batch_size: int = 32) -> dict:
        """The task's metrics on a labelled file."""

    def predict_text(self, model: Any, text: str, text_pair: str | None = None, /) -> dict:
        """One input's prediction, as `predict --text` (and `--text-pair`: a pair's second text, a question's
        context) prints it; the task names the two as it reads them."""

    def predict_rows(self, model: Any, records: list, source: Path, batch_size: int = 32) -> list[dict]:
        """The predictions of rows read from `source`, as `predict --data` writes them."""

    def input_columns(self, model: Any) -> list[str]:
        """The columns an input row must have."""


@runtime_checkable
class ServingApiStage(Protocol):
    """`tuneship.serving.api.<task>`: the task's HTTP app."""

    ROUTE: str  # the inference route the app adds

    def create_app(self, model: Any, config: Any, api_key: str | None = None) -> Any:
        """The FastAPI app serving `model` by `config` (a `ServeConfig`)."""


@runtime_checkable
class BenchStage(Protocol):
    """`tuneship.bench.<task>`: what `tuneship bench` needs to time and score the task's backends."""

    def serving_model(self, session: Any, bundle: Path, manifest: Any, precision: str) -> Any:
        """The serving model around an already opened session."""

    def sized(self, model: Any, max_length: int) -> Any:
        """`model` tokenizing to `max_length` tokens."""

    def end_to_end(self, model: Any, texts: Sequence[str], text_pairs: Sequence[str] | None) -> Any:
        """One timed call from raw strings."""

    def predictions(self, model: Any, texts: Sequence[str], text_pairs: Sequence[str] | None) -> list:
        """The outputs scored for quality."""

    def model_inputs(self, model: Any, texts: Sequence[str], text_pairs: Sequence[str] | None) -> dict:
        """The arrays a model-only call runs on."""

    def make_inputs(self, words: Sequence[str], seq_len: int, batch_size: int, bundle: Path, manifest: Any) -> Any:
        """Inputs of exactly `seq_len` tokens, `batch_size` of them."""

    def read_rows(self, data: str, manifest: Any, limit: int) -> tuple:
        """Up to `limit` labelled rows of `data`."""

    def score(self, outputs: list, rows: tuple, manifest: Any) -> dict:
        """The task's metrics of `outputs` on `rows`."""


# The Protocol of each stage package (`tasks.Task.stage`'s argument).
STAGE_PROTOCOLS: dict[str, type] = {"trainer": TrainerStage, "export": ExportStage, "serving": ServingStage,
                                    "serving.api": ServingApiStage, "bench": BenchStage}
