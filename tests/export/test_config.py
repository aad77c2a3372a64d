"""`ExportConfig` is checked when built, from Python as from the command line, and its recipe (the options, not
the folders) is what a bundle's manifest keeps under `export`."""

from __future__ import annotations

import pytest

from tuneship.errors import TuneshipError
from tuneship.export.config import ExportConfig


@pytest.mark.parametrize("options, message", [
    ({"optimize": "O9"}, "optimize must be one of O1, O2, O3, none, not 'O9'"),
    ({"quantize": "fp8"}, "quantize must be one of calibrated, dynamic, static, none"),
    ({"isa": "sse2"}, "isa must be one of auto"),
    ({"min_agreement": 0}, "min_agreement is a share of labels"),
    ({"min_agreement": 98.5}, "min_agreement is a share of labels"),
    ({"max_accuracy_drop": 5}, "max_accuracy_drop is a share"),
    ({"max_logit_difference": 0}, "max_logit_difference must be positive"),
    ({"calibration_samples": 0}, "calibration_samples must be at least 1"),
    ({"opset": 0}, "opset must be a positive whole number"),
    ({"model": ""}, "model is required"),
    ({"output_dir": None}, "output_dir is required"),
])
def test_a_bad_option_is_refused_when_the_config_is_built(options, message):
    with pytest.raises(TuneshipError, match=message):
        ExportConfig(**{"model": "runs/m", "output_dir": "runs/m-onnx", **options})


def test_the_recipe_holds_the_options_and_not_the_folders():
    config = ExportConfig(model="/home/me/runs/m", output_dir="runs/m-onnx", overwrite=True, per_channel=True)
    recipe = config.recipe()
    assert recipe["per_channel"] is True and recipe["optimize"] == "O3" and recipe["min_agreement"] == 0.985
    assert not {"model", "output_dir", "overwrite"} & set(recipe)
    assert ExportConfig(model="m", output_dir="o", **recipe) == ExportConfig(model="m", output_dir="o", per_channel=True)
