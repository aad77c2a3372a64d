"""`--pooling mean`: a head over the tokens' mean that trains, saves a transformers-loadable folder, exports and serves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import export_bundle, pair_rows, write_csv
from tests.hub.test_cards import run_snippets


@pytest.fixture(scope="module")
def mean_checkpoint(tiny_model, tmp_path_factory):
    from tuneship.trainer import TrainConfig, train

    folder = tmp_path_factory.mktemp("mean")
    config = TrainConfig(
        model=str(tiny_model), train_file=str(write_csv(folder / "train.csv", pair_rows(40))),
        output_dir=str(folder / "model"), num_train_epochs=2, train_batch_size=8, learning_rate=1e-3, max_length=32,
        warmup_ratio=0.0, logging_steps=1, pooling="mean",
    )
    return train(config).output_dir


PAIRS = (["the cat sat on mat 3", "the cat sat on mat 4"], ["a cat was on the mat 3", "stocks fell 4"])


def mean_pooled_logits(model, tokenizer, texts, pairs):
    """The head computed by hand from the base encoder: the masked mean of the last hidden states, then the linear."""
    import torch

    inputs = tokenizer(texts, pairs, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.bert(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        return model.classifier((hidden * mask).sum(1) / mask.sum(1)).numpy()


def test_the_head_reads_the_mean_of_the_tokens_and_the_folder_loads_in_transformers(mean_checkpoint):
    import torch
    import transformers

    from tuneship.trainer.classification import TorchClassifier
    from tuneship.trainer.mean_pooling import BertMeanPoolingForSequenceClassification

    config = json.loads((mean_checkpoint / "config.json").read_text())
    assert config["architectures"] == ["BertMeanPoolingForSequenceClassification"]
    assert config["auto_map"]["AutoModelForSequenceClassification"].endswith("BertMeanPoolingForSequenceClassification")
    assert (mean_checkpoint / "mean_pooling.py").is_file()

    classifier = TorchClassifier.from_checkpoint(mean_checkpoint)  # tuneship's own loader: no remote code
    assert isinstance(classifier.model, BertMeanPoolingForSequenceClassification)
    ours, _ = classifier.logits(*PAIRS)
    expected = mean_pooled_logits(classifier.model, classifier.tokenizer, *PAIRS)
    np.testing.assert_allclose(ours, expected, atol=1e-5)

    # A user's transformers: the folder's own file, with trust_remote_code, gives the same logits.
    loaded = transformers.AutoModelForSequenceClassification.from_pretrained(mean_checkpoint, trust_remote_code=True)
    assert type(loaded).__name__ == "BertMeanPoolingForSequenceClassification"
    tokenizer = transformers.AutoTokenizer.from_pretrained(mean_checkpoint)
    with torch.no_grad():
        theirs = loaded.eval()(**tokenizer(*PAIRS, padding=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(theirs, expected, atol=1e-5)
    pipe = transformers.pipeline("text-classification", model=str(mean_checkpoint), trust_remote_code=True)
    assert pipe({"text": PAIRS[0][0], "text_pair": PAIRS[1][0]})["label"] in config["id2label"].values()
    assert "trust_remote_code=True" in (mean_checkpoint / "README.md").read_text()  # else transformers' own head
    run_snippets(mean_checkpoint)  # the card's snippet runs against the folder


def test_a_mean_pooled_checkpoint_exports_and_serves_like_pytorch(mean_checkpoint, tmp_path):
    from tuneship.bundle import BundleManifest
    from tuneship.serving.classification import Predictor
    from tuneship.trainer.classification import TorchClassifier

    bundle = export_bundle(mean_checkpoint, tmp_path / "bundle")
    manifest = BundleManifest.load(bundle)
    torch_labels = [row["label"] for row in TorchClassifier.from_checkpoint(mean_checkpoint).predict(*PAIRS)]
    served = Predictor.from_bundle(bundle, "fp32", runtime="onnxruntime").predict(*PAIRS)
    assert [row["label"] for row in served] == torch_labels
    assert manifest.gates["fp32_parity"]["passed"]  # the export stops when it fails; recorded for the reader
    assert manifest.gates["fp32_parity"]["max_abs_logit_difference"] < 1e-3
    run_snippets(bundle)  # Optimum's ORTModelForSequenceClassification loads the bundle


def test_export_refuses_a_mean_pooled_checkpoint_whose_model_file_is_not_tuneships(mean_checkpoint, tmp_path):
    import shutil

    from tuneship.errors import TuneshipError
    from tuneship.export.conversion import export_onnx

    copy = shutil.copytree(mean_checkpoint, tmp_path / "model")
    (copy / "mean_pooling.py").write_text("import os  # someone else's code\n")
    with pytest.raises(TuneshipError, match="mean_pooling.py.*not tuneship's own"):
        export_onnx(copy, tmp_path / "onnx")


def test_mean_pooling_refuses_a_base_that_is_not_bert(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    from tuneship.errors import ConfigError
    from tuneship.trainer import TrainConfig
    from tuneship.trainer.classification import head_class

    DistilBertModel(DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64)).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="BERT base model"):
        head_class(TrainConfig(model=str(tmp_path), pooling="mean"))


def test_a_student_of_a_mean_pooled_teacher_keeps_its_head(mean_checkpoint, tmp_path):
    from tuneship.trainer import DistillConfig, TorchClassifier, distill
    from tuneship.trainer.mean_pooling import BertMeanPoolingForSequenceClassification

    result = distill(DistillConfig(teacher=str(mean_checkpoint), output_dir=str(tmp_path / "student"), layers=1,
                                   num_train_epochs=1, train_batch_size=8, learning_rate=1e-3, warmup_ratio=0.0))
    assert isinstance(TorchClassifier.from_checkpoint(result.output_dir).model, BertMeanPoolingForSequenceClassification)
    assert (result.output_dir / "mean_pooling.py").is_file()
    run_snippets(result.output_dir)  # with trust_remote_code=True: the student's card loads the student
