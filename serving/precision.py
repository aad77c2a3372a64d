"""Which of a bundle's models to serve on this CPU: `precision="auto"` checks int8 here before trusting it.

int8 gains depend on the CPU (VNNI or not), and the bundle's default was chosen on the export machine. The
export keeps golden inputs with the fp32 model's outputs (`golden.json`); on load, `auto` runs the int8 model
on them (each input alone) and times both models on them, taking turns, in well under a second. int8 is
served when it agrees with the stored outputs (every label or answer span, probabilities within
`GOLDEN_TOLERANCE`) and is faster than fp32 here; otherwise fp32, with the reason. An explicit precision is
obeyed, with a warning when the check speaks against it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import TuneshipError
from ..log import get_logger
from .manifest import PRECISIONS, BundleManifest
from .session import check_inputs, create_session

logger = get_logger(__name__)
GOLDEN_FILE = "golden.json"
GOLDEN_TOLERANCE = 0.1  # largest |probability difference| of int8 from the stored fp32 outputs on a golden input
TIMING_ROUNDS = 5
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "asimddp")


def cpu_facts() -> dict:
    """The CPU's model name and the instruction sets that decide int8 speed (Linux; elsewhere the machine type)."""
    import platform

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine(), "flags": []}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = fields.get("flags", fields.get("Features", "")).split()
    return {"model": fields.get("model name", platform.machine()), "flags": [f for f in CPU_FLAGS if f in flags]}


@dataclass
class PrecisionChoice:
    """The precision served, why, and what the check measured on this CPU."""

    precision: str
    reason: str
    requested: str
    checked: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=cpu_facts)

    def to_dict(self) -> dict:
        return asdict(self)


def read_golden(folder: Path) -> dict | None:
    path = folder / GOLDEN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TuneshipError(f"{path}: not valid JSON ({error})") from None


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def check_int8(golden: dict, load: Callable[[str], object], outputs: Callable[[object, list], np.ndarray],
               agree: Callable[[np.ndarray, np.ndarray], tuple[float, float]]) -> dict:
    """Run the int8 model on the golden inputs (each alone) against the stored fp32 outputs, and time both models
    on them taking turns; `load(precision)` builds a model, `outputs(model, rows)` its outputs on rows,
    `agree(expected, found)` the share of matching predictions and the largest score difference."""
    rows, expected = golden["inputs"], np.asarray(golden["fp32"])
    int8, fp32 = load("int8"), load("fp32")
    found = np.concatenate([outputs(int8, [row]) for row in rows])
    agreement, difference = agree(expected, found)
    timings = {"int8": [], "fp32": []}
    batch = rows[:8]
    for model in (int8, fp32):
        outputs(model, batch)  # warm-up: the first run of a shape allocates
    for _ in range(TIMING_ROUNDS):
        timings["int8"].append(_timed(lambda: outputs(int8, batch)))
        timings["fp32"].append(_timed(lambda: outputs(fp32, batch)))
    return {"golden_inputs": len(rows), "agreement": agreement, "max_difference": difference,
            "int8_ms": 1000 * float(np.median(timings["int8"])), "fp32_ms": 1000 * float(np.median(timings["fp32"]))}


def load_chosen(folder: Path, manifest: BundleManifest, requested: str | None, threads: int | None, spinning: bool,
                build: Callable[[object, str], object], outputs, agree):
    """The bundle's model at the precision `choose_precision` picks, its `choice` set: each model file is opened
    (and its inputs checked) at most once, and `build(session, precision)` makes the task's model from it."""
    loaded: dict[str, object] = {}

    def load(chosen: str):
        if chosen not in loaded:
            session = create_session(folder / manifest.model_file(chosen), threads, spinning)
            check_inputs(session, manifest, folder)
            loaded[chosen] = build(session, chosen)
        return loaded[chosen]

    choice = choose_precision(folder, manifest, requested, load, outputs, agree)
    model = load(choice.precision)
    model.choice = choice
    logger.debug(f"{folder}: serving {choice.precision} ({choice.reason})")
    return model


def choose_precision(folder: Path, manifest: BundleManifest, requested: str | None, load: Callable[[str], object],
                     outputs, agree) -> PrecisionChoice:
    """The precision to serve (see the module docstring); `requested` is None or "auto", or a precision to obey."""
    requested = requested or "auto"
    if requested not in ("auto", *PRECISIONS):
        raise TuneshipError(f"precision must be auto or one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested != "auto":
        manifest.resolve_precision(requested)  # a clear error when the bundle lacks it
    if "int8" not in manifest.models:
        return PrecisionChoice("fp32", "the bundle has no int8 model", requested)
    golden = read_golden(folder)
    int8 = manifest.gates.get("int8", {})
    if golden is None:
        precision = manifest.default_precision if requested == "auto" else requested
        return PrecisionChoice(precision, f"no {GOLDEN_FILE} in the bundle to check int8 with; the bundle's default",
                               requested)
    checked = check_int8(golden, load, outputs, agree)
    agrees = checked["agreement"] == 1.0 and checked["max_difference"] <= GOLDEN_TOLERANCE
    faster = checked["int8_ms"] < checked["fp32_ms"]
    speed = f"int8 {checked['int8_ms']:.1f} ms against fp32 {checked['fp32_ms']:.1f} ms on {len(golden['inputs'][:8])} inputs"
    if not int8.get("passed", False):
        verdict, reason = False, "the int8 model did not pass the export's gate"
    elif not agrees:
        verdict, reason = False, (f"int8 disagrees with the stored fp32 outputs on this CPU (agreement "
                                  f"{checked['agreement']:.0%}, largest difference {checked['max_difference']:.3f})")
    elif not faster:
        verdict, reason = False, f"int8 is not faster than fp32 on this CPU ({speed})"
    else:
        verdict, reason = True, f"int8 agrees with the stored fp32 outputs and is faster on this CPU ({speed})"
    if requested == "auto":
        return PrecisionChoice("int8" if verdict else "fp32", reason, requested, checked)
    if requested == "int8" and not verdict:
        logger.warning(f"serving int8 as asked, though the check speaks against it: {reason}")
    return PrecisionChoice(requested, f"asked for {requested}; the check: {reason}", requested, checked)
