"""The bundle's second int8 model: NNCF's static int8 quantization of the fp32 graph, for OpenVINO.

`nncf.quantize` on the fp32 ONNX model with the transformer preset (SmoothQuant on MatMul inputs, fast bias
correction; the mixed preset: symmetric weights, asymmetric activations), calibrated on the checkpoint's
calibration rows, writes a QDQ ONNX file. OpenVINO reads it directly and runs its int8 kernels; onnxruntime can
run it too, but slower than its own int8 model, so the serving plan offers it on OpenVINO (`serving/plan.py`).
It is gated like the onnxruntime int8 model, on the runtime that serves it and padded as the plan serves it
(OpenVINO's int8 answers move with the padded width, so each input is padded to the next multiple of 16 tokens);
a model that fails its gate, or that cannot be made here, is left out of the bundle with the reason in
`gates["nncf-int8"]`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..bundle import NNCF_MODEL, BundleManifest  # NNCF_MODEL: its key in `models` and `gates`
from ..errors import TuneshipError
from ..log import get_logger
from ..serving.engines import open_session, openvino_missing
from ..serving.plan import PAD_GRANULE, buckets_for, served_alone
from .bundle import file_info
from .conversion import ONNX_FILE

logger = get_logger(__name__)

NNCF_FILE = "model_nncf_int8.onnx"


def nncf_missing() -> str | None:
    """Why NNCF cannot quantize here, or None."""
    try:
        import nncf  # noqa: F401
    except ImportError:
        return "NNCF is not installed (pip install 'tuneship[export]')"
    return None


def quantize_nncf(model_file: Path, feeds: list[dict[str, np.ndarray]], output: Path) -> Path:
    """NNCF static int8 of the ONNX model `model_file`, calibrated on `feeds` (one model input each), saved to `output`."""
    import nncf
    import onnx

    model = onnx.load(str(model_file))
    quantized = nncf.quantize(model, nncf.Dataset(feeds), preset=nncf.QuantizationPreset.MIXED,
                              model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds))
    onnx.save(quantized, str(output))
    return output


def add_nncf_model(config, folder: Path, manifest: BundleManifest, feeds: list[dict[str, np.ndarray]],
                   check: Callable[[object], dict], calibration_source: str, granule: int | None = PAD_GRANULE) -> dict:
    """Make the NNCF model from `folder/model.onnx`, gate it with `check(session)` (the task's gate on a session of
    the runtime that serves it, OpenVINO where installed, else onnxruntime, padded to fixed widths of `granule` tokens
    as the serving plan runs it), and add it to `manifest` when it passes. Returns the gate (with `reason` when the
    model was left out), also stored in `manifest.gates`."""
    why = nncf_missing()
    if why:
        gate = {"passed": False, "reason": why}
    else:
        started = time.perf_counter()
        output = folder / NNCF_FILE
        try:
            quantize_nncf(folder / ONNX_FILE, feeds, output)
        except Exception as error:  # NNCF raises many types; an export without this model is still a bundle
            gate = {"passed": False, "reason": f"NNCF could not quantize the model ({type(error).__name__}: {error})"}
        else:
            runtime = "openvino" if openvino_missing() is None else "onnxruntime"
            try:
                session = open_session(runtime, output, precision="int8")
                gate = check(served_alone("openvino-int8", session, buckets_for(manifest.max_length), granule))
            except TuneshipError as error:
                gate = {"passed": False, "reason": str(error)}
            gate.update(runtime=runtime, seconds=round(time.perf_counter() - started, 1))
            drift = f", batch drift {gate['batch_drift']:.1e}" if "batch_drift" in gate else ""
            if "agreement" in gate:
                logger.info(f"  NNCF int8 on {runtime}: agreement {gate['agreement']:.2%}, metric drop "
                            f"{gate['metric_drop']:+.4f}{drift} -> {'passed' if gate['passed'] else 'failed'}")
            if not gate["passed"] and "reason" not in gate:
                gate["reason"] = (f"its gate failed on {runtime} (agreement {gate.get('agreement', 0):.2%}, metric drop "
                                  f"{gate.get('metric_drop', float('nan')):+.4f}{drift})")
        if gate["passed"]:
            manifest.models[NNCF_MODEL] = file_info(folder, [NNCF_FILE], quantization=(
                "NNCF static int8 (transformer preset: SmoothQuant, fast bias correction; mixed preset)"),
                runtime="openvino", calibration_rows=len(feeds))
        else:
            output.unlink(missing_ok=True)
    gate.update(min_agreement=config.min_agreement, max_accuracy_drop=config.max_accuracy_drop,
                calibration_source=calibration_source, calibration_rows=len(feeds))
    if not gate["passed"]:
        logger.warning(f"  the NNCF int8 model is left out of the bundle: {gate['reason']}")
    manifest.gates[NNCF_MODEL] = gate
    return gate
