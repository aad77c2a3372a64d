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
from types import ModuleType
from typing import Any, Sequence


from .. import tasks
from ..bundle import NNCF_MODEL, BundleManifest
from ..checkpoint import checkpoint_task, checkpoint_weights
from ..errors import TuneshipError
from ..serving.engines import open_session, runtime_versions
from ..serving.session import SERVER_SPINNING

OPENVINO_BACKENDS = ("openvino-fp32", "openvino-bf16", "openvino-int8")  # openvino-int8: the bundle's NNCF model


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
    """onnx-fp32, onnx-int8: the bundle's models on onnxruntime; openvino-fp32, openvino-bf16: its fp32 model on
    OpenVINO computing in f32 or bf16; openvino-int8: its NNCF model on OpenVINO (see `serving.engines`)."""
    runtime, precision = ("onnxruntime", name.split("-")[1]) if name.startswith("onnx-") else name.split("-")
    model_key = {"int8": "int8" if runtime == "onnxruntime" else NNCF_MODEL}.get(precision, "fp32")
    path = bundle / manifest.model_file(model_key)
    version = runtime_versions()[runtime]
    details = {"runtime": runtime, "version": version, "precision": precision, "file": path.name}
    session = open_session(runtime, path, threads, precision=precision)
    if runtime == "openvino" and precision != "int8":
        computed = session.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # what the plugin computes in
        details["precision"] = {"f32": "fp32"}.get(computed, computed)
    if model_key == NNCF_MODEL:
        details["quantization"] = manifest.models[NNCF_MODEL].get("quantization", "NNCF static int8")
    task = tasks.get(manifest.task).stage("bench")
    model = task.serving_model(session, bundle, manifest, name)
    return Backend(name, model, path.stat().st_size, task, details)


def _bundle_default(bundle: Path, manifest: BundleManifest, threads: int, batch_size: int) -> Backend:
    """The bundle served exactly as `tuneship serve` would serve it here: its plan (see `serving.plan`)."""
    task = tasks.get(manifest.task)
    model = task.stage("serving").from_bundle(bundle, "auto", threads, SERVER_SPINNING, batch_size=batch_size)
    plan = model.plan
    details = {"runtime": "plan", "version": ", ".join(f"{k} {v}" for k, v in runtime_versions().items()),
               "precision": plan.precision, "plan": plan.to_dict()["serving"], "ranges": plan.ranges(),
               "plan_seconds": round(plan.seconds, 1), "plan_cached": plan.cached}
    size = sum((bundle / name).stat().st_size for name in model.model_files)
    return Backend("bundle-default", model, size, task.stage("bench"), details)


def load_backend(name: str, checkpoint: str, bundle: str, threads: int, batch_size: int = 32) -> Backend:
    """Load backend `name` (see `config.BACKENDS`) with `threads` intra-op threads (`batch_size`: the largest batch
    timed, which bundle-default's plan is judged at)."""
    if name.startswith("pytorch-"):
        return _torch_backend(name, checkpoint, threads)
    manifest = BundleManifest.load(bundle)
    if name == "bundle-default":
        return _bundle_default(Path(bundle), manifest, threads, batch_size)
    if name.startswith("onnx-") or name in OPENVINO_BACKENDS:
        return _onnx_backend(name, Path(bundle), manifest, threads)
    raise TuneshipError(f"unknown backend {name!r}")
