"""int8 quantization with Optimum's `ORTQuantizer`, and the recipes tried when one fails the gate."""

from __future__ import annotations

import platform
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..log import get_logger
from ..serving.session import create_session
from .bundle import file_info
from .calibrated import calibrate_ranges
from .conversion import ONNX_FILE, with_inferred_shapes
from .smoothing import smooth_outlier_channels

logger = get_logger(__name__)

QUANTIZED_FILE = "model_quantized.onnx"
# Operators with int8 weights: the linear layers, fused attention and the embedding tables (Gather).
# Gemm (pooler, classifier head: a small share of the weights) stays fp32.
QUANTIZED_OPERATORS = ("MatMul", "Attention", "Gather")
EXCLUSION_STEPS = (1, 2, 4)  # how many of the most sensitive nodes to keep in fp32, tried in turn


def detect_isa() -> str:
    """The best quantization target this CPU supports: avx512_vnni, avx512, avx2 or arm64."""
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: assume a recent x86 CPU
        return "avx2"
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


@dataclass(frozen=True)
class Recipe:
    """One way to quantize: mode, per-channel weights, outlier smoothing, and nodes kept in fp32.

    Modes: `calibrated` (onnxruntime's dynamic int8 kernels with activation ranges fixed on calibration rows:
    an input's answer does not depend on its batch mates; see `calibrated.py`), `dynamic` (ranges computed per
    batch at run time: answers move with batch mates), `static` (QDQ, calibrated ranges).
    """

    mode: str = "calibrated"
    per_channel: bool = False
    smooth: bool = False
    exclude: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        parts = [self.mode, "per-channel" if self.per_channel else "per-tensor"]
        if self.smooth:
            parts.append("outlier smoothing")
        if self.exclude:
            parts.append(f"{len(self.exclude)} sensitive node(s) in fp32")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "per_channel": self.per_channel, "smooth": self.smooth, "exclude": list(self.exclude)}


def remedies(first: Recipe, rank_sensitive: Callable[[Recipe], list[str]]) -> Iterator[Recipe]:
    """`first`, then the known remedies in turn: per-channel weights, outlier smoothing, the most
    sensitive nodes left in fp32 (1, 2, then 4 of them), and finally another quantization mode (static QDQ, which
    is batch-invariant too, after calibrated or dynamic; dynamic after static)."""
    yield first
    recipe = first
    if not recipe.per_channel:
        recipe = replace(recipe, per_channel=True)
        yield recipe
    if not recipe.smooth:
        recipe = replace(recipe, smooth=True)
        yield recipe
    ranking = rank_sensitive(recipe)
    for count in EXCLUSION_STEPS:
        if count <= len(ranking):
            yield replace(recipe, exclude=tuple(ranking[:count]))
    yield Recipe(mode="dynamic" if first.mode == "static" else "static", per_channel=True, smooth=True)


def max_tries(first: Recipe) -> int:
    """How many recipes `remedies(first, ...)` yields at most (the step counter's total)."""
    return 1 + (not first.per_channel) + (not first.smooth) + len(EXCLUSION_STEPS) + 1


def quantizable_nodes(model_file: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(model_file)).graph
    weights = {init.name for init in graph.initializer}
    return [n.name for n in graph.node if n.op_type in QUANTIZED_OPERATORS and len(n.input) > 1 and n.input[1] in weights]


def _quantization_config(recipe: Recipe, isa: str, nodes_to_quantize: list[str] | None = None):
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    return getattr(AutoQuantizationConfig, isa)(
        is_static=recipe.mode == "static",  # calibrated: dynamic kernels, ranges fixed afterwards
        per_channel=recipe.per_channel,
        nodes_to_quantize=nodes_to_quantize,
        nodes_to_exclude=list(recipe.exclude),
        operators_to_quantize=list(QUANTIZED_OPERATORS),
    )


def _calibration_ranges(quantizer, config, feeds: list[dict[str, np.ndarray]], work: Path):
    """Activation ranges for static quantization, from `feeds` run one row at a time."""
    import datasets
    from optimum.onnxruntime.configuration import AutoCalibrationConfig

    rows: dict[str, list] = {}
    for feed in feeds:
        real = feed["attention_mask"].astype(bool)
        for row in range(len(real)):
            for name, array in feed.items():
                rows.setdefault(name, []).append(array[row][real[row]].tolist())
    dataset = datasets.Dataset.from_dict(rows)
    return quantizer.fit(
        dataset=dataset,
        calibration_config=AutoCalibrationConfig.minmax(dataset),
        onnx_augmented_model_name=work / "augmented_model.onnx",
        operators_to_quantize=config.operators_to_quantize,
        batch_size=1,
    )


