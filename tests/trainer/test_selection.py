"""After the epochs are scored: averaging the best epochs, refitting on every row, the learning rate by model size,
and pair-order augmentation."""

from __future__ import annotations

import json

import pytest

from tests.conftest import pair_rows, ticket_rows, write_csv
from tuneship.errors import DataError, TuneshipError
from tuneship.trainer import TrainConfig, train
from tuneship.trainer.selection import auto_learning_rate, average, best_weights, try_average


def config(tiny_model, tmp_path, rows, **overrides) -> TrainConfig:
    values = dict(model=str(tiny_model), train_file=str(write_csv(tmp_path / "train.csv", rows)),
                  output_dir=str(tmp_path / "model"), num_train_epochs=3, train_batch_size=8, learning_rate=1e-3,
                  logging_steps=1, max_length=32, warmup_ratio=0.0, early_stopping_patience=0)
    return TrainConfig(**{**values, **overrides})


def test_average_is_the_element_wise_mean_of_float_weights():
    import torch

    states = [{"w": torch.tensor([1.0, 3.0]), "ids": torch.tensor([0, 1])},
              {"w": torch.tensor([3.0, 5.0]), "ids": torch.tensor([7, 7])}]
    averaged = average(states)
    assert averaged["w"].tolist() == [2.0, 4.0] and averaged["ids"].tolist() == [0, 1]


class EpochTrainer:
    """What `try_average` uses of a `transformers.Trainer`: a model, callbacks told of every evaluation (as the
    Trainer's callback handler does), `remove_callback`; it scores a model by its one weight."""

    def __init__(self, callbacks):
        import torch

        self.model, self.callbacks, self.epoch = torch.nn.Linear(1, 1, bias=False), list(callbacks), 0

    def evaluate(self):
        metrics = {"eval_f1": float(self.model.weight.detach().sum())}
        for callback in self.callbacks:
            callback.on_evaluate(None, type("State", (), {"epoch": self.epoch})(), None, metrics=metrics, model=self.model)
        return metrics

    def remove_callback(self, callback):
        self.callbacks.remove(callback)


def test_the_average_names_the_epochs_it_averaged_and_its_own_scoring_joins_none_of_them():
    import torch

    keeper = best_weights(2, "f1")
    trainer = EpochTrainer([keeper])
    for epoch, weight in ((1, 0.8), (2, 0.7), (3, 0.2), (4, 0.3)):  # best: epochs 1 and 2; the average at 4
        trainer.epoch = epoch
        trainer.model.weight.data.fill_(weight)
        trainer.evaluate()
    averaged = try_average(trainer, keeper, "f1")
    assert averaged["epochs"] == [1, 2], "the two best epochs (not the epoch the average was scored at)"
    assert averaged["f1"] == pytest.approx(0.75) and averaged["kept"] is False  # 0.75 < 0.8: the best epoch stays
    assert float(trainer.model.weight.detach()) == pytest.approx(0.3), "not kept: the trainer's model is back as it was"
    trainer.evaluate()  # the run's final scoring
    assert [k.epoch for k in keeper.kept] == [1, 2] and keeper not in trainer.callbacks
    assert torch.equal(keeper.kept[0].state["weight"], torch.tensor([[0.8]]))


def test_learning_rate_follows_the_base_model_size():
    assert auto_learning_rate(22_700_000) == 1e-4  # all-MiniLM-L6-v2
    assert auto_learning_rate(109_000_000) == 3e-5  # BERT-base
    assert auto_learning_rate(335_000_000) == 2e-5  # BERT-large
    with pytest.raises(ValueError, match="learning_rate must be a number or 'auto'"):
        TrainConfig(learning_rate="fast")


def test_averaged_epochs_and_refit_on_every_row(tiny_model, tmp_path):
    given = config(tiny_model, tmp_path, ticket_rows(40), average_checkpoints=2, refit="yes", learning_rate="auto",
                   num_train_epochs="auto", keep="best")
    result = train(given)
    assert (given.learning_rate, given.num_train_epochs) == ("auto", "auto"), "the caller's config is left as it is"
    assert result.config.learning_rate == 1e-4 and result.config.num_train_epochs == 6, "the options as used"
    averaged, refit = result.metrics["averaged_epochs"], result.metrics["refit"]
    assert len(averaged["epochs"]) == 2 and isinstance(averaged["kept"], bool)
    assert refit["rows"] == 40 and 1 <= refit["epochs"] <= 6
    saved = json.loads((result.output_dir / "train_config.json").read_text())
    assert saved["learning_rate"] == 1e-4, "auto is saved as the rate used (a 2-layer model is small)"
    history = json.loads((result.output_dir / "log_history.json").read_text())
    assert any(e.get("refit") for e in history) and any("eval_loss" in e for e in history)
    assert not (tmp_path / "model.checkpoints").exists()


