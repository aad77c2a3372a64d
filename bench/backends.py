"""The backends `tuneship bench` compares, each behind one small interface.

A backend holds the task's model for one runtime (a classifier, or a QA answerer for QA checkpoints
and bundles): `model_for(max_length)` for the end-to-end path (raw strings in, logits or answer spans
out, tokenization included), `prepare` (tokenize and pad once) and `forward` (the model alone on
prepared inputs). Heavy libraries are imported inside the loaders, so a process that
runs an ONNX backend never imports torch and its memory is that of a production server.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from ..errors import TuneshipError
from ..serving.answering import QuestionAnswerer
from ..serving.encoding import TextEncoder, pad_encodings
from ..serving.manifest import QUESTION_ANSWERING, BundleManifest
from ..serving.predictor import Predictor, create_session
from ..serving.questions import QAExample
from ..serving.spans import SpanAnswerer, windows_of

# What OpenVINO calls the precisions its CPU plugin computes in, by backend name.
OPENVINO_PRECISIONS = {"openvino-fp32": "f32", "openvino-bf16": "bf16"}


def sized(model, max_length: int):
    """`model` (a classifier or a QA answerer of any runtime) set to read inputs of `max_length` tokens."""
    if isinstance(model, Predictor):  # its encoder (and the tokenizer's truncation) holds the length: copy both
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(model.encoder.tokenizer.to_str())
        encoder = TextEncoder(tokenizer, max_length, model.manifest.truncation, model.encoder.pad_id)
        return Predictor(model.session, encoder, model.manifest, model.precision)
    clone = copy.copy(model)
    clone.settings = {**model.settings, "max_length": max_length}
    if isinstance(model, SpanAnswerer) and max_length != model.settings["max_length"]:
        clone.settings["doc_stride"] = min(model.settings["doc_stride"], max_length // 4)  # short windows, short stride
    return clone


def end_to_end(model, texts: Sequence[str], text_pairs: Sequence[str] | None):
    """Raw strings in, the model's output out: logits for a classifier, answer spans for a QA answerer."""
    if isinstance(model, SpanAnswerer):
        return model.answer(texts, text_pairs)
    return model.logits(texts, text_pairs, batch_size=len(texts))


def predictions(model, texts: Sequence[str], text_pairs: Sequence[str] | None) -> list:
    """Label ids (classification) or (start, end) answer spans (QA), for scoring."""
    if isinstance(model, SpanAnswerer):
        return [(a.start, a.end) for a in model.answer(texts, text_pairs)]
    logits, _ = model.logits(texts, text_pairs)
    return np.argmax(logits, axis=-1).tolist()


def model_inputs(model, texts: Sequence[str], text_pairs: Sequence[str] | None) -> dict[str, np.ndarray]:
    """The padded int64 arrays the model itself reads (tokenized once, for the model-only timings)."""
    if isinstance(model, SpanAnswerer):
        windows, _ = windows_of([QAExample(str(i), q, c) for i, (q, c) in enumerate(zip(texts, text_pairs))],
                                model.tokenizer, model.settings["max_length"], model.settings["doc_stride"])
        return pad_encodings(windows, model.input_names, model.pad_id)
    if isinstance(model, Predictor):
        return model.encoder.pad(model.encoder.encode(texts, text_pairs), model.input_names)
    return {name: np.asarray(value, dtype=np.int64) for name, value in model.encode(texts, text_pairs, "np").items()}


@dataclass
class Backend:
    """A task model (classifier or QA answerer) on one runtime. This base runs serving's models on their session:
    onnxruntime's, or OpenVINO's behind the same `run` call."""

    name: str
    model: Any  # a serving Predictor or QuestionAnswerer; in TorchBackend the trainer's torch counterparts
    size_bytes: int
    details: dict = field(default_factory=dict)

    def model_for(self, max_length: int):
        return sized(self.model, max_length)

    def prepare(self, texts: Sequence[str], text_pairs: Sequence[str] | None, max_length: int):
        """The model's inputs, tokenized and padded once (for the model-only timings)."""
        return model_inputs(self.model_for(max_length), texts, text_pairs)

    def forward(self, feed) -> None:
        self.model.session.run(None, feed)


