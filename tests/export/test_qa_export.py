"""Export of an extractive QA checkpoint: bundle, gates, ONNX answers equal PyTorch's, served without torch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tuneship.serving.question_answering import QuestionAnswerer
from tuneship.bundle import BundleManifest
from tuneship.data.question_answering import read_qa_examples
from tuneship.trainer.question_answering import TorchQuestionAnswerer

TUNESHIP = str(Path(sys.executable).with_name("tuneship"))


def test_bundle_manifest_and_gates(qa_bundle):
    manifest = BundleManifest.load(qa_bundle)
    assert manifest.task == "question-answering"
    assert {k: manifest.settings[k] for k in ("doc_stride", "max_answer_length", "n_best")} == {"doc_stride": 12, "max_answer_length": 30, "n_best": 20} and manifest.max_length == 48
    parity = manifest.gates["fp32_parity"]
    assert parity["passed"] and parity["tokenization_identical"] and parity["max_abs_logit_difference"] <= 1e-4
    assert parity["inputs"] > 5  # short contexts and one of several windows
    int8 = manifest.gates["int8"]
    assert 0 <= int8["attempts"][0]["gate"]["agreement"] <= 1 and "f1" in int8["attempts"][0]["gate"]["fp32"]
    assert {"model.onnx", "model_quantized.onnx", "tokenizer.json", "examples.jsonl", "README.md"} <= {p.name for p in qa_bundle.iterdir()}


def test_onnx_answers_are_pytorch_answers(qa_bundle, qa_checkpoint):
    examples = read_qa_examples(qa_checkpoint.parent / "validation.json")
    torch_answers = TorchQuestionAnswerer.from_checkpoint(qa_checkpoint).answer_examples(examples)
    onnx_answers = QuestionAnswerer.from_bundle(qa_bundle, "fp32").answer_examples(examples)
    assert [(a.start, a.end, a.text) for a in onnx_answers] == [(a.start, a.end, a.text) for a in torch_answers]
    assert [a.score for a in onnx_answers] == pytest.approx([a.score for a in torch_answers], abs=1e-4)


def test_evaluate_bundle_and_checkpoint_agree_and_optimum_loads_it(qa_bundle, qa_checkpoint):
    validation = str(qa_checkpoint.parent / "validation.json")
    by_bundle = subprocess.run([TUNESHIP, "evaluate", "--bundle", str(qa_bundle), "--precision", "fp32", "--data", validation],
                               capture_output=True, text=True, timeout=300)
    by_model = subprocess.run([TUNESHIP, "evaluate", "--model", str(qa_checkpoint), "--data", validation],
                              capture_output=True, text=True, timeout=300)
    assert by_bundle.returncode == 0 and by_model.returncode == 0, by_bundle.stderr[-2000:] + by_model.stderr[-2000:]
    assert json.loads(by_bundle.stdout) == pytest.approx(json.loads(by_model.stdout))

    from optimum.onnxruntime import ORTModelForQuestionAnswering

    model = ORTModelForQuestionAnswering.from_pretrained(qa_bundle, file_name="model_quantized.onnx")
    assert model.config.tuneship["task"] == "question-answering"


def test_serving_answers_without_torch(qa_bundle):
    code = (
        "import sys, json; from tuneship.serving.question_answering import QuestionAnswerer;"
        f"qa = QuestionAnswerer.from_bundle({str(qa_bundle)!r});"
        "a = qa.answer(['When was the tower built?'], ['The tower was built in 1901 by the city.'])[0];"
        "print(json.dumps([a.to_dict(), sorted(m for m in ('torch', 'transformers') if m in sys.modules)]))"
    )
    answer, loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                               check=True, timeout=120).stdout)
    assert loaded == [] and answer["answer"] == "The tower was built in 1901 by the city."[answer["start"]:answer["end"]]
