"""The backends `tuneship bench` compares, each behind one small interface.

A backend gives a classifier with `logits(texts, text_pairs, batch_size)` (the end-to-end path: raw
strings in, logits out, tokenization included), `prepare` (tokenize and pad once) and `forward` (the
model alone on prepared inputs). Heavy libraries are imported inside the loaders, so a process that
runs an ONNX backend never imports torch and its memory is that of a production server.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from ..errors import TuneshipError
from ..serving.encoding import TextEncoder
from ..serving.manifest import BundleManifest
from ..serving.predictor import Predictor, create_session

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# What OpenVINO calls the precisions its CPU plugin computes in, by backend name.
OPENVINO_PRECISIONS = {"openvino-fp32": "f32", "openvino-bf16": "bf16"}


def checkpoint_weights(checkpoint: str | Path) -> Path:
    """The weights file of a checkpoint folder (safetensors or the older pytorch_model.bin)."""
    for name in WEIGHT_FILES:
        if (Path(checkpoint) / name).is_file():
            return Path(checkpoint) / name
    raise TuneshipError(f"{checkpoint}: no {' or '.join(WEIGHT_FILES)}; give the folder `tuneship train` wrote")


@dataclass
class TorchBackend:
    """A checkpoint in PyTorch eager mode, as trained (fp32) or after `quantize_dynamic` (int8 Linear layers)."""

    name: str
    classifier: Any  # the trainer's TorchClassifier
    size_bytes: int
    details: dict = field(default_factory=dict)

    def classifier_for(self, max_length: int):
        from ..trainer.inference import TorchClassifier

        base = self.classifier
        return TorchClassifier(base.model, base.tokenizer, {**base.settings, "max_length": max_length})

    def prepare(self, texts: Sequence[str], text_pairs: Sequence[str] | None, max_length: int):
        settings = self.classifier.settings
        return self.classifier.tokenizer(list(texts), None if text_pairs is None else list(text_pairs),
                                         truncation=settings["truncation"], max_length=max_length, padding=True,
                                         return_tensors="pt")

    def forward(self, feed) -> None:
        import torch

        with torch.inference_mode():
            self.classifier.model(**feed)


@dataclass
class OnnxBackend:
    """A bundle's ONNX file on a session: onnxruntime's, or OpenVINO's behind the same `run` call."""

    name: str
    session: Any
    bundle: Path
    manifest: BundleManifest
    precision: str
    size_bytes: int
    details: dict = field(default_factory=dict)
    _predictors: dict = field(default_factory=dict, repr=False)

    def classifier_for(self, max_length: int) -> Predictor:
        if max_length not in self._predictors:
            encoder = TextEncoder.from_file(self.bundle, max_length, self.manifest.truncation)
            self._predictors[max_length] = Predictor(self.session, encoder, self.manifest, self.precision)
        return self._predictors[max_length]

    def prepare(self, texts: Sequence[str], text_pairs: Sequence[str] | None, max_length: int) -> dict[str, np.ndarray]:
        predictor = self.classifier_for(max_length)
        return predictor.encoder.pad(predictor.encoder.encode(texts, text_pairs), predictor.input_names)

    def forward(self, feed: dict[str, np.ndarray]) -> None:
        self.session.run(None, feed)


class OpenVINOSession:
    """An OpenVINO compiled model with the two methods of an onnxruntime session that `Predictor` uses."""

    def __init__(self, compiled):
        self.request = compiled.create_infer_request()
        self.output = compiled.output(0)
        self._inputs = [SimpleNamespace(name=port.get_any_name()) for port in compiled.inputs]

    def get_inputs(self) -> list:
        return self._inputs

    def run(self, output_names, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.array(self.request.infer(feed)[self.output])]


def _torch_backend(name: str, checkpoint: str, threads: int) -> TorchBackend:
    import torch

    from ..trainer.inference import TorchClassifier

    torch.set_num_threads(threads)
    classifier = TorchClassifier.from_checkpoint(checkpoint)
    details = {"runtime": "pytorch", "version": torch.__version__, "precision": "fp32"}
    if name == "pytorch-fp32":
        return TorchBackend(name, classifier, checkpoint_weights(checkpoint).stat().st_size, details)
    quantized = torch.ao.quantization.quantize_dynamic(classifier.model, {torch.nn.Linear}, dtype=torch.qint8)
    classifier = TorchClassifier(quantized, classifier.tokenizer, classifier.settings)
    with tempfile.TemporaryDirectory() as folder:  # what `torch.save` of the quantized weights takes on disk
        torch.save(quantized.state_dict(), Path(folder) / "model.pt")
        size = (Path(folder) / "model.pt").stat().st_size
    return TorchBackend(name, classifier, size, {**details, "precision": "int8 (dynamic, Linear layers)"})


def _onnx_backend(name: str, bundle: Path, manifest: BundleManifest, threads: int) -> OnnxBackend:
    import onnxruntime

    precision = name.split("-")[1]
    path = bundle / manifest.model_file(precision)
    details = {"runtime": "onnxruntime", "version": onnxruntime.__version__, "precision": precision,
               "file": path.name, "bundle_default": manifest.default_precision == precision}
    return OnnxBackend(name, create_session(path, threads), bundle, manifest, precision, path.stat().st_size, details)


def _openvino_backend(name: str, bundle: Path, manifest: BundleManifest, threads: int) -> OnnxBackend:
    import openvino

    path = bundle / manifest.model_file("fp32")
    core = openvino.Core()
    settings = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[name],
                "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    compiled = core.compile_model(core.read_model(str(path)), "CPU", settings)
    computed = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # what the CPU plugin really uses
    details = {"runtime": "openvino", "version": openvino.__version__.split("-")[0],
               "precision": {"f32": "fp32"}.get(computed, computed), "file": path.name}
    return OnnxBackend(name, OpenVINOSession(compiled), bundle, manifest, "fp32", path.stat().st_size, details)


def load_backend(name: str, checkpoint: str, bundle: str, threads: int) -> TorchBackend | OnnxBackend:
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
