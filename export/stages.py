"""What every task's export shares: the checked checkpoint and output folder, the target ISA, progress per stage,
and the stages themselves (Optimum's conversion and fusions, the fp32 parity verdict, writing the bundle)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import __version__
from ..bundle import BundleManifest
from ..checkpoint import checkpoint_weights
from ..errors import TuneshipError
from ..files import write_directory_atomically
from ..log import get_logger
from .bundle import checkpoint_digest, file_info, write_card
from .config import ExportConfig
from .conversion import ONNX_FILE, export_onnx, optimize_onnx
from .quantization import detect_isa

logger = get_logger(__name__)


@dataclass
class ExportResult:
    """What `export()` returns: the bundle folder and its manifest."""

    output_dir: Path
    manifest: BundleManifest

    @property
    def int8_passed(self) -> bool:
        return bool(self.manifest.gates.get("int8", {}).get("passed"))


class Stages:
    """Reports one line per stage with its duration: the export's progress."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def __call__(self, text: str) -> None:
        now = time.perf_counter()
        if self.done:
            logger.info(f"  done in {now - self.started:.1f} s")
        self.done += 1
        self.started = now
        logger.info(f"[{self.done}/{self.total}] {text}")

    def finish(self) -> None:
        logger.info(f"  done in {time.perf_counter() - self.started:.1f} s")


def versions() -> dict:
    """The library versions an export ran with, recorded in the manifest."""
    import onnxruntime
    import optimum.version
    import torch
    import transformers

    return {"tuneship": __version__, "onnxruntime": onnxruntime.__version__, "optimum": optimum.version.__version__,
            "transformers": transformers.__version__, "torch": torch.__version__}


@dataclass
class ExportRun:
    """One export: the checked checkpoint and output folder, the target ISA, and the stage reporter."""

    config: ExportConfig
    checkpoint: Path
    output: Path
    isa: str
    stages: Stages

    @classmethod
    def start(cls, config: ExportConfig, stages: int | None = None) -> "ExportRun":
        """Check the checkpoint and the output folder; `stages` is how many stages the task's export reports."""
        checkpoint, output = Path(config.model), Path(config.output_dir)
        checkpoint_weights(checkpoint)
        if output.exists() and not config.overwrite:
            raise TuneshipError(f"{output} already exists; pass --overwrite to replace it")
        isa = detect_isa() if config.isa == "auto" else config.isa
        quantizing = config.quantize != "none"
        return cls(config, checkpoint, output, isa, Stages(stages or 4 + quantizing + (quantizing and config.nncf)))

    def common_fields(self, task: str, input_names: list[str], models: dict, opset: int | None) -> dict:
        """The manifest fields every bundle has (the task part, `settings`, and `max_length` come from the task)."""
        return {"task": task, "input_names": input_names, "opset": opset, "models": models, "default_precision": "fp32",
                "source": {"checkpoint": str(self.checkpoint.resolve()), "sha256": checkpoint_digest(self.checkpoint)},
                "versions": versions(), "export": self.config.recipe()}

    def convert(self, folder: Path, task: str) -> tuple[Path, dict]:
        """Stages 1 and 2: Optimum's ONNX export for `task` (config and tokenizer files copied into `folder`) and
        the fusions of the fp32 graph. Returns the folder whose graph the int8 model is made from (with the tanh
        GELU at O3), and the common manifest fields (inputs, opset, the fp32 file, source, versions)."""
        import onnx

        config, work = self.config, folder / ".work"
        self.stages(f"exporting {self.checkpoint} to ONNX ({task})")
        raw = work / "raw"
        export_onnx(self.checkpoint, raw, config.opset, task=task)
        for path in raw.iterdir():  # config, tokenizer files
            if path.suffix != ".onnx":
                shutil.copy(path, folder / path.name)
        self.stages(f"optimizing the graph ({config.optimize})")
        optimize_onnx(raw, folder, config.optimize, approximate_gelu=False)
        int8_source = folder
        if config.optimize == "O3" and config.quantize != "none":
            int8_source = optimize_onnx(raw, work / "int8-source", config.optimize, approximate_gelu=True).parent
        model = onnx.load(str(folder / ONNX_FILE), load_external_data=False)
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        models = {"fp32": file_info(folder, [ONNX_FILE], optimization=config.optimize)}
        return int8_source, self.common_fields(task, [i.name for i in model.graph.input], models, opset)

    def judge_parity(self, manifest: BundleManifest, parity: dict, unit: str) -> None:
        """Record the fp32 parity check in `manifest`, report it, and stop the export when it failed."""
        limit = self.config.max_logit_difference
        parity["passed"] = parity["tokenization_identical"] and parity["max_abs_logit_difference"] <= limit
        parity["limit"] = limit
        manifest.gates["fp32_parity"] = parity
        logger.info(f"  max |logit difference| {parity['max_abs_logit_difference']:.2e} on {parity['inputs']} {unit}; "
                    f"tokenization identical: {parity['tokenization_identical']}")
        if not parity["passed"]:
            raise TuneshipError(
                f"the fp32 ONNX model does not reproduce PyTorch (max |logit difference| "
                f"{parity['max_abs_logit_difference']:.2e} > {limit:g}, tokenization identical: "
                f"{parity['tokenization_identical']}); try --optimize none"
            )

    def finish_bundle(self, folder: Path, manifest: BundleManifest, card_lines: list[str]) -> BundleManifest:
        """The last stage: drop the work files, add the model card (with the task's `card_lines`) and the manifest."""
        self.stages(f"writing the bundle to {self.output}")
        shutil.rmtree(folder / ".work", ignore_errors=True)
        write_card(folder, self.checkpoint, manifest, card_lines)
        manifest.save(folder)
        return manifest

    def write(self, build: Callable[[Path], BundleManifest], load_hint: str) -> ExportResult:
        """Run `build(folder) -> manifest` in a staging folder renamed to the output at the end; report a summary
        ending with `load_hint` (how to load the bundle, `{output}` filled in)."""
        built: dict = {}
        write_directory_atomically(self.output, lambda folder: built.update(manifest=build(folder)))
        self.stages.finish()
        manifest = built["manifest"]
        logger.info(f"\nBundle written to {self.output}")
        for precision, info in manifest.models.items():
            mark = " (default)" if precision == manifest.default_precision else ""
            logger.info(f"  {' + '.join(info['files']):24s} {precision}{mark}  {info['size_bytes'] / 1e6:.1f} MB")
        int8 = manifest.gates.get("int8")
        if int8:
            logger.info(f"int8 gate: {int8['summary']}")
            if manifest.default_precision == "fp32":
                logger.warning("the int8 model did not pass the gate; serving uses fp32 unless told --precision int8")
        logger.info(f"Load it with:\n  {load_hint.format(output=self.output)}")
        return ExportResult(self.output, manifest)