class TorchBackend(Backend):
    """A checkpoint in PyTorch eager mode, as trained (fp32) or after `quantize_dynamic` (int8 Linear layers)."""

    def prepare(self, texts: Sequence[str], text_pairs: Sequence[str] | None, max_length: int):
        import torch

        return {name: torch.from_numpy(value) for name, value in super().prepare(texts, text_pairs, max_length).items()}

    def forward(self, feed) -> None:
        import torch

        with torch.inference_mode():
            self.model.model(**feed)


class OpenVINOSession:
    """An OpenVINO compiled model with the two methods of an onnxruntime session that serving's models use."""

    def __init__(self, compiled):
        self.request = compiled.create_infer_request()
        self.outputs = list(compiled.outputs)
        self._inputs = [SimpleNamespace(name=port.get_any_name()) for port in compiled.inputs]

    def get_inputs(self) -> list:
        return self._inputs

    def run(self, output_names, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self.request.infer(feed)
        return [np.array(result[output]) for output in self.outputs]


def _serving_model(session, bundle: Path, manifest: BundleManifest, precision: str):
    """The bundle's task model (classifier or QA answerer) on `session`."""
    from tokenizers import Tokenizer

    if manifest.task == QUESTION_ANSWERING:
        return QuestionAnswerer(session, Tokenizer.from_file(str(bundle / "tokenizer.json")), manifest, precision)
    return Predictor(session, TextEncoder.from_file(bundle, manifest.max_length, manifest.truncation), manifest, precision)


def _torch_backend(name: str, checkpoint: str, threads: int) -> TorchBackend:
    import torch

    from ..trainer.config import checkpoint_task, checkpoint_weights

    torch.set_num_threads(threads)
    if checkpoint_task(checkpoint) == QUESTION_ANSWERING:
        from ..trainer.qa import TorchQuestionAnswerer as Runner
    else:
        from ..trainer.inference import TorchClassifier as Runner
    model = Runner.from_checkpoint(checkpoint)
    details = {"runtime": "pytorch", "version": torch.__version__, "precision": "fp32"}
    if name == "pytorch-fp32":
        return TorchBackend(name, model, checkpoint_weights(checkpoint).stat().st_size, details)
    model = copy.copy(model)
    model.model = torch.ao.quantization.quantize_dynamic(model.model, {torch.nn.Linear}, dtype=torch.qint8)
    with tempfile.TemporaryDirectory() as folder:  # what `torch.save` of the quantized weights takes on disk
        torch.save(model.model.state_dict(), Path(folder) / "model.pt")
        size = (Path(folder) / "model.pt").stat().st_size
    return TorchBackend(name, model, size, {**details, "precision": "int8 (dynamic, Linear layers)"})


def _onnx_backend(name: str, bundle: Path, manifest: BundleManifest, threads: int) -> Backend:
    import onnxruntime

    precision = name.split("-")[1]
    path = bundle / manifest.model_file(precision)
    details = {"runtime": "onnxruntime", "version": onnxruntime.__version__, "precision": precision,
               "file": path.name, "bundle_default": manifest.default_precision == precision}
    model = _serving_model(create_session(path, threads), bundle, manifest, precision)
    return Backend(name, model, path.stat().st_size, details)


def _openvino_backend(name: str, bundle: Path, manifest: BundleManifest, threads: int) -> Backend:
    import openvino

    path = bundle / manifest.model_file("fp32")
    core = openvino.Core()
    settings = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[name],
                "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    compiled = core.compile_model(core.read_model(str(path)), "CPU", settings)
    computed = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # what the CPU plugin really uses
    details = {"runtime": "openvino", "version": openvino.__version__.split("-")[0],
               "precision": {"f32": "fp32"}.get(computed, computed), "file": path.name}
    return Backend(name, _serving_model(OpenVINOSession(compiled), bundle, manifest, "fp32"), path.stat().st_size, details)


def load_backend(name: str, checkpoint: str, bundle: str, threads: int) -> Backend:
    """Load backend `name` (see `config.BACKENDS`) with `threads` intra-op threads."""
    if name.startswith("pytorch-"):
        return _torch_backend(name, checkpoint, threads)
    manifest = BundleManifest.load(bundle)
    if name.startswith("onnx-"):
        return _onnx_backend(name, Path(bundle), manifest, threads)
    if name in OPENVINO_PRECISIONS:
        return _openvino_backend(name, Path(bundle), manifest, threads)
    raise TuneshipError(f"unknown backend {name!r}")


def openvino_natively_supports(precision: str) -> bool:
    """Whether OpenVINO's CPU plugin computes in `precision` ("bf16") natively on this machine."""
    import openvino

    return precision.upper() in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
