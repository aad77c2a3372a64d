"""onnxruntime-only inference for tuneship bundles: imports onnxruntime, tokenizers and numpy, never torch.

`Predictor` classifies in-process; `offline` runs it over files; `api` (needs the `serve` extra:
FastAPI, uvicorn) serves it over HTTP with dynamic batching.
"""

from .manifest import MANIFEST_FILE, BundleManifest
from .offline import evaluate, predict_file
from .predictor import Predictor, create_session

__all__ = ["BundleManifest", "MANIFEST_FILE", "Predictor", "create_session", "evaluate", "predict_file"]
