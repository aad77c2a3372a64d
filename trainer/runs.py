"""What every task's training run shares: the output and resume checks, callbacks, and the end of a run (the
checkpoint written atomically, epoch checkpoints cleaned up, the metrics reported)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..checkpoint import WEIGHT_FILES
from ..errors import TuneshipError
from ..files import write_directory_atomically
from ..log import get_logger
from .config import TrainConfig

logger = get_logger(__name__)


@dataclass
class TrainResult:
    """What `train()` returns: the checkpoint folder, its validation metrics, and the options as used (`config`:
    a copy with what was "auto" resolved; the caller's config is never changed)."""

    output_dir: Path
    metrics: dict
    config: TrainConfig | None = None


def is_complete(checkpoint: Path) -> bool:
    """Whether the Trainer finished writing `checkpoint`: weights, and `trainer_state.json` (its last file) whole."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any((checkpoint / name).is_file() for name in WEIGHT_FILES)


def last_complete_checkpoint(checkpoints: Path) -> Path | None:
    """The latest complete epoch checkpoint; an incomplete one (a run killed while saving it) is removed, and said."""
    found = sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    for checkpoint in reversed(found):
        if is_complete(checkpoint):
            epoch = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")).get("epoch") or 0
            logger.info(f"resuming from epoch {epoch:g} ({checkpoint.name})")
            return checkpoint
        logger.warning(f"skipping {checkpoint}: incomplete (the run stopped while writing it); removing it")
        shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def prepare_output(config: TrainConfig) -> str | None:
    """Check the output and checkpoint folders; return the checkpoint to resume from (None: from the start)."""
    from .search import STUDY_FILE

    output, checkpoints = Path(config.output_dir), config.checkpoints_dir
    interrupted = checkpoints.is_dir() and (any(checkpoints.glob("checkpoint-*")) or (checkpoints / STUDY_FILE).is_file())
    if output.exists() and not config.overwrite:
        raise TuneshipError(f"{output} already exists; pass --overwrite to replace it")
    if config.resume:
        if not interrupted:
            raise TuneshipError(f"--resume: no checkpoint to resume from in {checkpoints}")
        checkpoint = last_complete_checkpoint(checkpoints)
        return None if checkpoint is None else str(checkpoint)
    if interrupted and not config.overwrite:
        raise TuneshipError(
            f"an interrupted run left checkpoints in {checkpoints}; pass --resume to continue it "
            "or --overwrite to start over"
        )
    if config.overwrite:
        shutil.rmtree(checkpoints, ignore_errors=True)
    return None


def trainer_callbacks(config: TrainConfig, callbacks: Sequence = ()) -> list:
    """Early stopping (with `keep="best"`, unless `early_stopping_patience` is 0), then the caller's callbacks."""
    import transformers

    stopping = ([transformers.EarlyStoppingCallback(config.early_stopping_patience)]
                if config.keep == "best" and config.early_stopping_patience else [])
    return [*stopping, *callbacks]


SPEED_KEYS = ("runtime", "samples_per_second", "steps_per_second", "total_flos")


def format_log(logs: dict) -> str:
    """One Trainer log as a line people read: "epoch 1.19 · loss 0.3635 · learning rate 8.9e-05", or for an
    evaluation "epoch 2 · validation loss 0.41 · accuracy 0.872 · f1 0.884" (speed figures left out)."""
    def number(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    parts = [f"epoch {logs['epoch']:.2f}".rstrip("0").rstrip(".")] if "epoch" in logs else []
    for key, value in logs.items():
        if key == "epoch" or key.removeprefix("eval_").removeprefix("train_") in SPEED_KEYS:
            continue
        name = {"eval_loss": "validation loss", "learning_rate": "learning rate", "grad_norm": "gradient norm",
                "train_loss": "mean training loss"}.get(key, key.removeprefix("eval_"))
        parts.append(f"{name} {number(value)}")
    return " · ".join(parts)


def readable_progress(trainer):
    """`trainer` with its progress bar writing each log as one readable line (`format_log`) instead of a dict."""
    import transformers

    class ReadableProgress(transformers.ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and self.training_bar is not None and logs:
                self.training_bar.write(format_log(logs))

    if any(type(c) is transformers.ProgressCallback for c in trainer.callback_handler.callbacks):
        trainer.remove_callback(transformers.ProgressCallback)
        trainer.add_callback(ReadableProgress())
    return trainer


def train_runtime(trainer) -> float | None:
    """Seconds the Trainer spent training (every run in its log, a refit included; None before it has trained)."""
    runtimes = [e["train_runtime"] for e in trainer.state.log_history if "train_runtime" in e]
    return sum(runtimes) if runtimes else None


def finish_run(trainer, config: TrainConfig, metrics: dict, save: Callable[[Path], None], next_steps: str) -> TrainResult:
    """The end of a run: `save(folder)` writes the checkpoint atomically (main process only), the epoch checkpoints
    go unless kept, and the headline metrics and next steps are reported."""
    output = Path(config.output_dir)
    metrics.update(train_runtime=train_runtime(trainer))
    if trainer.is_world_process_zero():
        write_directory_atomically(output, save)
        if not config.keep_checkpoints:
            shutil.rmtree(config.checkpoints_dir, ignore_errors=True)
        numbers = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        logger.info(json.dumps(numbers))
        logger.info(f"\nModel saved to {output}\nNext:\n" + next_steps.format(output=output))
    return TrainResult(output_dir=output, metrics=metrics, config=config)
