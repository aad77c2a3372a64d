"""`QuestionAnswerer`: an extractive QA bundle's ONNX model on onnxruntime, with training's windows. No torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import TuneshipError
from .encoding import TOKENIZER_FILE
from .manifest import PRECISIONS, QUESTION_ANSWERING, BundleManifest
from .predictor import create_session
from .spans import SpanAnswerer



class QuestionAnswerer(SpanAnswerer):
    """Answer questions from a context with a bundle's fp32 or int8 ONNX model.

    Example:
        >>> qa = QuestionAnswerer.from_bundle("runs/squad-onnx")  # doctest: +SKIP
        >>> qa.answer(["When was it built?"], ["The bridge was built in 1932."])[0].to_dict()  # doctest: +SKIP
        {'answer': '1932', 'start': 24, 'end': 28, 'score': 0.93}
    """

    def __init__(self, session, tokenizer, manifest: BundleManifest, precision: str):
        self.session = session
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.precision = precision
        self.settings = {"max_length": manifest.max_length, **manifest.task_settings}
        pad_id = tokenizer.token_to_id("[PAD]")
        self.pad_id = 0 if pad_id is None else pad_id
        self.input_names = [i.name for i in session.get_inputs()]

    @classmethod
    def from_bundle(cls, path: str | Path, precision: str | None = None, threads: int | None = None,
                    spinning: bool = True) -> "QuestionAnswerer":
        from tokenizers import Tokenizer

        path = Path(path)
        if precision is not None and precision not in PRECISIONS:
            raise TuneshipError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        manifest = BundleManifest.load(path)
        if manifest.task != QUESTION_ANSWERING:
            raise TuneshipError(f"{path}: a {manifest.task} bundle, not a question-answering one")
        precision = precision or manifest.default_precision
        session = create_session(path / manifest.model_file(precision), threads, spinning)
        return cls(session, Tokenizer.from_file(str(path / TOKENIZER_FILE)), manifest, precision)

    def window_logits(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.session.run(None, arrays)[:2]
        return start, end
