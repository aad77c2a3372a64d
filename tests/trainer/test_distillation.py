"""`tuneship distill`: a student with fewer layers, initialised from the teacher's, taught by its soft labels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import pair_rows, write_csv
from tuneship.errors import TuneshipError
from tuneship.trainer.distillation import DistillConfig, Run, distill, kept_layers, masked_copies

TUNESHIP = str(Path(sys.executable).with_name("tuneship"))


def test_the_student_starts_from_evenly_spaced_teacher_layers():
    assert kept_layers(6, 3) == [0, 2, 5] and kept_layers(6, 2) == [0, 5] and kept_layers(6, 1) == [5]
    assert kept_layers(12, 4) == [0, 4, 7, 11] and kept_layers(2, 2) == [0, 1]
    with pytest.raises(TuneshipError, match="the teacher has 6 layers; a student cannot have 8"):
        kept_layers(6, 8)


def test_masked_copies_mask_a_word_in_ten_and_at_least_one_the_same_way_for_a_seed():
    texts = [" ".join(f"w{i}" for i in range(200)), "two words", "one"]
    first, second = masked_copies(texts, 2, "[MASK]", seed=3)
    assert masked_copies(texts, 2, "[MASK]", seed=3) == [first, second] and first != second
    words = first[0].split()
    assert len(words) == 200 and 5 <= words.count("[MASK]") <= 40
    assert all(w in ("[MASK]", f"w{i}") for i, w in enumerate(words))
    assert first[1].split().count("[MASK]") == 1 and first[2] in ("one", "[MASK]")


def test_augment_adds_masked_unlabeled_copies_of_every_training_pair(pair_checkpoint, tmp_path):
    run = Run(DistillConfig(teacher=str(pair_checkpoint), output_dir=str(tmp_path / "s"), layers=1, augment=2))
    run.data = run.read_data()
    train, taught = run.data.train, run.taught_rows()
    assert run.epoch_rows() == len(taught) == 3 * len(train)
    extra = taught.select(range(len(train), len(taught)))
    assert set(extra["label"]) == {-100} and "[MASK]" in " ".join(list(extra["text"]) + list(extra["text_pair"]))
    assert list(extra["text"][: len(train)]) != list(train["text"])
    with pytest.raises(ValueError, match="augment must be 0 or more"):
        DistillConfig(teacher="t", output_dir="o", augment=-1)


def test_a_one_layer_student_trains_exports_and_serves(pair_checkpoint, tmp_path):
    from tuneship.export import ExportConfig, export
    from tuneship.serving import Predictor
    from tuneship.trainer import TorchClassifier

    unlabeled = write_csv(tmp_path / "unlabeled.csv", [{k: v for k, v in r.items() if k != "label"} for r in pair_rows(10)])
    result = distill(DistillConfig(teacher=str(pair_checkpoint), output_dir=str(tmp_path / "student"), layers=1,
                                   num_train_epochs=2, train_batch_size=8, learning_rate=1e-3, warmup_ratio=0.0,
                                   unlabeled_file=str(unlabeled)))
    config = json.loads((result.output_dir / "config.json").read_text())
    teacher = json.loads((pair_checkpoint / "config.json").read_text())
    assert config["num_hidden_layers"] == 1 < teacher["num_hidden_layers"]
    assert config["tuneship"]["text_pair_column"] == "sentence2" and config["id2label"] == teacher["id2label"]
    assert result.metrics["distillation"]["layers_kept"] == [1] and 0 <= result.metrics["accuracy"] <= 1
    card = (result.output_dir / "README.md").read_text()
    assert "## Distillation" in card and pair_checkpoint.name in card
    from huggingface_hub import ModelCard

    from tests.hub.test_cards import run_snippets

    assert ModelCard.load(result.output_dir / "README.md").data.pipeline_tag == "text-classification"
    run_snippets(result.output_dir)  # the student's card shows how to use the student
    student = TorchClassifier.from_checkpoint(result.output_dir)
    bundle = export(ExportConfig(model=str(result.output_dir), output_dir=str(tmp_path / "bundle"))).output_dir
    texts, pairs = ["the cat sat on mat 3"], ["a cat was on the mat 3"]
    assert Predictor.from_bundle(bundle, "fp32").predict(texts, pairs)[0]["label"] == student.predict(texts, pairs)[0]["label"]


def test_distill_from_the_command_line_refuses_a_non_classifier(qa_checkpoint, tmp_path):
    result = subprocess.run([TUNESHIP, "distill", "--teacher", str(qa_checkpoint), "--output", str(tmp_path / "s")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "distillation takes a text-classification teacher" in result.stderr


def test_hidden_weight_pulls_the_students_first_token_states_toward_the_teachers(pair_checkpoint, tmp_path):
    import types

    import numpy as np
    import torch
    import transformers

    from tuneship.trainer.distillation import _trainer_class

    run = Run(DistillConfig(teacher=str(pair_checkpoint), output_dir=str(tmp_path / "s"), layers=2, hidden_weight=100))
    run.data = run.read_data()
    student, tokenizer = run.build_model()
    assert run.hidden_layers() == [0]  # the 2 kept layers but the last
    train_set, _ = run.features(student, tokenizer)
    hidden = np.array(train_set["teacher_hidden"])
    assert hidden.shape == (len(run.data.train), 1, student.config.hidden_size)
    batch = transformers.DataCollatorWithPadding(tokenizer)([train_set[i] for i in range(4)])
    loss = _trainer_class().compute_loss

    def total(weight: float, targets) -> float:
        trainer = types.SimpleNamespace(temperature=2.0, alpha=0.5, hidden_weight=weight)
        student.eval()
        with torch.no_grad():
            return float(loss(trainer, student, {**batch, "teacher_hidden": targets}))

    # the student keeps both of the 2-layer teacher's layers, so its states are the teacher's: no distance
    assert total(100, batch["teacher_hidden"]) == pytest.approx(total(0, batch["teacher_hidden"]), abs=1e-4)
    moved = batch["teacher_hidden"] + torch.randn_like(batch["teacher_hidden"])
    assert total(100, moved) > total(0, moved) + 1.0

    result = distill(DistillConfig(teacher=str(pair_checkpoint), output_dir=str(tmp_path / "student"), layers=2,
                                   num_train_epochs=1, train_batch_size=8, hidden_weight=1.0))
    assert result.metrics["distillation"]["hidden_weight"] == 1.0
    assert "hidden states (weight 1)" in (result.output_dir / "README.md").read_text()
    with pytest.raises(ValueError, match="hidden_weight must be 0 or more"):
        DistillConfig(teacher="t", output_dir="o", hidden_weight=-1)
