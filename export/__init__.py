"""Checkpoint to an optimized, quantized ONNX bundle via Optimum, with parity and quality gates.

Importing this package is light; Optimum, onnx and torch load when `export` is first called.
"""

from .config import ExportConfig

__all__ = ["ExportConfig", "export", "ExportResult"]


def __getattr__(name: str):
    if name == "export":
        from .exporting import export

        return export
    if name == "ExportResult":
        from .stages import ExportResult

        return ExportResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
