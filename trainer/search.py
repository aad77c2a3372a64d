"""Hyperparameter search with Optuna through `transformers.Trainer.hyperparameter_search`.

Trials train on the training rows and are scored on the selection rows (the split of `--train`, or
`--validation`): never on data reported as held out. Each trial is pruned early when its epoch scores
fall behind the others' (Optuna's median pruner), the study is kept in `OUTPUT.checkpoints/search.db` so an
interrupted search continues from its finished trials, and the best trial's settings are then used for the
real run (refit included). The default space is `config.DEFAULT_SPACE`; a config file's `search:` mapping can
replace any of it (checked in `TrainConfig`, before any training):

    search:
      trials: 12
      space:
        learning_rate: {low: 1.0e-5, high: 2.0e-4, log: true}
        num_train_epochs: {low: 2, high: 6}
        train_batch_size: {choices: [8, 16, 32]}
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from ..errors import TuneshipError, require
from ..log import get_logger
from .config import SEARCHABLE_TRAINING_ARGS, TrainConfig, check_space, searchable

logger = get_logger(__name__)
STUDY_FILE = "search.db"
def _suggest(trial, name: str, spec: dict, kind: type):
    if "choices" in spec:
        return trial.suggest_categorical(name, spec["choices"])
    if kind is int:
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), step=int(spec.get("step", 1)),
                                 log=bool(spec.get("log")))
    step = float(spec["step"]) if "step" in spec else None
    return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), step=step, log=bool(spec.get("log")))


def study_path(config: TrainConfig) -> Path:
    return config.checkpoints_dir / STUDY_FILE


def trial_progress(metric: str, total: int):
    """A `TrainerCallback` that logs one line per trial as it ends: its settings and its epoch scores."""
    from transformers import TrainerCallback

    class TrialProgress(TrainerCallback):
        def __init__(self):
            self.count, self.scores, self.params = 0, [], {}

        def report(self, outcome: str) -> None:
            scores = ", ".join(f"{score:.4f}" for score in self.scores) or "none"
            settings = ", ".join(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
                                 for name, value in self.params.items())
            logger.info(f"search: trial {self.count}/{total} {outcome}: {metric} per epoch {scores} ({settings})")
            self.scores = []

        def on_train_begin(self, args, state, control, **kwargs):
            if self.scores:  # the previous trial stopped without ending its training: Optuna pruned it
                self.report("pruned")
            self.count += 1
            self.params = {name: getattr(args, name) for name in ("learning_rate", "num_train_epochs",
                                                                   "per_device_train_batch_size", "warmup_ratio",
                                                                   "weight_decay")}

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and f"eval_{metric}" in metrics:
                self.scores.append(metrics[f"eval_{metric}"])

        def on_train_end(self, args, state, control, **kwargs):
            self.report("finished")

    return TrialProgress()


def run_search(config: TrainConfig, trainer, metric: str, greater_is_better: bool = True) -> dict:
    """Search `config.search` trials with `trainer` (built with a `model_init`); returns the best settings (as
    TrainConfig options) and every trial, for `search.json`, the card and the plot."""
    optuna = require("optuna", "train")
    space, kinds = check_space(config.search_space), searchable()
    arg_names = {name: name for name in SEARCHABLE_TRAINING_ARGS}
    arg_names |= {f.name: f.metadata["training_arg"] for f in dataclasses.fields(TrainConfig) if "training_arg" in f.metadata}

    def hp_space(trial) -> dict:
        return {arg_names[name]: _suggest(trial, name, spec, kinds[name]) for name, spec in space.items()}

    config.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{study_path(config).resolve()}"
    study = optuna.create_study(study_name="tuneship", storage=storage, load_if_exists=True,
                                direction="maximize" if greater_is_better else "minimize")
    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    remaining = config.search - len(finished)
    if finished:
        logger.info(f"search: {len(finished)} trial(s) already finished in {study_path(config)}; {max(remaining, 0)} to go")
    if remaining > 0:
        logger.info(f"search: {remaining} trial(s) over {', '.join(space)}, each scored on {metric} of the selection rows")
        progress = trial_progress(metric, remaining)
        trainer.add_callback(progress)
        trainer.hyperparameter_search(
            hp_space=hp_space, n_trials=remaining, backend="optuna", compute_objective=lambda m: m[f"eval_{metric}"],
            direction="maximize" if greater_is_better else "minimize", study_name="tuneship", storage=storage,
            load_if_exists=True, pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        )
        if progress.scores:  # the last trial was pruned
            progress.report("pruned")
        trainer.remove_callback(progress)
        study = optuna.load_study(study_name="tuneship", storage=storage)
    for run in config.checkpoints_dir.glob("run-*"):  # each trial's epoch checkpoints
        shutil.rmtree(run, ignore_errors=True)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise TuneshipError(f"search: no trial finished (see {study_path(config)})")
    best = dict(study.best_trial.params)  # suggested under the TrainConfig option names
    trials = [{"number": t.number, "state": t.state.name.lower(),
               metric: t.value if t.value is not None else next(reversed(t.intermediate_values.values()), None),
               "params": dict(t.params),
               "epochs_scored": len(t.intermediate_values)} for t in study.trials]
    logger.info(f"search: best trial {study.best_trial.number} ({metric} {study.best_value:.4f}): "
                + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in best.items()))
    return {"metric": metric, "best_trial": study.best_trial.number, "best_value": study.best_value, "best": best,
            "space": space, "trials": trials}


def apply_best(config: TrainConfig, result: dict) -> TrainConfig:
    """`config` with the best trial's options (a new config, which the real run then uses); a TrainingArguments field
    that is not a tuneship option goes into its `training_args`."""
    options = {f.name for f in dataclasses.fields(TrainConfig)}
    chosen = {k: v for k, v in result["best"].items() if k in options}
    extra = {k: v for k, v in result["best"].items() if k not in options}
    return dataclasses.replace(config, **chosen, training_args={**config.training_args, **extra})


def write_search(folder: Path, result: dict) -> None:
    """`search.json` (every trial) and `search.png` (the metric per trial, the best so far) beside the model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (folder / "search.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    done = [t for t in result["trials"] if t["state"] == "complete"]
    metric = result["metric"]
    fig, axis = plt.subplots(figsize=(7, 4))
    axis.plot([t["number"] for t in done], [t[metric] for t in done], "o", label="complete")
    pruned = [t for t in result["trials"] if t["state"] == "pruned" and t[metric] is not None]
    if pruned:
        axis.plot([t["number"] for t in pruned], [t[metric] for t in pruned], "x", color="gray", label="pruned")
    best = [max(t[metric] for t in done if t["number"] <= n["number"]) for n in done]
    axis.step([t["number"] for t in done], best, where="post", color="tab:green", label="best so far")
    axis.set(xlabel="trial", ylabel=f"selection-row {metric}", title="Hyperparameter search")
    axis.legend()
    axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "search.png", dpi=110)
    plt.close(fig)
