"""`export()`: a fine-tuned checkpoint to a self-contained bundle of fp32 and int8 ONNX models."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import TuneshipError, require
from ..files import write_directory_atomically
from ..serving.encoding import TextEncoder
from ..serving.manifest import QUESTION_ANSWERING, SUMMARIZATION, BundleManifest
from ..serving.predictor import Predictor, create_session
from .bundle import checkpoint_digest, write_card, write_examples
from .config import ExportConfig
from .conversion import ONNX_FILE, export_onnx, optimize_onnx
from .gates import LabelledRows, fp32_parity, int8_gate, parity_samples
from .quantization import QUANTIZED_FILE, Recipe, detect_isa, quantize, rank_sensitive_nodes, remedies

RANKING_ROWS = 64  # calibration rows used to rank nodes by sensitivity


@dataclass
class ExportResult:
    """What `export()` returns: the bundle folder and its manifest."""

    output_dir: Path
    manifest: BundleManifest

    @property
    def int8_passed(self) -> bool:
        return bool(self.manifest.gates.get("int8", {}).get("passed"))


class _Stages:
    """Prints one line per stage with its duration: the export's progress."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def __call__(self, text: str) -> None:
        now = time.perf_counter()
        if self.done:
            print(f"  done in {now - self.started:.1f} s", flush=True)
        self.done += 1
        self.started = now
        print(f"[{self.done}/{self.total}] {text}", flush=True)

    def finish(self) -> None:
        print(f"  done in {time.perf_counter() - self.started:.1f} s", flush=True)


def _validation_rows(config: ExportConfig, classifier) -> LabelledRows:
    from ..trainer.data import load_labelled_texts
    from ..trainer.saving import VALIDATION_FILE

    source = config.validation_data or Path(config.model) / VALIDATION_FILE
    if not Path(source).is_file() and config.validation_data is None:
        raise TuneshipError(f"{config.model} has no {VALIDATION_FILE}; give labelled rows for the int8 gate with --validation-data")
    label2id = {name: i for i, name in enumerate(classifier.label_names)}
    texts, pairs, labels = load_labelled_texts(str(source), classifier.columns, label2id)
    return LabelledRows(texts, pairs, labels, str(source))


def _calibration_texts(config: ExportConfig, classifier, validation: LabelledRows) -> tuple[list[str], list[str] | None, str]:
    from ..trainer.data import load_texts
    from ..trainer.saving import CALIBRATION_FILE

    source = config.calibration_data or Path(config.model) / CALIBRATION_FILE
    if config.calibration_data is None and not Path(source).is_file():
        # Older checkpoints: calibrate on the validation rows and say so in the manifest.
        texts, pairs, source = validation.texts, validation.text_pairs, f"{validation.source} (no calibration rows saved)"
    else:
        texts, pairs = load_texts(str(source), classifier.columns)
    n = config.calibration_samples
    return texts[:n], pairs[:n] if pairs is not None else None, str(source)


def _file_info(path: Path, **extra) -> dict:
    return {"file": path.name, "size_bytes": path.stat().st_size, **extra}


@dataclass
class ExportRun:
    """What every task's export shares: the checked checkpoint and output folder, the target ISA, the stage
    printer, and the stages themselves (conversion, the fp32 parity verdict, writing the bundle)."""

    config: ExportConfig
    checkpoint: Path
    output: Path
    isa: str
    stages: _Stages

    @classmethod
    def start(cls, config: ExportConfig) -> "ExportRun":
        from ..trainer.config import checkpoint_weights

        checkpoint, output = Path(config.model), Path(config.output_dir)
        checkpoint_weights(checkpoint)
        if output.exists() and not config.overwrite:
            raise TuneshipError(f"{output} already exists; pass --overwrite to replace it")
        isa = detect_isa() if config.isa == "auto" else config.isa
        return cls(config, checkpoint, output, isa, _Stages(5 if config.quantize != "none" else 4))

    def convert(self, folder: Path, task: str) -> tuple[Path, dict]:
        """Stages 1 and 2: Optimum's ONNX export for `task` (config and tokenizer files copied into `folder`) and
        the fusions of the fp32 graph. Returns the folder whose graph the int8 model is made from (with the tanh
        GELU at O3), and the manifest fields every bundle has (inputs, opset, the fp32 file, source, versions)."""
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
        return int8_source, {
            "task": task,
            "input_names": [i.name for i in model.graph.input],
            "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
            "models": {"fp32": _file_info(folder / ONNX_FILE, optimization=config.optimize)},
            "default_precision": "fp32",
            "source": {"checkpoint": str(self.checkpoint.resolve()), "sha256": checkpoint_digest(self.checkpoint)},
            "versions": _versions(),
        }

    def judge_parity(self, manifest: BundleManifest, parity: dict, unit: str) -> None:
        """Record the fp32 parity check in `manifest`, print it, and stop the export when it failed."""
        limit = self.config.max_logit_difference
        parity["passed"] = parity["tokenization_identical"] and parity["max_abs_logit_difference"] <= limit
        parity["limit"] = limit
        manifest.gates["fp32_parity"] = parity
        print(f"  max |logit difference| {parity['max_abs_logit_difference']:.2e} on {parity['inputs']} {unit}; "
              f"tokenization identical: {parity['tokenization_identical']}")
        if not parity["passed"]:
            raise TuneshipError(
                f"the fp32 ONNX model does not reproduce PyTorch (max |logit difference| "
                f"{parity['max_abs_logit_difference']:.2e} > {limit:g}, tokenization identical: "
                f"{parity['tokenization_identical']}); try --optimize none"
            )

    def finish_bundle(self, folder: Path, manifest: BundleManifest) -> BundleManifest:
        """The last stage: drop the work files, add the model card and the manifest."""
        self.stages(f"writing the bundle to {self.output}")
        shutil.rmtree(folder / ".work", ignore_errors=True)
        write_card(folder, self.checkpoint, manifest)
        manifest.save(folder)
        return manifest

    def write(self, build) -> ExportResult:
        """Run `build(folder) -> manifest` in a staging folder renamed to the output at the end; print a summary."""
        built: dict = {}
        write_directory_atomically(self.output, lambda folder: built.update(manifest=build(folder)))
        self.stages.finish()
        _print_summary(self.output, built["manifest"])
        return ExportResult(self.output, built["manifest"])