def test_the_default_classification_recipe_is_the_plain_script_keeping_the_last_epoch(tiny_model, tmp_path):
    """With nothing set, a classification run is the plain recipe (the study's `plain-1e-4`): the same weights."""
    import torch
    from safetensors.torch import load_file

    validation = write_csv(tmp_path / "validation.csv", ticket_rows(9))
    common = dict(validation_file=str(validation), learning_rate="auto", num_train_epochs="auto", warmup_ratio="auto",
                  early_stopping_patience=2)
    default = train(config(tiny_model, tmp_path, ticket_rows(30), output_dir=str(tmp_path / "default"), **common))
    used = default.config
    assert (used.keep, used.warmup_ratio, used.num_train_epochs, used.learning_rate) == ("last", 0.0, 3.0, 1e-4)
    history = json.loads((default.output_dir / "log_history.json").read_text())
    assert [round(e["epoch"]) for e in history if "eval_loss" in e] == [1, 2, 3], "every epoch scored, none stops it"
    last = [e for e in history if "eval_loss" in e][-1]
    assert default.metrics["accuracy"] == pytest.approx(last["eval_accuracy"]), "the model kept is the last epoch's"
    plain = train(config(tiny_model, tmp_path, ticket_rows(30), output_dir=str(tmp_path / "plain"), **{
        **common, "learning_rate": 1e-4, "num_train_epochs": 3, "warmup_ratio": 0.0, "keep": "last", "refit": "no"}))
    weights = [load_file(result.output_dir / "model.safetensors") for result in (default, plain)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0]), "the plain recipe, exactly"
    card = (default.output_dir / "README.md").read_text()
    assert "the checkpoint kept is the last epoch" in card and "early_stopping_patience" not in card


def test_keep_best_selects_and_averaging_needs_it(tiny_model, tmp_path):
    with pytest.raises(TuneshipError, match="--average-checkpoints.*--keep best"):
        train(config(tiny_model, tmp_path, ticket_rows(12), average_checkpoints=2))
    result = train(config(tiny_model, tmp_path, ticket_rows(30), keep="best", warmup_ratio="auto",
                          num_train_epochs="auto", refit="no"))
    assert (result.config.keep, result.config.warmup_ratio, result.config.num_train_epochs) == ("best", 0.1, 6.0)
    assert "the checkpoint kept is the best validation `accuracy` over the epochs" in (  # three labels: accuracy
        result.output_dir / "README.md").read_text()


def test_refit_auto_only_when_the_selection_rows_come_from_the_training_file(tiny_model, tmp_path):
    validation = write_csv(tmp_path / "validation.csv", ticket_rows(9))
    result = train(config(tiny_model, tmp_path, ticket_rows(30), validation_file=str(validation), num_train_epochs=1))
    assert "refit" not in result.metrics, "with --validation, the kept model is the one scored there"
    result = train(config(tiny_model, tmp_path, ticket_rows(30), num_train_epochs=1, overwrite=True))
    assert result.metrics["refit"]["rows"] == 30


def test_swap_pairs_is_for_pairs_only(tiny_model, tmp_path):
    from tuneship.trainer.classification import load_classification_data, swapped

    data = load_classification_data(str(write_csv(tmp_path / "p.csv", pair_rows(10))))
    both = swapped(data.train)
    assert len(both) == 2 * len(data.train)
    assert both[len(data.train)]["text"] == data.train[0]["text_pair"] and both[len(data.train)]["label"] == data.train[0]["label"]
    with pytest.raises(DataError, match="--swap-pairs needs pairs of texts"):
        train(config(tiny_model, tmp_path, ticket_rows(12), swap_pairs=True))


def test_training_logs_read_as_lines_not_dicts():
    from tuneship.trainer.runs import format_log

    assert format_log({"loss": 0.6945, "grad_norm": 0.54308, "learning_rate": 1.3636e-05, "epoch": 0.09}) == \
        "epoch 0.09 · loss 0.6945 · gradient norm 0.5431 · learning rate 1.364e-05"
    assert format_log({"eval_loss": 0.41, "eval_accuracy": 0.8723, "eval_runtime": 3.2,
                       "eval_samples_per_second": 60.0, "epoch": 2.0}) == "epoch 2 · validation loss 0.41 · accuracy 0.8723"
    assert format_log({"train_runtime": 300.0, "train_loss": 0.35, "total_flos": 1e12, "epoch": 10.0}) == \
        "epoch 10 · mean training loss 0.35"
