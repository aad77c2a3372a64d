"""The runtimes that run a bundle's ONNX files: onnxruntime (always there) and OpenVINO (the `openvino` extra).

Both are opened behind one small interface, the two methods of an onnxruntime session that serving's models
call (`get_inputs`, `get_outputs`, `run`), so a Predictor or QuestionAnswerer never knows which one runs it.
OpenVINO reads the ONNX files directly (no conversion step, no torch, no transformers); its CPU plugin computes
in f32, or in bf16 where the CPU has bf16 instructions (`INFERENCE_PRECISION_HINT`).
"""

from __future__ import annotations


import threading
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..errors import TuneshipError
from .session import available_cores, create_session

RUNTIMES = ("onnxruntime", "openvino")
OPENVINO_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8: a QDQ model, its other parts in f32


@lru_cache(maxsize=1)
def openvino_missing() -> str | None:
    """Why OpenVINO cannot run here (not installed, or no CPU device), or None when it can."""
    try:
        import openvino
    except ImportError:
        return "OpenVINO is not installed (pip install 'tuneship[openvino]')"
    try:
        if "CPU" not in openvino.Core().available_devices:
            return "OpenVINO offers no CPU device on this machine"
    except Exception as error:  # a broken install raises its own RuntimeError types
        return f"OpenVINO does not start here ({error})"
    return None


def runtime_versions() -> dict[str, str]:
    """The versions of the runtimes this process can use (a plan made with other versions is made again)."""
    import onnxruntime

    found = {"onnxruntime": onnxruntime.__version__}
    if openvino_missing() is None:
        import openvino

        found["openvino"] = openvino.__version__.split("-")[0]
    return found


def openvino_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin computes bf16 natively here (AVX-512 bf16 or AMX)."""
    if openvino_missing() is not None:
        return False
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVINOSession:
    """An OpenVINO compiled model with the methods of an onnxruntime session that serving's models use."""

    runtime = "openvino"

    def __init__(self, compiled):
        self.compiled = compiled
        self.lock = threading.Lock()  # an infer request runs one inference at a time
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
        with self.lock:
            result = self.request.infer(feed)
            return [np.array(result[output]) for output in self.outputs]

    def release_memory(self) -> None:
        """Give back the memory of the largest run so far, which OpenVINO otherwise keeps for good: the compiled
        model's intermediate buffers, then the C heap's free pages (an MRPC NNCF int8 model: 205 MB fresh, 399 MB
        after 32 x 256 tokens, 206 MB after this, in about 20 ms)."""
        with self.lock:
            self.compiled.release_memory()
        trim_heap()


def trim_heap() -> None:
    """Return the C heap's free pages to the system (glibc's `malloc_trim`; nothing elsewhere)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def openvino_session(model_file: str | Path, threads: int | None = None, precision: str = "fp32") -> OpenVINOSession:
    """`model_file` (ONNX) compiled by OpenVINO's CPU plugin for latency, computing in `precision` (fp32, bf16;
    int8 for a quantized QDQ model)."""
    missing = openvino_missing()
    if missing:
        raise TuneshipError(missing)
    import openvino

    core = openvino.Core()
    settings = {"INFERENCE_NUM_THREADS": threads or available_cores(), "INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision],
                "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    try:
        return OpenVINOSession(core.compile_model(core.read_model(str(model_file)), "CPU", settings))
    except Exception as error:  # OpenVINO raises RuntimeError subclasses of its own
        raise TuneshipError(f"{model_file}: OpenVINO could not load the model: {str(error).splitlines()[0]}") from None


def open_session(runtime: str, model_file: str | Path, threads: int | None = None, spinning: bool | str = True,
                 precision: str = "fp32"):
    """A session of `runtime` on `model_file`; `precision` is what OpenVINO computes in (onnxruntime runs the
    file as it is: fp32, or the int8 model)."""
    if runtime == "onnxruntime":
        return create_session(model_file, threads, spinning)
    if runtime == "openvino":
        return openvino_session(model_file, threads, precision)
    raise TuneshipError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
