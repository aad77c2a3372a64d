"""onnxruntime-only inference for tuneship bundles: imports onnxruntime, tokenizers and numpy, never torch.

One module per task (`classification`: `Predictor`; `question_answering`: `QuestionAnswerer`;
`summarization`: `Summarizer`); `offline` runs any of them over files; `api` (needs the `serve` extra:
FastAPI, uvicorn) serves them over HTTP.
"""

from ..bundle import MANIFEST_FILE, BundleManifest
from .classification import Predictor
from .offline import evaluate, predict_file
from .session import create_session

__all__ = ["BundleManifest", "MANIFEST_FILE", "Predictor", "create_session", "evaluate", "predict_file"]
