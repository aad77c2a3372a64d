"""The bundle's NNCF int8 model (`export/nncf.py`): made, gated like int8, left out with its reason when it fails."""

from __future__ import annotations

import importlib.util

import pytest

from tuneship.export import ExportConfig, export
from tuneship.serving import BundleManifest, Predictor

needs_nncf = pytest.mark.skipif(importlib.util.find_spec("nncf") is None, reason="needs nncf (the export extra)")


@needs_nncf
def test_every_classification_bundle_gets_a_gated_nncf_model(pair_bundle):
    manifest = BundleManifest.load(pair_bundle)
    gate = manifest.gates["nncf-int8"]
    assert gate["runtime"] in ("openvino", "onnxruntime") and gate["calibration_rows"] > 0
    assert 0 <= gate["agreement"] <= 1 and "batch_drift" in gate and gate["min_agreement"] == 0.985
    if gate["passed"]:
        info = manifest.models["nncf-int8"]
        assert (pair_bundle / info["files"][0]).stat().st_size == info["size_bytes"] > 0
        assert "SmoothQuant" in info["quantization"]
        assert info["size_bytes"] < manifest.models["fp32"]["size_bytes"]
    else:
        assert "nncf-int8" not in manifest.models and gate["reason"]


@needs_nncf
def test_a_model_that_fails_its_gate_is_left_out_with_the_reason(pair_checkpoint, tmp_path):
    result = export(ExportConfig(model=str(pair_checkpoint), output_dir=str(tmp_path / "bundle"),
                                 max_accuracy_drop=-1.0))  # no model can pass: the metric must rise by a point
    manifest = result.manifest
    assert "nncf-int8" not in manifest.models and not (tmp_path / "bundle" / "model_nncf_int8.onnx").exists()
    assert "its gate failed" in manifest.gates["nncf-int8"]["reason"]
    planned = Predictor.from_bundle(tmp_path / "bundle")
    assert "its gate failed" in planned.plan.candidates["openvino-int8"]["reason"]


def test_no_nncf_skips_it(pair_checkpoint, tmp_path):
    manifest = export(ExportConfig(model=str(pair_checkpoint), output_dir=str(tmp_path / "bundle"), nncf=False)).manifest
    assert "nncf-int8" not in manifest.models and "nncf-int8" not in manifest.gates
    planned = Predictor.from_bundle(tmp_path / "bundle", plan_cache=False)
    assert planned.plan.candidates["openvino-int8"]["reason"] == "the bundle has no nncf-int8 model"


@needs_nncf
def test_question_answering_bundles_get_one_too(qa_bundle):
    manifest = BundleManifest.load(qa_bundle)
    gate = manifest.gates["nncf-int8"]
    assert "agreement" in gate or gate["reason"]
    assert ("nncf-int8" in manifest.models) == gate["passed"]
