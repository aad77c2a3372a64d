"""export() on tiny random checkpoints and on the default model fine-tuned on the bundled examples."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard

from tests.conftest import ticket_rows, tiny_checkpoint
from tuneship.errors import TuneshipError
from tuneship.export import ExportConfig, export
from tuneship.serving import BundleManifest, Predictor
from tuneship.serving.plan import PLAN_FILE
from tuneship.trainer import TorchClassifier
from tuneship.data.classification import load_labelled_texts

BUNDLE_FILES = (
    "model.onnx", "model_quantized.onnx", "config.json", "tokenizer.json", "tokenizer_config.json",
    "tuneship.json", "README.md", "examples.jsonl",
)


def validation_rows(checkpoint: Path, classifier) -> tuple:
    label2id = {name: i for i, name in enumerate(classifier.label_names)}
    return load_labelled_texts(str(checkpoint / "validation.jsonl"), classifier.columns, label2id)


def test_bundle_is_self_contained_and_described_by_its_manifest(pair_bundle, pair_checkpoint):
    for name in BUNDLE_FILES:
        assert (pair_bundle / name).is_file(), name
    hidden = [p.name for p in pair_bundle.iterdir() if p.name.startswith(".") and p.name != PLAN_FILE]
    assert not hidden, "no work files left behind (a served bundle may hold its plan cache)"
    manifest = BundleManifest.load(pair_bundle)
    settings = manifest.settings
    assert (settings["text_column"], settings["text_pair_column"], settings["label_column"]) == ("sentence1", "sentence2", "label")
    assert settings["labels"] == ["0", "1"] and manifest.max_length == 32 and settings["truncation"] == "longest_first"
    assert set(manifest.input_names) == {"input_ids", "attention_mask", "token_type_ids"} and manifest.opset >= 14
    for info in manifest.models.values():
        assert info["size_bytes"] == sum((pair_bundle / name).stat().st_size for name in info["files"])
    assert manifest.source["sha256"] and len(manifest.source["sha256"]) == 64
    assert manifest.export["optimize"] == "O3" and manifest.export["min_agreement"] == 0.985, "how it was made"
    assert "model" not in manifest.export and "output_dir" not in manifest.export
    parity = manifest.gates["fp32_parity"]
    assert parity["passed"] and parity["max_abs_logit_difference"] <= 1e-4 and parity["tokenization_identical"]
    assert parity["inputs"] >= 8
    int8 = manifest.gates["int8"]
    assert int8["attempts"] and all(0 <= a["gate"]["agreement"] <= 1 for a in int8["attempts"])
    assert manifest.default_precision == ("int8" if int8["passed"] else "fp32")
    card = ModelCard.load(pair_bundle / "README.md")
    assert "onnx" in card.data.tags and "## Export" in card.text
    assert "pipeline(" not in card.text, "the checkpoint's PyTorch snippet does not load a bundle"
    assert "ORTModelForSequenceClassification.from_pretrained" in card.text and "choose among the models" in card.text
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card.text)
    assert all((pair_bundle / image).is_file() for image in images), "every image the card shows is in the bundle"
    examples = [json.loads(line) for line in (pair_bundle / "examples.jsonl").read_text().splitlines()]
    assert len(examples) == 6 and all(set(e) == {"sentence1", "sentence2", "expected"} for e in examples)
    labels = json.loads((pair_bundle / "tuneship.json").read_text())["settings"]["labels"]
    assert {e["expected"] for e in examples} <= set(labels)


def test_fp32_bundle_predicts_what_pytorch_predicts(pair_bundle, pair_checkpoint):
    classifier = TorchClassifier.from_checkpoint(pair_checkpoint)
    texts, pairs, _ = validation_rows(pair_checkpoint, classifier)
    long_texts = [t * 40 for t in texts]  # truncated to max_length, longer text first
    expected = classifier.predict(texts + long_texts, pairs + pairs)
    got = Predictor.from_bundle(pair_bundle, precision="fp32").predict(texts + long_texts, pairs + pairs)
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    assert [g["truncated"] for g in got] == [e["truncated"] for e in expected] == [False] * len(texts) + [True] * len(texts)
    for g, e in zip(got, expected):
        assert g["probabilities"] == pytest.approx(e["probabilities"], abs=1e-4)


def test_optimum_loads_both_models_of_the_bundle(pair_bundle):
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(pair_bundle)
    inputs = tokenizer(["the cat sat on mat 1"], ["a cat was on the mat 1"], return_tensors="np")
    files = [("fp32", "model.onnx"), ("int8", "model_quantized.onnx"), ("int8", "model_nncf_int8.onnx")]
    for precision, file_name in files[: 3 if "nncf-int8" in BundleManifest.load(pair_bundle).models else 2]:
        model = ORTModelForSequenceClassification.from_pretrained(pair_bundle, file_name=file_name)
        logits = np.asarray(model(**inputs).logits)
        if file_name == "model_nncf_int8.onnx":  # NNCF's QDQ model loads in Optimum too (run by onnxruntime)
            assert logits.shape == (1, 2)
            continue
        ours, _ = Predictor.from_bundle(pair_bundle, precision=precision, runtime="onnxruntime").logits(
            ["the cat sat on mat 1"], ["a cat was on the mat 1"])
        np.testing.assert_allclose(logits, ours, atol=1e-5)


def test_single_text_model_exports_and_matches_pytorch(tiny_model, tmp_path):
    checkpoint = tiny_checkpoint(tiny_model, tmp_path, ticket_rows(45))
    bundle = tmp_path / "bundle"
    export(ExportConfig(model=str(checkpoint), output_dir=str(bundle), quantize="none"))
    manifest = BundleManifest.load(bundle)
    assert manifest.settings["text_pair_column"] is None and list(manifest.models) == ["fp32"] and manifest.default_precision == "fp32"
    classifier = TorchClassifier.from_checkpoint(checkpoint)
    texts, _, _ = validation_rows(checkpoint, classifier)
    expected = [p["label"] for p in classifier.predict(texts)]
    assert [p["label"] for p in Predictor.from_bundle(bundle).predict(texts)] == expected


def test_int8_gate_failure_keeps_fp32_as_default_and_reports_every_try(pair_checkpoint, tmp_path):
    bundle = tmp_path / "bundle"
    result = export(ExportConfig(model=str(pair_checkpoint), output_dir=str(bundle), min_agreement=1.01))
    int8 = result.manifest.gates["int8"]
    assert not int8["passed"] and not result.int8_passed and result.manifest.default_precision == "fp32"
    tried = [a["recipe_text"] for a in int8["attempts"]]
    assert tried[0] == "calibrated, per-tensor" and tried[1] == "calibrated, per-channel"
    assert "outlier smoothing" in tried[2] and any("sensitive node" in t for t in tried) and tried[-1].startswith("static")
    assert (bundle / "model_quantized.onnx").is_file(), "the best int8 try is kept"
    plan = Predictor.from_bundle(bundle).plan
    assert "int8" not in plan.precision, "no model that failed its gate is served"
    assert "did not pass the export's gate" in plan.candidates["onnxruntime-int8"]["reason"]


def test_strict_export_exits_non_zero_when_int8_fails(pair_checkpoint, tmp_path):
    command = [sys.executable, "-m", "tuneship.cli", "export", "--model", str(pair_checkpoint), "--output",
               str(tmp_path / "bundle"), "--min-agreement", "1.01", "--quantize", "static", "--strict"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "fp32 is the default" in result.stdout and (tmp_path / "bundle" / "tuneship.json").is_file()


def test_existing_output_is_refused_without_overwrite(pair_checkpoint, pair_bundle):
    with pytest.raises(TuneshipError, match="already exists"):
        export(ExportConfig(model=str(pair_checkpoint), output_dir=str(pair_bundle)))


def test_missing_or_corrupt_checkpoint_is_a_clear_error(pair_checkpoint, tmp_path):
    with pytest.raises(TuneshipError, match="no such checkpoint folder"):
        export(ExportConfig(model=str(tmp_path / "nowhere"), output_dir=str(tmp_path / "out")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TuneshipError, match="no config.json"):
        export(ExportConfig(model=str(tmp_path / "empty"), output_dir=str(tmp_path / "out")))
    corrupt = tmp_path / "corrupt"
    subprocess.run(["cp", "-r", str(pair_checkpoint), str(corrupt)], check=True)
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(TuneshipError, match="could not be loaded"):
        export(ExportConfig(model=str(corrupt), output_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


def test_interrupted_export_leaves_no_bundle(pair_checkpoint, tmp_path):
    output = tmp_path / "bundle"
    command = [sys.executable, "-m", "tuneship.cli", "export", "--model", str(pair_checkpoint), "--output", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:  # kill it in the middle, once the graph optimization has started
        if line.startswith("[2/"):
            break
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not output.exists(), "no half bundle where the finished one goes"
    export(ExportConfig(model=str(pair_checkpoint), output_dir=str(output)))  # a rerun starts afresh
    assert BundleManifest.load(output).gates["fp32_parity"]["passed"]


@pytest.mark.slow
def test_default_model_fine_tuned_on_the_examples_exports_within_the_gates(relevance_checkpoint, relevance_bundle):
    bundle = relevance_bundle
    manifest = BundleManifest.load(bundle)
    assert manifest.gates["fp32_parity"]["max_abs_logit_difference"] <= 1e-4
    classifier = TorchClassifier.from_checkpoint(relevance_checkpoint)
    texts, pairs, _ = validation_rows(relevance_checkpoint, classifier)
    torch_labels = [p["label"] for p in classifier.predict(texts, pairs)]
    assert [p["label"] for p in Predictor.from_bundle(bundle, "fp32").predict(texts, pairs)] == torch_labels
    # the model the int8 gate measured: onnxruntime's (the plan may serve the NNCF model, gated apart, at some lengths)
    int8_labels = [p["label"] for p in Predictor.from_bundle(bundle, "int8", runtime="onnxruntime").predict(texts, pairs)]
    agreement = np.mean([a == b for a, b in zip(int8_labels, torch_labels)])
    chosen = manifest.gates["int8"]["chosen"]
    if manifest.gates["int8"]["passed"]:
        assert agreement >= 0.985 and manifest.default_precision == "int8"
        assert manifest.gates["int8"]["attempts"][chosen]["gate"]["agreement"] == pytest.approx(agreement)
    # the demo's examples: rows the model gets right, every label among them, each with the file's label
    shown = [json.loads(line) for line in (bundle / "examples.jsonl").read_text().splitlines()]
    columns = Predictor.from_bundle(bundle, "fp32").settings.input_columns
    got = Predictor.from_bundle(bundle, "fp32").predict([e[columns[0]] for e in shown], [e[columns[1]] for e in shown])
    assert [p["label"] for p in got] == [e["expected"] for e in shown]
    assert {e["expected"] for e in shown} == set(classifier.label_names)
    checkpoint_size = (relevance_checkpoint / "model.safetensors").stat().st_size
    int8 = manifest.models["int8"]
    assert int8["size_bytes"] == (bundle / "model_quantized.onnx").stat().st_size < checkpoint_size / 2.5
    if not int8["recipe"]["exclude"]:  # with every layer in int8, the bundle's default is 3.5x smaller
        assert checkpoint_size / int8["size_bytes"] >= 3.5


def test_the_gate_says_when_its_rows_were_trained_on_by_a_refit(tmp_path):
    from tuneship.export.classification import gate_rows_trained_on

    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    config = ExportConfig(model=str(checkpoint), output_dir=str(tmp_path / "out"))
    assert not gate_rows_trained_on(config), "no metrics.json: nothing says the rows were trained on"
    (checkpoint / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    assert not gate_rows_trained_on(config)
    (checkpoint / "metrics.json").write_text(json.dumps({"accuracy": 0.9, "refit": {"epochs": 3, "rows": 100}}))
    assert gate_rows_trained_on(config)
    given = ExportConfig(model=str(checkpoint), output_dir=str(tmp_path / "out"), validation_data="dev.csv")
    assert not gate_rows_trained_on(given), "--validation replaces the checkpoint's rows"


def test_the_int8_ladder_counts_its_tries_as_remedies_yields_them():
    from tuneship.export.quantization import Recipe, max_tries, remedies

    for first in (Recipe(mode="calibrated", per_channel=False), Recipe(mode="static", per_channel=True)):
        yielded = list(remedies(first, lambda recipe: [f"node{i}" for i in range(10)]))
        assert len(yielded) == max_tries(first) and len(set(yielded)) == len(yielded)
