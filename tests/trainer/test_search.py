"""`train --search N`: Optuna trials through Trainer.hyperparameter_search, resumable, with checked search spaces."""

from __future__ import annotations

import json

import pytest
from transformers import TrainerCallback

from tests.conftest import squad_file, ticket_rows, write_csv
from tuneship.errors import TuneshipError
from tuneship.trainer import TrainConfig, train


def config(tiny_model, tmp_path, **overrides) -> TrainConfig:
    space = {"learning_rate": {"low": 1e-4, "high": 3e-3, "log": True}, "num_train_epochs": {"low": 1, "high": 2, "step": 1},
             "train_batch_size": {"choices": [8, 16]}}
    values = dict(model=str(tiny_model), train_file=str(write_csv(tmp_path / "train.csv", ticket_rows(30))),
                  output_dir=str(tmp_path / "model"), max_length=32, logging_steps=1, search=2, search_space=space,
                  refit="no")
    return TrainConfig(**{**values, **overrides})


class StopSecondTrial(TrainerCallback):
    """Stands in for a kill during the second trial."""

    def __init__(self):
        self.trials = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.trials += 1
        if self.trials == 2:
            raise KeyboardInterrupt


def test_a_two_trial_search_picks_settings_the_real_run_uses(tiny_model, tmp_path, capsys):
    result = train(config(tiny_model, tmp_path))
    out = capsys.readouterr().out
    assert "search: trial 1/2 " in out and "search: trial 2/2 " in out and "learning_rate=" in out
    search = json.loads((result.output_dir / "search.json").read_text())
    assert len(search["trials"]) == 2 and search["best"] == result.metrics["search"]["best"]
    saved = json.loads((result.output_dir / "train_config.json").read_text())
    for name, value in search["best"].items():
        assert saved[name] == value, name
    assert (result.output_dir / "search.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Hyperparameter search" in (result.output_dir / "README.md").read_text()
    assert not list((tmp_path / "model.checkpoints").glob("run-*")) if (tmp_path / "model.checkpoints").exists() else True


def test_an_interrupted_search_continues_from_its_finished_trials(tiny_model, tmp_path, capsys):
    interrupted = config(tiny_model, tmp_path, search=3)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, callbacks=[StopSecondTrial()])
    with pytest.raises(TuneshipError, match="pass --resume to continue it"):
        train(config(tiny_model, tmp_path, search=3))
    result = train(config(tiny_model, tmp_path, search=3, resume=True))
    assert "search: 1 trial(s) already finished" in capsys.readouterr().out
    states = [t["state"] for t in json.loads((result.output_dir / "search.json").read_text())["trials"]]
    assert states.count("complete") + states.count("pruned") == 3


@pytest.mark.parametrize("space, message", [
    ({"learning_rate": {"low": 1e-3, "high": 1e-4}}, r"search.space.learning_rate: low \(0.001\) must be below high"),
    ({"dropout": {"low": 0.0, "high": 0.5}}, r"search.space.dropout: not an option a search can vary"),
    ({"learning_rate": {"low": 0, "high": 1e-3, "log": True}}, r"search.space.learning_rate: a log scale needs low above 0"),
    ({"warmup_ratio": {"min": 0, "max": 1}}, r"search.space.warmup_ratio: give \{low: ..., high: ...\}"),
])
def test_a_bad_search_space_is_refused_before_training(space, message):
    with pytest.raises(TuneshipError, match=message):
        TrainConfig(search=2, search_space=space)


def test_the_config_file_search_mapping_and_the_flag(tmp_path):
    from tuneship.cli import build_parser, config_from_args

    (tmp_path / "run.yaml").write_text("search:\n  trials: 4\n  space:\n    learning_rate: {low: 1.0e-5, high: 1.0e-4}\n")
    args = build_parser().parse_args(["train", "--config", str(tmp_path / "run.yaml"), "--search", "6"])
    config = config_from_args(TrainConfig, args, args.config)
    assert config.search == 6 and config.search_space == {"learning_rate": {"low": 1e-5, "high": 1e-4}}
    (tmp_path / "bad.yaml").write_text("search:\n  trails: 4\n")
    with pytest.raises(TuneshipError, match="search: unknown key\\(s\\) trails; use trials and space"):
        config_from_args(TrainConfig, build_parser().parse_args(["train", "--config", str(tmp_path / "bad.yaml")]),
                         str(tmp_path / "bad.yaml"))


def test_search_is_refused_for_a_task_without_it(tiny_model, tmp_path):
    qa = TrainConfig(task="question-answering", model=str(tiny_model), train_file=str(squad_file(tmp_path / "t.json", 8)),
                     output_dir=str(tmp_path / "qa"), search=2)
    with pytest.raises(TuneshipError, match="question-answering has no search stage yet"):
        train(qa)


def test_a_searched_training_argument_that_is_no_tuneship_option_goes_into_training_args():
    from tuneship.trainer.search import apply_best

    config = TrainConfig(train_file="train.csv", training_args={"max_grad_norm": "0.5"})
    best = apply_best(config, {"best": {"learning_rate": 3e-5, "lr_scheduler_type": "cosine"}})
    assert best.learning_rate == 3e-5 and best.training_args == {"max_grad_norm": "0.5", "lr_scheduler_type": "cosine"}
    assert config.training_args == {"max_grad_norm": "0.5"} and config.learning_rate == "auto", "the caller's is kept"
