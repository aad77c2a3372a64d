"""train() on a tiny random BERT: the checkpoint folder, atomic output, resume, and inference."""

import dataclasses
import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from transformers import TrainerCallback, pipeline

from tests.conftest import pair_rows, ticket_rows, write_csv
from tuneship.errors import TuneshipError
from tuneship.serving import evaluate
from tuneship.trainer import TorchClassifier, TrainConfig, train


def tiny_config(tiny_model: Path, tmp_path: Path, rows: list[dict], **overrides) -> TrainConfig:
    values = dict(
        model=str(tiny_model), train_file=str(write_csv(tmp_path / "train.csv", rows)),
        output_dir=str(tmp_path / "model"), num_train_epochs=2, train_batch_size=8, learning_rate=1e-3,
        logging_steps=1, max_length=32, warmup_ratio=0.0,
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def tickets_model(tiny_model, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("tickets")
    # enough steps to learn the three classes: a model that predicts one class has tied logits, and ties can break
    # either way between the Trainer's batches and evaluate()'s
    return train(tiny_config(tiny_model, tmp_path, ticket_rows(40), num_train_epochs=10, learning_rate=3e-3))


def test_checkpoint_is_a_self_contained_hugging_face_folder(tickets_model):
    folder = tickets_model.output_dir
    for name in (
        "model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "training_args.json",
        "train_config.json", "metrics.json", "log_history.json", "validation.jsonl", "training_curve.png",
        "confusion_matrix.png", "README.md",
    ):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "bug", "1": "feature_request", "2": "general_inquiry"}
    assert config["tuneship"] == {
        "task": "text-classification", "text_column": "text", "text_pair_column": None, "label_column": "label",
        "max_length": 32, "truncation": "longest_first", "positive_label": None,
    }
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 32
    assert TrainConfig.from_dict(json.loads((folder / "train_config.json").read_text())).max_length == 32
    assert not Path(str(folder) + ".checkpoints").exists(), "epoch checkpoints are removed after success"
    assert (folder / "training_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_metrics_file_has_the_documented_keys(tickets_model):
    metrics = json.loads((tickets_model.output_dir / "metrics.json").read_text())
    for key in ("accuracy", "f1", "precision", "recall", "f1_macro", "f1_weighted", "per_class", "confusion_matrix"):
        assert key in metrics
    assert metrics["average"] == "macro" and set(metrics["per_class"]) == {"bug", "feature_request", "general_inquiry"}
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == metrics["num_examples"] == 9
    assert metrics == tickets_model.metrics


def test_model_card_parses_with_eval_results(tickets_model):
    card = ModelCard.load(tickets_model.output_dir / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["pipeline_tag"] == "text-classification"
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["accuracy"] == pytest.approx(tickets_model.metrics["accuracy"], abs=1e-4)
    for section in ("## Evaluation", "## Intended use", "## Training procedure", "## Limitations", "| learning_rate | 0.003 |"):
        assert section in card.text
    assert "feature_request" in card.text


def test_transformers_pipeline_loads_the_checkpoint(tickets_model):
    classifier = pipeline("text-classification", model=str(tickets_model.output_dir))
    assert classifier("the app crashes and shows an error")[0]["label"] in {"bug", "feature_request", "general_inquiry"}


def test_torch_classifier_predicts_named_labels_and_flags_truncation(tickets_model):
    classifier = TorchClassifier.from_checkpoint(tickets_model.output_dir)
    short, long = classifier.predict(["please add dark mode", "word " * 100])
    assert set(short["probabilities"]) == {"bug", "feature_request", "general_inquiry"}
    assert sum(short["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert short["score"] == max(short["probabilities"].values()) and not short["truncated"]
    assert long["truncated"]
    with pytest.raises(TuneshipError, match="single texts"):
        classifier.predict(["a"], ["b"])


def test_evaluate_matches_training_metrics_on_the_saved_split(tickets_model):
    classifier = TorchClassifier.from_checkpoint(tickets_model.output_dir)
    metrics = evaluate(classifier, tickets_model.output_dir / "validation.jsonl")
    assert tickets_model.metrics["accuracy"] > 0.5, "the fixture's model should have learned (no tied logits)"
    assert metrics["accuracy"] == pytest.approx(tickets_model.metrics["accuracy"])
    assert metrics["per_class"] == tickets_model.metrics["per_class"]


def test_pair_model_requires_the_second_text(tiny_model, tmp_path):
    result = train(tiny_config(tiny_model, tmp_path, pair_rows(24), num_train_epochs=1))
    classifier = TorchClassifier.from_checkpoint(result.output_dir)
    assert classifier.columns.text_pair == "sentence2" and classifier.positive_label_id == 1
    assert result.metrics["average"] == "binary" and result.metrics["positive_label"] == "1"
    with pytest.raises(TuneshipError, match=r"pairs \(sentence1, sentence2\)"):
        classifier.predict(["only one text"])
    assert len(classifier.predict(["a cat"], ["a cat on a mat"])) == 1


def test_existing_output_is_refused_without_overwrite(tiny_model, tmp_path):
    config = tiny_config(tiny_model, tmp_path, ticket_rows(12), training_args={"max_steps": 1})
    Path(config.output_dir).mkdir()
    with pytest.raises(TuneshipError, match="already exists; pass --overwrite"):
        train(config)


class Interrupt(TrainerCallback):
    """Stands in for a kill: stops the run right after the first checkpoint is written."""

    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


def test_interrupted_run_leaves_no_output_and_resumes(tiny_model, tmp_path):
    config = tiny_config(tiny_model, tmp_path, ticket_rows(24), num_train_epochs=3, early_stopping_patience=0)
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[Interrupt()])
    assert not Path(config.output_dir).exists(), "an interrupted run must not leave a half checkpoint"
    assert (config.checkpoints_dir / "checkpoint-3").is_dir()

    with pytest.raises(TuneshipError, match="pass --resume to continue it or --overwrite"):
        train(config)
    config.resume = True
    result = train(config)
    history = json.loads((result.output_dir / "log_history.json").read_text())
    assert [e["epoch"] for e in history if "eval_loss" in e] == [1.0, 2.0, 3.0]
    first_logged_step = min(e["step"] for e in history if "loss" in e)
    assert first_logged_step == 1, "the resumed run keeps the first epoch's history"


def test_resume_without_checkpoint_is_a_clear_error(tiny_model, tmp_path):
    with pytest.raises(TuneshipError, match="no checkpoint to resume from"):
        train(tiny_config(tiny_model, tmp_path, ticket_rows(12), resume=True))


def test_missing_base_model_is_a_clear_error(tmp_path):
    config = TrainConfig(train_file=str(write_csv(tmp_path / "t.csv", ticket_rows(12))), model=str(tmp_path / "nowhere"),
                         output_dir=str(tmp_path / "out"))
    with pytest.raises(TuneshipError, match="nowhere: no such folder"):  # a path, named as missing
        train(config)
    with pytest.raises(TuneshipError, match="could not load the base model 'no-such-org/no-such-model'"):  # offline
        train(dataclasses.replace(config, model="no-such-org/no-such-model"))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="validation_split must be between 0 and 1, got 1.5"):
        TrainConfig(validation_split=1.5)
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        TrainConfig(learning_rate=0)
    with pytest.raises(ValueError, match="metric_for_best_model must be one of"):
        TrainConfig(metric_for_best_model="bleu")
    # another task's option would be ignored: refused by name, with the task it belongs to
    from tuneship.errors import ConfigError

    with pytest.raises(ConfigError, match=r"doc_stride \(--doc-stride\) is a question-answering option; this run's "
                                          "task is text-classification"):
        TrainConfig(doc_stride=64)
    with pytest.raises(ConfigError, match="class_weights .* is a text-classification option"):
        TrainConfig(task="summarization", class_weights="balanced")
    for name, value in (("metric_for_best_model", "accuracy"), ("text_pair_column", "b"), ("drop_invalid", True)):
        with pytest.raises(ConfigError, match=f"{name} .* is a text-classification option; this run's task is "
                                              "question-answering"):  # QA keeps the best F1 and reads its own columns
            TrainConfig(task="question-answering", **{name: value})
    assert TrainConfig(task="question-answering", doc_stride=64).doc_stride == 64


def test_class_weights_weight_rare_classes_only_when_asked_or_rare():
    from tuneship.trainer.classification import class_weights

    rare = [0] * 95 + [1] * 5
    assert class_weights(rare, 2, "balanced") == pytest.approx([100 / 190, 10.0])
    assert class_weights(rare, 2, "auto") == pytest.approx([(100 / 190) ** 0.5, 10.0 ** 0.5])
    assert class_weights([0] * 68 + [1] * 32, 2, "auto") is None, "MRPC-like balance keeps the plain loss"
    assert class_weights(rare, 2, "none") is None


def test_weighted_loss_trains_and_is_recorded(tiny_model, tmp_path, capsys):
    rows = ticket_rows(40)
    rows = [r for r in rows if r["label"] != "bug"] + [r for r in rows if r["label"] == "bug"][:3]  # bug is rare
    result = train(tiny_config(tiny_model, tmp_path, rows, num_train_epochs=1))
    saved = json.loads((result.output_dir / "train_config.json").read_text())
    assert saved["class_weights"] == "auto" and 0.0 <= result.metrics["accuracy"] <= 1.0
    assert "class weights: bug" in capsys.readouterr().out, "the rare class switched the weighted loss on"


def test_any_training_argument_is_set_through_transformers_own_checks(tiny_model, tmp_path):
    result = train(tiny_config(tiny_model, tmp_path, ticket_rows(24), num_train_epochs=1,
                               training_args=["adam_beta2=0.98", "gradient_checkpointing=true"]))
    saved = json.loads((result.output_dir / "training_args.json").read_text())
    assert saved["adam_beta2"] == 0.98 and saved["gradient_checkpointing"] is True
    assert json.loads((result.output_dir / "train_config.json").read_text())["training_args"] == {
        "adam_beta2": "0.98", "gradient_checkpointing": "true"}


@pytest.mark.parametrize("values, message", [
    ({"learnin_rate": "1"}, r"'learnin_rate' is not a field of transformers.TrainingArguments; did you mean 'learning_rate'"),
    ({"adam_beta2": "abc"}, r"training_args: argument --adam_beta2.*: invalid float value: 'abc'"),
    ({"learning_rate": "1e-3"}, r"'learning_rate' is a tuneship option: set it with --learning-rate"),
    ({"output_dir": "x"}, r"'output_dir' is set by tuneship from --output"),
])
def test_a_wrong_training_argument_is_refused_before_training(tmp_path, values, message):
    config = TrainConfig(train_file=str(write_csv(tmp_path / "t.csv", ticket_rows(12))), output_dir=str(tmp_path / "out"),
                         training_args=values)
    with pytest.raises(TuneshipError, match=message):
        train(config)
    assert not (tmp_path / "out").exists()


def test_training_args_come_from_the_config_file_and_the_flag(tmp_path):
    from tuneship.cli import build_parser, config_from_args
    from tuneship.trainer.arguments import check_training_args

    (tmp_path / "run.yaml").write_text("training_args:\n  gradient_checkpointing: true\n  adam_beta2: 0.9\n")
    args = build_parser().parse_args(["train", "--config", str(tmp_path / "run.yaml"), "--training-arg",
                                      "adam_beta2=0.98", "--training-arg", "optim=adafactor"])
    config = config_from_args(TrainConfig, args, args.config)
    assert config.training_args == {"gradient_checkpointing": True, "adam_beta2": "0.98", "optim": "adafactor"}
    assert check_training_args(config.training_args)["adam_beta2"] == 0.98
    with pytest.raises(TuneshipError, match="--training-arg 'oops': give KEY=VALUE"):
        TrainConfig(training_args=["oops"])


def test_a_run_killed_while_saving_a_checkpoint_resumes_from_the_last_whole_one(tiny_model, tmp_path):
    """A real SIGKILL in the middle of writing the second epoch's checkpoint (after its weights, before its state)."""
    import subprocess
    import sys

    train_csv = write_csv(tmp_path / "train.csv", ticket_rows(24))
    output = tmp_path / "model"
    script = (
        "import os, signal, transformers\n"
        "from tuneship.trainer import TrainConfig, train\n"
        "saves = []\n"
        "original = transformers.Trainer._save_optimizer_and_scheduler\n"
        "def save(self, output_dir):\n"
        "    saves.append(output_dir)\n"
        "    if len(saves) == 2:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    original(self, output_dir)\n"
        "transformers.Trainer._save_optimizer_and_scheduler = save\n"
        f"train(TrainConfig(model={str(tiny_model)!r}, train_file={str(train_csv)!r}, output_dir={str(output)!r}, "
        "num_train_epochs=3, train_batch_size=8, learning_rate=1e-3, max_length=32, warmup_ratio=0.0, "
        "early_stopping_patience=0, save_total_limit=3, refit='no'))\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    checkpoints = sorted((tmp_path / "model.checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert len(checkpoints) == 2 and not (checkpoints[-1] / "trainer_state.json").exists(), "killed mid-save"

    result = subprocess.run([str(Path(sys.executable).with_name("tuneship")), "train", "--base-model", str(tiny_model),
                             "--train", str(train_csv), "--output", str(output), "--epochs", "3", "--batch-size", "8",
                             "--learning-rate", "1e-3", "--max-length", "32", "--warmup-ratio", "0",
                             "--early-stopping-patience", "0", "--refit", "no", "--resume"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"skipping {checkpoints[-1]}: incomplete" in result.stdout
    assert f"resuming from epoch 1 ({checkpoints[0].name})" in result.stdout
    history = json.loads((output / "log_history.json").read_text())
    assert [e["epoch"] for e in history if "eval_loss" in e] == [1.0, 2.0, 3.0]