def export(config: ExportConfig) -> ExportResult:
    """Export `config.model` to ONNX, optimize and quantize it, check the gates, write the bundle.

    Example:
        >>> from tuneship.export import ExportConfig, export
        >>> result = export(ExportConfig(model="runs/relevance", output_dir="runs/relevance-onnx"))  # doctest: +SKIP
        >>> result.manifest.default_precision  # doctest: +SKIP
        'int8'
    """
    require("optimum.onnxruntime", "export")
    from ..trainer.config import checkpoint_task
    from ..trainer.inference import TorchClassifier

    if checkpoint_task(config.model) == QUESTION_ANSWERING:
        from .qa import export_qa

        return export_qa(config)
    if checkpoint_task(config.model) == SUMMARIZATION:
        from .summarization import export_summarization

        return export_summarization(config)

    run = ExportRun.start(config)
    classifier = TorchClassifier.from_checkpoint(run.checkpoint)
    settings = classifier.settings
    validation = _validation_rows(config, classifier)
    calibration = _calibration_texts(config, classifier, validation)

    def build(folder: Path) -> BundleManifest:
        int8_source, common = run.convert(folder, settings["task"])
        manifest = BundleManifest(
            **common,
            text_column=settings["text_column"],
            text_pair_column=settings["text_pair_column"],
            label_column=settings["label_column"],
            labels=classifier.label_names,
            positive_label=settings.get("positive_label"),
            max_length=settings["max_length"],
            truncation=settings["truncation"],
        )
        encoder = TextEncoder.from_file(folder, manifest.max_length, manifest.truncation)
        fp32 = Predictor(create_session(folder / ONNX_FILE), encoder, manifest, "fp32")

        run.stages("checking fp32 ONNX against PyTorch")
        samples = parity_samples(validation.texts, validation.text_pairs, manifest.max_length)
        run.judge_parity(manifest, fp32_parity(fp32, classifier.model, classifier.tokenizer, samples), "inputs")

        if config.quantize != "none":
            run.stages(f"quantizing to int8 ({config.quantize}, {run.isa}) and checking it on {len(validation.labels)} rows")
            manifest.gates["int8"] = _quantize_until_gate_passes(
                config, folder, int8_source, fp32, validation, calibration, run.isa, manifest
            )
        write_examples(folder, manifest.columns, validation.texts, validation.text_pairs)
        return run.finish_bundle(folder, manifest)

    return run.write(build)


