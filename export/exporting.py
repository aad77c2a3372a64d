"""`export()`: a fine-tuned checkpoint of any task to a self-contained bundle of ONNX models, gated.

The task comes from the checkpoint (`config.json["tuneship"]["task"]`); its module (`export/<task>.py`, found
through `tuneship.tasks`) runs the stages that `stages.ExportRun` shares.
"""

from __future__ import annotations

from .. import tasks
from ..checkpoint import checkpoint_task
from .config import ExportConfig
from .stages import ExportResult


def export(config: ExportConfig) -> ExportResult:
    """Export `config.model` to ONNX, optimize and quantize it, check the gates, write the bundle.

    Example:
        >>> from tuneship.export import ExportConfig, export
        >>> result = export(ExportConfig(model="runs/relevance", output_dir="runs/relevance-onnx"))  # doctest: +SKIP
        >>> result.manifest.default_precision  # doctest: +SKIP
        'int8'
    """
    task = tasks.get(checkpoint_task(config.model))
    task.check("export")
    return task.stage("export").export(config)
