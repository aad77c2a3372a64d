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
from types import ModuleType, SimpleNamespace
from typing import Any, Sequence

import numpy as np

from .. import tasks
from ..checkpoint import checkpoint_task, checkpoint_weights
from ..errors import TuneshipError
from ..serving.manifest import BundleManifest
from ..serving.session import create_session

# What OpenVINO calls the precisions its CPU plugin computes in, by backend name (int8: NNCF's static int8
# model, whose non-quantized parts compute in f32).
OPENVINO_PRECISIONS = {"openvino-fp32": "f32", "openvino-bf16": "bf16", "openvino-int8": "f32"}
CALIBRATION_ROWS = 300  # NNCF calibration samples for openvino-int8, from the checkpoint's calibration rows


@dataclass
class Backend:
    """A task model (classifier or QA answerer) on one runtime. This base runs serving's models on their session:
    onnxruntime's, or OpenVINO's behind the same `run` call. `task` is the task's bench module."""

    name: str
    model: Any  # a serving Predictor or QuestionAnswerer; in TorchBackend the trainer's torch counterparts
    size_bytes: int
    task: ModuleType
    details: dict = field(default_factory=dict)

    def model_for(self, max_length: int):
        return self.task.sized(self.model, max_length)

    def end_to_end(self, max_length: int, texts: Sequence[str], text_pairs: Sequence[str] | None):
        """A call with raw strings in and the model's output out (tokenization included)."""
        model = self.model_for(max_length)
        return lambda: self.task.end_to_end(model, texts, text_pairs)

    def predictions(self, max_length: int, texts: Sequence[str], text_pairs: Sequence[str] | None) -> list:
        """Label ids (classification) or answer spans (QA) for scoring."""
        return self.task.predictions(self.model_for(max_length), texts, text_pairs)

    def prepare(self, texts: Sequence[str], text_pairs: Sequence[str] | None, max_length: int):
        """The model's inputs, tokenized and padded once (for the model-only timings)."""
        return self.task.model_inputs(self.model_for(max_length), texts, text_pairs)

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
        self._outputs = [SimpleNamespace(name=port.get_any_name(),
                                         shape=[d.get_length() if d.is_static else None for d in port.get_partial_shape()])
                         for port in compiled.outputs]

    def get_inputs(self) -> list:
        return self._inputs

    def get_outputs(self) -> list:
        return self._outputs

    def run(self, output_names, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self.request.infer(feed)
        return [np.array(result[output]) for output in self.outputs]


def _torch_backend(name: str, checkpoint: str, threads: int) -> TorchBackend:
    import torch

    torch.set_num_threads(threads)
    task = tasks.get(checkpoint_task(checkpoint))
    model = task.stage("trainer").from_checkpoint(checkpoint)
    details = {"runtime": "pytorch", "version": torch.__version__, "precision": "fp32"}
    if name == "pytorch-fp32":
        return TorchBackend(name, model, checkpoint_weights(checkpoint).stat().st_size, task.stage("bench"), details)
    model = copy.copy(model)
    model.model = torch.ao.quantization.quantize_dynamic(model.model, {torch.nn.Linear}, dtype=torch.qint8)
    with tempfile.TemporaryDirectory() as folder:  # what `torch.save` of the quantized weights takes on disk
        torch.save(model.model.state_dict(), Path(folder) / "model.pt")
        size = (Path(folder) / "model.pt").stat().st_size
    return TorchBackend(name, model, size, task.stage("bench"), {**details, "precision": "int8 (dynamic, Linear layers)"})


def _onnx_backend(name: str, bundle: Path, manifest: BundleManifest, threads: int) -> Backend:
    import onnxruntime

    precision = name.split("-")[1]
    path = bundle / manifest.model_file(precision)
    details = {"runtime": "onnxruntime", "version": onnxruntime.__version__, "precision": precision,
               "file": path.name, "bundle_default": manifest.default_precision == precision}
    task = tasks.get(manifest.task).stage("bench")
    model = task.serving_model(create_session(path, threads), bundle, manifest, precision)
    return Backend(name, model, path.stat().st_size, task, details)


def nncf_int8(model, feeds: list[dict[str, np.ndarray]]):
    """NNCF's static int8 quantization of an OpenVINO model, as sentence-transformers applies it for CPUs:
    the transformer preset (SmoothQuant on MatMul inputs, fast bias correction), calibrated on `feeds`."""
    import nncf

    return nncf.quantize(model, nncf.Dataset(feeds), preset=nncf.QuantizationPreset.MIXED,
                         model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds))


def _openvino_backend(name: str, checkpoint: str, bundle: Path, manifest: BundleManifest, threads: int) -> Backend:
    import openvino

    path = bundle / manifest.model_file("fp32")
    task = tasks.get(manifest.task).stage("bench")
    core = openvino.Core()
    model = core.read_model(str(path))
    size, extra = path.stat().st_size, {}
    if name == "openvino-int8":
        fp32 = task.serving_model(create_session(path, threads), bundle, manifest, "fp32")
        feeds = task.calibration_feeds(fp32, checkpoint, CALIBRATION_ROWS)
        model = nncf_int8(model, feeds)
        with tempfile.TemporaryDirectory() as folder:  # what the quantized IR takes on disk
            openvino.save_model(model, Path(folder) / "model.xml", compress_to_fp16=False)
            size = sum(file.stat().st_size for file in Path(folder).iterdir())
        extra = {"quantization": "NNCF static int8 (transformer preset: SmoothQuant, fast bias correction)",
                 "calibration_rows": len(feeds)}
    settings = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[name],
                "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    compiled = core.compile_model(model, "CPU", settings)
    computed = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # what the CPU plugin really uses
    precision = "int8" if name == "openvino-int8" else {"f32": "fp32"}.get(computed, computed)
    details = {"runtime": "openvino", "version": openvino.__version__.split("-")[0], "precision": precision,
               "file": path.name, **extra}
    return Backend(name, task.serving_model(OpenVINOSession(compiled), bundle, manifest, "fp32"), size, task, details)


def load_backend(name: str, checkpoint: str, bundle: str, threads: int) -> Backend:
    """Load backend `name` (see `config.BACKENDS`) with `threads` intra-op threads."""
    if name.startswith("pytorch-"):
        return _torch_backend(name, checkpoint, threads)
    manifest = BundleManifest.load(bundle)
    if name.startswith("onnx-"):
        return _onnx_backend(name, Path(bundle), manifest, threads)
    if name in OPENVINO_PRECISIONS:
        return _openvino_backend(name, checkpoint, Path(bundle), manifest, threads)
    raise TuneshipError(f"unknown backend {name!r}")


def openvino_natively_supports(precision: str) -> bool:
    """Whether OpenVINO's CPU plugin computes in `precision` ("bf16") natively on this machine."""
    import openvino

    return precision.upper() in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
