"""What happens after the epochs are scored: averaging the best epochs' weights, and refitting on every row.

Both are decided on the selection rows alone (the split of the training data, or `--validation`), never on
data reported as held out:
- `average_checkpoints=N` keeps the weights of the N best epochs in memory (`BestWeights`) and averages them;
  the average is kept only when it scores at least as well as the best epoch on the selection rows.
- `refit` trains a fresh model on every training row (the selection rows included) for the epoch count the
  selection run chose, averaging its last N epochs when the selection run's average was kept (`LastWeights`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import TuneshipError
from ..log import get_logger
from .config import TrainConfig

logger = get_logger(__name__)
REFIT_MAX_ROWS = 20_000  # `refit="auto"` refits up to this many training rows: beyond, 20% more data adds little
LEARNING_RATES = ((50e6, 1e-4), (200e6, 3e-5), (math.inf, 2e-5))  # (base model parameters below, learning rate)


EPOCH_ROWS = 40_000  # `num_train_epochs="auto"` for classification: about this many rows seen, 2 to 6 epochs
DEFAULT_EPOCHS = 6
LAST_EPOCHS = 3  # ... and at most 3 when the last epoch is kept (the plain recipe's count, docs/results.md)


def resolve_keep(config: TrainConfig, default: str) -> TrainConfig:
    """`config` with `keep="auto"` (the task's `default`) and `warmup_ratio="auto"` (0 when the last epoch is kept,
    the plain recipe; 0.1 with `keep="best"`) filled in (a new config)."""
    keep = default if config.keep == "auto" else config.keep
    if keep == "last" and config.average_checkpoints > 1:
        raise TuneshipError("--average-checkpoints averages the best epochs: add --keep best (the last epoch is kept "
                            "by default for this task)")
    warmup = (0.0 if keep == "last" else 0.1) if config.warmup_ratio == "auto" else config.warmup_ratio
    return dataclasses.replace(config, keep=keep, warmup_ratio=warmup)


def resolve_epochs(config: TrainConfig, rows: int | None = None) -> TrainConfig:
    """`config` with `num_train_epochs="auto"` filled in (a new config; the caller's is left as it is): for
    classification (`rows` given) 40,000 / rows, between 2 and 6 (large sets need fewer passes, and a default run
    must finish), at most 3 when the last epoch is kept; 6 otherwise."""
    if config.num_train_epochs != "auto":
        return config
    most = LAST_EPOCHS if config.keep == "last" else DEFAULT_EPOCHS
    epochs = float(DEFAULT_EPOCHS if rows is None else min(most, max(2, round(EPOCH_ROWS / rows))))
    logger.info(f"epochs {epochs:g} (auto" + (f": {rows} training rows)" if rows else ")"))
    return dataclasses.replace(config, num_train_epochs=epochs)


def auto_learning_rate(parameters: int) -> float:
    """The peak learning rate for a base model of `parameters` parameters (`learning_rate="auto"`)."""
    return next(rate for limit, rate in LEARNING_RATES if parameters < limit)


def resolve_learning_rate(config: TrainConfig, model) -> TrainConfig:
    """`config` with `learning_rate="auto"` filled in from the size of `model`'s encoder (a new config, saved in
    train_config.json as used; the caller's is left as it is)."""
    if config.learning_rate != "auto":
        return config
    encoder = model.get_encoder() if getattr(model.config, "is_encoder_decoder", False) else model.base_model
    parameters = sum(p.numel() for p in encoder.parameters())
    rate = auto_learning_rate(parameters)
    logger.info(f"learning rate {rate:g} (auto: {parameters / 1e6:.1f}M parameters in the base model)")
    return dataclasses.replace(config, learning_rate=rate)


def _copy(model) -> dict:
    return {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}


def average(states: list[dict]) -> dict:
    """The element-wise mean of floating-point weights; other tensors (integer buffers) from the first state."""
    first = states[0]
    return {name: (sum(state[name] for state in states) / len(states)).to(value.dtype)
            if value.is_floating_point() else value for name, value in first.items()}


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


@dataclass
class Kept:
    """A copy of the weights at the end of an epoch, and its score on the selection rows (None when not scored)."""

    epoch: float
    score: float | None
    state: dict = field(repr=False)


def best_weights(count: int, metric: str, greater_is_better: bool = True):
    """A Trainer callback keeping (in memory, on the CPU) the weights of the `count` best-scored epochs."""

    class BestWeights(_callback_base()):
        def __init__(self):
            self.kept: list[Kept] = []

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            score = (metrics or {}).get(f"eval_{metric}")
            if score is None or model is None:
                return
            self.kept.append(Kept(state.epoch, score, _copy(model)))
            self.kept.sort(key=lambda k: k.score, reverse=greater_is_better)
            del self.kept[count:]

    return BestWeights()


def last_weights(count: int):
    """A Trainer callback keeping (in memory, on the CPU) the weights of the last `count` epochs."""

    class LastWeights(_callback_base()):
        def __init__(self):
            self.kept: list[Kept] = []

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            self.kept = [*self.kept, Kept(state.epoch, None, _copy(model))][-count:]

    return LastWeights()


def kept_epoch(trainer) -> int:
    """The epoch of the model the Trainer ended with: the best-scored one where it loads it (`load_best_model_at_end`,
    found in its log), else the last."""
    if not trainer.args.load_best_model_at_end:
        return max(1, round(trainer.state.epoch or 1))
    best = trainer.state.best_metric
    scores = [(e["epoch"], e) for e in trainer.state.log_history if f"eval_{trainer.args.metric_for_best_model}" in e]
    for epoch, entry in scores:
        if entry[f"eval_{trainer.args.metric_for_best_model}"] == best:
            return max(1, round(epoch))
    return max(1, round(trainer.state.epoch or 1))


def try_average(trainer, keeper, metric: str, greater_is_better: bool = True) -> dict | None:
    """Average the kept epochs into `trainer.model` when it scores at least as well as the best epoch on the
    evaluation rows; return what was decided (None when fewer than two epochs were kept)."""
    trainer.remove_callback(keeper)  # the epochs scored in training: the evaluations below must not join them
    kept = keeper.kept
    if len(kept) < 2:
        return None
    best_state, best_score = _copy(trainer.model), kept[0].score
    trainer.model.load_state_dict(average([k.state for k in kept]))
    score = trainer.evaluate()[f"eval_{metric}"]
    better = score >= best_score if greater_is_better else score <= best_score
    if not better:
        trainer.model.load_state_dict(best_state)
    logger.info(f"average of epochs {', '.join(f'{k.epoch:g}' for k in kept)}: {metric} {score:.4f} against "
                f"{best_score:.4f} for the best epoch -> {'kept' if better else 'not kept'}")
    return {"epochs": [k.epoch for k in kept], metric: score, "best_epoch_score": best_score, "kept": better}


def refit_wanted(config: TrainConfig, split_from_train: bool, rows: int) -> bool:
    """Whether to refit on every training row (see `TrainConfig.refit`)."""
    if config.refit == "auto":
        return split_from_train and rows <= REFIT_MAX_ROWS
    return config.refit == "yes"