def quantize_until_gate_passes(config: ExportConfig, folder: Path, source: Path, isa: str, feeds: list, ranking_feeds: list,
                               ranking_error, check, manifest: BundleManifest) -> dict:
    """Quantize `source/model.onnx` with the first recipe, then each remedy in turn, until `check(model_file)`
    (a gate dict with `passed`, `agreement` and `metric_drop`) passes; the int8 model with the best agreement
    goes into `folder` either way, and into `manifest` (as the default when it passed). Any task's export uses this.
    """
    work = folder / ".work"

    def rank(recipe: Recipe) -> list[str]:
        print("  ranking nodes by sensitivity (each quantized alone, scored on calibration rows)", flush=True)
        return rank_sensitive_nodes(source, work / "ranking", recipe, isa, ranking_feeds, ranking_error)

    first = Recipe(mode=config.quantize, per_channel=config.per_channel)
    attempts, chosen, best = [], None, None
    for index, recipe in enumerate(remedies(first, rank)):
        try_dir = work / f"try-{index}"
        model_file, details = quantize(source, try_dir, recipe, isa, feeds)
        gate = check(model_file)
        attempts.append({"recipe": recipe.to_dict(), "recipe_text": recipe.describe(), "gate": gate,
                         "size_bytes": model_file.stat().st_size, **details})
        print(f"  try {index + 1}: {recipe.describe()}: agreement {gate['agreement']:.2%}, "
              f"metric drop {gate['metric_drop']:+.4f} -> {'passed' if gate['passed'] else 'failed'}", flush=True)
        if best is None or gate["agreement"] > attempts[best]["gate"]["agreement"]:
            best = index
            shutil.copy(model_file, folder / QUANTIZED_FILE)
            if (try_dir / "ort_config.json").is_file():
                shutil.copy(try_dir / "ort_config.json", folder / "ort_config.json")
        shutil.rmtree(try_dir, ignore_errors=True)
        if gate["passed"]:
            chosen = index
            break
    manifest.models["int8"] = _file_info(folder / QUANTIZED_FILE, isa=isa, recipe=attempts[best]["recipe"])
    if chosen is not None:
        manifest.default_precision = "int8"
        summary = f"passed with {attempts[chosen]['recipe_text']}"
    else:
        summary = (f"no recipe reached {config.min_agreement:.1%} agreement and at most {config.max_accuracy_drop} metric drop; "
                   f"the best int8 model ({attempts[best]['recipe_text']}) is kept but fp32 is the default")
    return {"passed": chosen is not None, "chosen": chosen, "attempts": attempts, "summary": summary,
            "min_agreement": config.min_agreement, "max_accuracy_drop": config.max_accuracy_drop}


def _quantize_until_gate_passes(config, folder, source, fp32: Predictor, validation, calibration, isa, manifest) -> dict:
    """The classification ladder: calibration feeds from the calibration texts, the label gate on `validation`."""
    texts, pairs, calibration_source = calibration
    encodings = fp32.encoder.encode(texts, pairs)
    feeds = [b.arrays for b in fp32.encoder.batches(encodings, fp32.input_names, batch_size=32)]
    ranking_feeds = [b.arrays for b in fp32.encoder.batches(encodings[:RANKING_ROWS], fp32.input_names, batch_size=32)]
    reference = [fp32.session.run(None, feed)[0] for feed in ranking_feeds]
    fp32_logits, _ = fp32.logits(validation.texts, validation.text_pairs)

    def ranking_error(model_file: Path) -> float:
        session = create_session(model_file)
        return float(np.mean([np.abs(session.run(None, f)[0] - r).mean() for f, r in zip(ranking_feeds, reference)]))

    def check(model_file: Path) -> dict:
        int8 = Predictor(create_session(model_file), fp32.encoder, manifest, "int8")
        int8_logits, _ = int8.logits(validation.texts, validation.text_pairs)
        return int8_gate(fp32_logits, int8_logits, validation, fp32.label_names, fp32.positive_label_id,
                         config.min_agreement, config.max_accuracy_drop)

    gate = quantize_until_gate_passes(config, folder, source, isa, feeds, ranking_feeds, ranking_error, check, manifest)
    gate.update(rows=len(validation.labels), source=validation.source, calibration_source=calibration_source,
                calibration_rows=len(texts))
    return gate


def _versions() -> dict:
    import onnxruntime
    import optimum.version
    import torch
    import transformers

    return {"tuneship": __version__, "onnxruntime": onnxruntime.__version__, "optimum": optimum.version.__version__,
            "transformers": transformers.__version__, "torch": torch.__version__}


def _print_summary(output: Path, manifest: BundleManifest) -> None:
    print(f"\nBundle written to {output}")
    for precision, info in manifest.models.items():
        mark = " (default)" if precision == manifest.default_precision else ""
        name = " + ".join(info["files"]) if "files" in info else info["file"]
        print(f"  {name:24s} {precision}{mark}  {info['size_bytes'] / 1e6:.1f} MB")
    int8 = manifest.gates.get("int8")
    if int8:
        print(f"int8 gate: {int8['summary']}")
    if manifest.default_precision == "fp32" and int8:
        print("warning: the int8 model did not pass the gate; serving uses fp32 unless told --precision int8")
    print("Load it with:")
    if manifest.task == SUMMARIZATION:
        print(f"  python -c \"from tuneship.serving.summarizing import Summarizer; "
              f"print(Summarizer.from_bundle('{output}').summaries(['A long document ...']))\"")
    elif manifest.task == QUESTION_ANSWERING:
        print(f"  python -c \"from tuneship.serving.answering import QuestionAnswerer; "
              f"print(QuestionAnswerer.from_bundle('{output}'))\"")
    else:
        print(f"  python -c \"from tuneship.serving import Predictor; print(Predictor.from_bundle('{output}'))\"")
