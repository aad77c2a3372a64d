"""Checkpoint to ONNX with Optimum, then onnxruntime graph fusions with `ORTOptimizer`."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from ..errors import TuneshipError, require
from ..tasks import CLASSIFICATION

ONNX_FILE = "model.onnx"


def export_onnx(checkpoint: Path, folder: Path, opset: int | None = None, task: str = CLASSIFICATION) -> Path:
    """Export `checkpoint` for `task` to `folder/model.onnx` (with config and tokenizer files); return the file."""
    require("optimum.exporters.onnx", "export")
    import transformers
    from optimum.exporters.onnx import main_export
    from torch.jit import TracerWarning

    verbosity = transformers.logging.get_verbosity()
    try:
        with warnings.catch_warnings():
            # The tracer's notes on Python values in the graph (TracerWarning) and transformers' deprecation notes
            # on Optimum's own calls (torch_dtype) say nothing the user can act on; the parity gate checks the graph.
            warnings.filterwarnings("ignore", category=TracerWarning)
            warnings.filterwarnings("ignore", message=".*torch_dtype.*")
            transformers.logging.set_verbosity_error()
            main_export(
                str(checkpoint), output=folder, task=task, opset=opset, device="cpu", do_validation=False,
                library_name="transformers", local_files_only=True, trust_remote_code=runs_own_code(checkpoint),
            )
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise TuneshipError(f"{checkpoint}: ONNX export failed: {error}") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    return folder / ONNX_FILE


def runs_own_code(checkpoint: Path) -> bool:
    """Whether `checkpoint` was trained with one of tuneship's own heads (`--pooling mean`) whose model file it holds
    is tuneship's, byte for byte: only then may Optimum load it with `trust_remote_code` (no other code runs)."""
    from ..trainer.models import checkpoint_class, own_code

    found = checkpoint_class(Path(checkpoint), "AutoModel")
    if not own_code(found):
        return False
    import inspect

    own = Path(inspect.getfile(found))
    copy = Path(checkpoint) / own.name
    if not copy.is_file() or copy.read_bytes() != own.read_bytes():
        raise TuneshipError(f"{copy}: this checkpoint's model file ({found.__name__}) is missing or not tuneship's own; "
                            f"copy {own} there, or train the checkpoint again")
    return True


def with_inferred_shapes(model_file: Path) -> None:
    """Annotate every tensor with its type, in place.

    onnxruntime's quantizer needs the type of each tensor, and ONNX's own shape inference cannot type
    the outputs of fused `com.microsoft` operators (the "Unable to find data type for weight_name"
    failure when quantizing an O2 graph); onnxruntime's symbolic shape inference can.
    """
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = SymbolicShapeInference.infer_shapes(onnx.load(str(model_file)), auto_merge=True)
    onnx.save(model, str(model_file))


def optimize_onnx(source: Path, target: Path, level: str, approximate_gelu: bool) -> Path:
    """`ORTOptimizer` fusions (attention, GELU, layer norm) of `source/model.onnx` into `target/model.onnx`.

    `approximate_gelu` (level O3) swaps the exact GELU for its tanh approximation: faster, but not
    bit-faithful to PyTorch, so it is only used for the graph that gets quantized.
    """
    target.mkdir(parents=True, exist_ok=True)
    if level == "none":
        if source != target:
            shutil.copy(source / ONNX_FILE, target / ONNX_FILE)
    else:
        from optimum.onnxruntime import ORTOptimizer
        from optimum.onnxruntime.configuration import AutoOptimizationConfig

        config = AutoOptimizationConfig.with_optimization_level(
            "O2" if level == "O3" else level,
            for_gpu=False,
            enable_gelu_approximation=approximate_gelu and level == "O3",
            # onnxruntime 1.32's CPU SkipLayerNormalization kernel is ~6x slower than Add + LayerNormalization
            # (measured: 255 vs 41 microseconds at 128x384), so the residual adds are left unfused.
            disable_skip_layer_norm_fusion=True,
            disable_bias_skip_layer_norm_fusion=True,
        )
        optimizer = ORTOptimizer.from_pretrained(source, file_names=[ONNX_FILE])
        work = target / "optimized"
        optimizer.optimize(save_dir=work, optimization_config=config)
        shutil.move(str(work / "model_optimized.onnx"), str(target / ONNX_FILE))
        shutil.rmtree(work)
    if not (target / "config.json").exists():
        shutil.copy(source / "config.json", target / "config.json")
    with_inferred_shapes(target / ONNX_FILE)
    return target / ONNX_FILE
