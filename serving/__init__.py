"""onnxruntime-only inference for tuneship bundles: imports onnxruntime, tokenizers and numpy, never torch."""

from .manifest import MANIFEST_FILE, BundleManifest
from .predictor import Predictor, create_session

__all__ = ["BundleManifest", "MANIFEST_FILE", "Predictor", "create_session"]
