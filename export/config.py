"""`ExportConfig`: every option of an export, defined once for the CLI, files and Python."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import TuneshipError
from ..options import check_choices, option

OPTIMIZE_CHOICES = ("O1", "O2", "O3", "none")
QUANTIZE_CHOICES = ("calibrated", "dynamic", "static", "none")
ISA_CHOICES = ("auto", "avx2", "avx512", "avx512_vnni", "arm64")


@dataclass
class ExportConfig:
    """Options of `export()` and `tuneship export`; see `tuneship export --help` for each one.

    Example:
        >>> config = ExportConfig(model="runs/relevance", output_dir="runs/relevance-onnx")
        >>> config.optimize, config.quantize
        ('O3', 'calibrated')
    """

    model: str = option(None, "checkpoint folder written by `tuneship train` (or any sequence-classification checkpoint)",
                        "input and output", metavar="CKPT", required=True)
    output_dir: str = option(None, "bundle folder to write", "input and output", flag="--output", metavar="BUNDLE",
                             required=True)
    overwrite: bool = option(False, "replace an existing bundle folder", "input and output")

    optimize: str = option("O3", "onnxruntime graph fusions applied before quantization; O3 adds the tanh GELU "
                           "approximation to the int8 model (the fp32 model keeps the exact GELU)",
                           "graph", choices=OPTIMIZE_CHOICES)
    opset: int | None = option(None, "ONNX opset (default: Optimum's choice for the model)", "graph")

    quantize: str = option(
        "calibrated", "int8 quantization: calibrated (onnxruntime's dynamic int8 kernels with activation ranges fixed on "
        "the calibration rows: an input's answer does not depend on its batch mates), dynamic (ranges per batch at run "
        "time: answers move with batch mates), static (QDQ, calibrated)", "quantization", choices=QUANTIZE_CHOICES)
    isa: str = option("auto", "CPU instruction set to quantize for; auto reads this machine's CPU features",
                      "quantization", choices=ISA_CHOICES)
    per_channel: bool = option(False, "quantize weights per output channel from the first try", "quantization")
    calibration_data: str | None = option(
        None, "rows to calibrate on (default: the training sample saved with the checkpoint)", "quantization",
        flag="--calibration", metavar="FILE")
    calibration_samples: int = option(256, "most calibration rows used", "quantization")
    nncf: bool = option(True, "also write NNCF's static int8 model (transformer preset: SmoothQuant, bias correction) "
                        "for OpenVINO, gated like int8 (classification and question answering; --no-nncf skips it)",
                        "quantization")

    validation_data: str | None = option(
        None, "labelled rows for the int8 gate (default: the validation rows saved with the checkpoint)", "gates",
        flag="--validation", metavar="FILE")
    min_agreement: float = option(0.985, "least share of validation labels on which int8 must agree with fp32", "gates")
    max_accuracy_drop: float = option(0.01, "largest drop in accuracy (and F1) that int8 may cost against fp32", "gates")
    max_logit_difference: float = option(1e-4, "largest absolute logit difference allowed between fp32 ONNX and PyTorch", "gates")
    strict: bool = option(False, "exit non-zero when no int8 model passes the gate (by default the bundle falls back to fp32)",
                          "gates")

    def __post_init__(self) -> None:
        for name in ("model", "output_dir"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise TuneshipError(f"{name} is required: the {'checkpoint' if name == 'model' else 'bundle'} folder")
        check_choices(self)
        if self.opset is not None and (not isinstance(self.opset, int) or self.opset < 1):
            raise TuneshipError(f"opset must be a positive whole number, not {self.opset!r}")
        if not isinstance(self.calibration_samples, int) or self.calibration_samples < 1:
            raise TuneshipError(f"calibration_samples must be at least 1, not {self.calibration_samples!r}")
        if not 0.0 < self.min_agreement < 2.0:  # above 1 no int8 model can pass: the fp32 fallback, on purpose
            raise TuneshipError(f"min_agreement is a share of labels (0.985 for 98.5%), above 0, not {self.min_agreement}")
        if not self.max_accuracy_drop < 1.0:  # below 0: int8 must score above fp32 (no model passes: on purpose)
            raise TuneshipError(f"max_accuracy_drop is a share (0.01 for one point), below 1, not {self.max_accuracy_drop}")
        if not self.max_logit_difference > 0:
            raise TuneshipError(f"max_logit_difference must be positive, not {self.max_logit_difference}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def recipe(self) -> dict[str, Any]:
        """The options that shaped the bundle, as its manifest keeps them (`export`): not the folders (the manifest's
        `source` names the checkpoint) and not `overwrite`."""
        return {k: v for k, v in self.to_dict().items() if k not in ("model", "output_dir", "overwrite")}
