"""Checkpoint to an optimized, quantized ONNX bundle via Optimum, with parity and quality gates.

Importing this package is light; Optimum, onnx and torch load when `export` is first called.
"""

from .config import ExportConfig

__all__ = ["ExportConfig", "export", "ExportResult"]


def __getattr__(name: str):
    if name in ("export", "ExportResult"):
        from . import exporting

        return getattr(exporting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