def quantize(
    source: Path,
    work: Path,
    recipe: Recipe,
    isa: str,
    feeds: list[dict[str, np.ndarray]],
    nodes_to_quantize: list[str] | None = None,
) -> tuple[Path, dict]:
    """Quantize `source/model.onnx` (fp32, fusions applied) with `recipe` into `work/`.

    Returns the int8 file and what was done (smoothed channels per node).
    """
    from optimum.onnxruntime import ORTQuantizer

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(source / ONNX_FILE, work / ONNX_FILE)
    shutil.copy(source / "config.json", work / "config.json")
    details: dict = {}
    if recipe.smooth:
        details["smoothed_channels"] = smooth_outlier_channels(work / ONNX_FILE, feeds)
        with_inferred_shapes(work / ONNX_FILE)
    config = _quantization_config(recipe, isa, nodes_to_quantize)
    quantizer = ORTQuantizer.from_pretrained(work, file_name=ONNX_FILE)
    ranges = _calibration_ranges(quantizer, config, feeds, work) if recipe.mode == "static" else None
    quantizer.quantize(quantization_config=config, save_dir=work, calibration_tensors_range=ranges)
    if recipe.mode == "calibrated":
        details["calibrated_activations"] = calibrate_ranges(work / QUANTIZED_FILE, feeds)
    return work / QUANTIZED_FILE, details


def rank_sensitive_nodes(
    source: Path, work: Path, recipe: Recipe, isa: str, feeds: list[dict[str, np.ndarray]], error: Callable[[Path], float]
) -> list[str]:
    """Quantizable nodes, most sensitive first: each is quantized alone with `recipe` and the
    resulting model's `error` (against fp32, on calibration data) is its score."""
    from tqdm.auto import tqdm

    scores = {}
    for node in tqdm(quantizable_nodes(source / ONNX_FILE), desc="  ranking nodes", unit="node"):
        model_file, _ = quantize(source, work, recipe, isa, feeds, nodes_to_quantize=[node])
        scores[node] = error(model_file)
    shutil.rmtree(work, ignore_errors=True)
    return sorted(scores, key=scores.get, reverse=True)


def quantize_until_gate_passes(config, folder: Path, source: Path, isa: str, feeds: list, ranking_feeds: list,
                               ranking_error: Callable[[Path], float], check: Callable[[Path], dict], manifest) -> dict:
    """Quantize `source/model.onnx` with the first recipe, then each remedy in turn, until `check(session)`
    (a gate dict with `passed`, `agreement` and `metric_drop`) passes; the int8 model with the best agreement
    goes into `folder` either way, and into `manifest` (as the default when it passed). Any task's export uses this.
    """
    work = folder / ".work"

    def rank(recipe: Recipe) -> list[str]:
        logger.info("  ranking nodes by sensitivity (each quantized alone, scored on calibration rows)")
        return rank_sensitive_nodes(source, work / "ranking", recipe, isa, ranking_feeds, ranking_error)

    first = Recipe(mode=config.quantize, per_channel=config.per_channel)
    most = max_tries(first)
    attempts, chosen, best = [], None, None
    for index, recipe in enumerate(remedies(first, rank)):
        try_dir = work / f"try-{index}"
        logger.info(f"  try {index + 1} of at most {most}: quantizing ({recipe.describe()}), then the gate")
        started = time.perf_counter()
        model_file, details = quantize(source, try_dir, recipe, isa, feeds)
        gate = check(create_session(model_file))
        attempts.append({"recipe": recipe.to_dict(), "recipe_text": recipe.describe(), "gate": gate,
                         "size_bytes": model_file.stat().st_size, **details})
        drift = f", batch drift {gate['batch_drift']:.1e}" if "batch_drift" in gate else ""
        logger.info(f"  try {index + 1}: {recipe.describe()}: agreement {gate['agreement']:.2%}, "
                    f"metric drop {gate['metric_drop']:+.4f}{drift} -> {'passed' if gate['passed'] else 'failed'} "
                    f"({time.perf_counter() - started:.0f} s)")
        if best is None or gate["agreement"] > attempts[best]["gate"]["agreement"]:
            best = index
            shutil.copy(model_file, folder / QUANTIZED_FILE)
            if (try_dir / "ort_config.json").is_file():
                shutil.copy(try_dir / "ort_config.json", folder / "ort_config.json")
        shutil.rmtree(try_dir, ignore_errors=True)
        if gate["passed"]:
            chosen = index
            break
    manifest.models["int8"] = file_info(folder, [QUANTIZED_FILE], isa=isa, recipe=attempts[best]["recipe"])
    if chosen is not None:
        manifest.default_precision = "int8"
        summary = f"passed with {attempts[chosen]['recipe_text']}"
    else:
        summary = (f"no recipe reached {config.min_agreement:.1%} agreement and at most {config.max_accuracy_drop} metric drop; "
                   f"the best int8 model ({attempts[best]['recipe_text']}) is kept but fp32 is the default")
    return {"passed": chosen is not None, "chosen": chosen, "attempts": attempts, "summary": summary,
            "min_agreement": config.min_agreement, "max_accuracy_drop": config.max_accuracy_drop}
