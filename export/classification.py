"""Export a classification checkpoint: fp32 and int8 ONNX models, the parity gate against PyTorch, the int8
ladder gated on label agreement and accuracy/F1 on labelled rows, and NNCF's int8 model for OpenVINO, gated alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..bundle import BundleManifest
from ..checkpoint import CALIBRATION_FILE, VALIDATION_FILE
from ..data.classification import LabelledRows, load_texts, read_labelled, softmax
from ..encoding import TextEncoder
from ..errors import TuneshipError, require
from ..log import get_logger
from ..metrics.classification import classification_metrics
from ..serving.classification import Predictor, Settings, golden_outputs
from ..serving.session import create_session
from ..tasks import CLASSIFICATION
from .bundle import int8_gate_line, write_examples, write_golden
from .config import ExportConfig
from .conversion import ONNX_FILE
from .nncf import add_nncf_model
from .quantization import quantize_until_gate_passes
from .stages import ExportResult, ExportRun

logger = get_logger(__name__)

RANKING_ROWS = 64  # calibration rows used to rank nodes by sensitivity
BATCH_DRIFT_ROWS = 48  # validation rows scored alone and in batches for the gate's batch-invariance check
MAX_BATCH_DRIFT = 1e-3  # most an int8 probability may move between an input alone and in a batch


def parity_samples(texts: Sequence[str], pairs: Sequence[str] | None, max_length: int) -> list[tuple[list[str], list[str] | None]]:
    """Input groups for the fp32 parity check: short and at max length, batched and one at a time."""
    count = min(4, len(texts))
    short = (list(texts[:count]), None if pairs is None else list(pairs[:count]))
    # Repeated until they overflow max_length, so that truncation (longer text first) is exercised.
    long = (
        [" ".join([t] * (max_length // max(len(t.split()), 1) + 2)) for t in short[0]],
        None if pairs is None else [" ".join([p] * 3) for p in short[1]],
    )
    singles = [([g[0][i]], None if g[1] is None else [g[1][i]]) for g in (short, long) for i in range(min(2, count))]
    return [short, long, *singles]


def fp32_parity(predictor: Predictor, torch_model, tokenizer, samples) -> dict:
    """Max |logit difference| between the ONNX model and PyTorch on the same token ids, and whether
    `tokenizers` (serving) produces the same ids as transformers' tokenizer (training)."""
    import torch

    manifest, settings = predictor.manifest, predictor.settings
    worst, tokens_match, inputs = 0.0, True, 0
    for texts, pairs in samples:
        encodings = predictor.encoder.encode(texts, pairs)
        reference = tokenizer(texts, pairs, truncation=settings.truncation, max_length=manifest.max_length)["input_ids"]
        tokens_match &= all(list(e.ids) == list(r) for e, r in zip(encodings, reference))
        for batch in predictor.encoder.batches(encodings, predictor.input_names, batch_size=len(texts)):
            onnx_logits = predictor.session.run(None, batch.arrays)[0]
            with torch.inference_mode():
                torch_logits = torch_model(**{k: torch.from_numpy(v) for k, v in batch.arrays.items()}).logits.numpy()
            worst = max(worst, float(np.abs(onnx_logits - torch_logits).max()))
        inputs += len(texts)
    return {"max_abs_logit_difference": worst, "inputs": inputs, "tokenization_identical": tokens_match}


EXAMPLE_ROWS = 6  # demo examples per bundle ...
EXAMPLE_CANDIDATES = 200  # ... chosen among the first validation rows


def demo_examples(fp32, rows: Sequence[Sequence[str]], labels: Sequence[int], label_names: Sequence[str]) -> list[int]:
    """Which validation rows the demo shows: ones the fp32 model labels as the file does (a visitor's first try
    should not be a miss), taking the labels in turn so that every label is shown; other rows after them only
    where too few are right."""
    candidates = list(rows)[:EXAMPLE_CANDIDATES]
    texts = [row[0] for row in candidates]
    pairs = [row[1] for row in candidates] if candidates and len(candidates[0]) > 1 else None
    predicted = [p["label"] for p in fp32.predict(texts, pairs)] if candidates else []
    right = {name: [i for i, p in enumerate(predicted) if p == name == label_names[labels[i]]] for name in label_names}
    shown: list[int] = []
    while len(shown) < EXAMPLE_ROWS and any(right.values()):
        for name in label_names:
            if right[name] and len(shown) < EXAMPLE_ROWS:
                shown.append(right[name].pop(0))
    shown += [i for i in range(len(candidates)) if i not in shown][: EXAMPLE_ROWS - len(shown)]  # too few right
    return shown


def headline_metrics(labels: Sequence[int], predicted: Sequence[int], label_names: Sequence[str], positive_id: int | None) -> dict:
    metrics = classification_metrics(labels, predicted, label_names, positive_id)
    return {"accuracy": metrics["accuracy"], "f1": metrics["f1"]}


def int8_gate(
    fp32_logits: np.ndarray, int8_logits: np.ndarray, rows: LabelledRows, label_names: Sequence[str],
    positive_id: int | None, min_agreement: float, max_drop: float,
) -> dict:
    """Label agreement of int8 with fp32, and the drop in accuracy and F1; `passed` when both hold."""
    fp32_labels, int8_labels = fp32_logits.argmax(-1), int8_logits.argmax(-1)
    fp32 = headline_metrics(rows.labels, fp32_labels, label_names, positive_id)
    int8 = headline_metrics(rows.labels, int8_labels, label_names, positive_id)
    agreement = float(np.mean(fp32_labels == int8_labels))
    drop = max(fp32[k] - int8[k] for k in fp32)
    return {
        "agreement": agreement,
        "metric_drop": drop,
        "fp32": fp32,
        "int8": int8,
        "max_abs_logit_difference": float(np.abs(fp32_logits - int8_logits).max()),
        "passed": agreement >= min_agreement and drop <= max_drop,
    }


def batch_drift(predictor: Predictor, rows: LabelledRows, count: int = BATCH_DRIFT_ROWS) -> float:
    """The largest probability difference of an input alone and in a padded batch of 16 with a long neighbour, over
    `count` rows: how far an answer moves with its batch mates (0 for a batch-invariant model)."""
    texts, pairs = rows.texts[:count], None if rows.text_pairs is None else rows.text_pairs[:count]
    alone = np.concatenate([predictor.logits([t], None if pairs is None else [pairs[i]])[0] for i, t in enumerate(texts)])
    long_text = " ".join([texts[0]] * (predictor.manifest.max_length // max(len(texts[0].split()), 1) + 2))
    batched = []
    for start in range(0, len(texts), 15):  # 15 inputs and the long one make batches of 16 at max length
        group = texts[start : start + 15] + [long_text]
        group_pairs = None if pairs is None else pairs[start : start + 15] + [pairs[0]]
        batched.append(predictor.logits(group, group_pairs, batch_size=16)[0][:-1])
    return float(np.abs(softmax(alone) - softmax(np.concatenate(batched))).max())


def _validation_rows(config: ExportConfig, classifier) -> LabelledRows:
    source = config.validation_data or Path(config.model) / VALIDATION_FILE
    if not Path(source).is_file() and config.validation_data is None:
        raise TuneshipError(f"{config.model} has no {VALIDATION_FILE}; give labelled rows for the int8 gate with --validation")
    label2id = {name: i for i, name in enumerate(classifier.label_names)}
    return read_labelled(str(source), classifier.columns, label2id)


def gate_rows_trained_on(config: ExportConfig) -> bool:
    """Whether the checkpoint was refit on the rows of its own `validation.jsonl`, the int8 gate's default rows:
    the model has learned them, so its margins there are wide and agreement on them overstates agreement on
    new inputs (MRPC: 99.8% on the refit rows, 91.6% on the validation file, for the same int8 model)."""
    if config.validation_data is not None:
        return False
    metrics = Path(config.model) / "metrics.json"
    try:
        return "refit" in json.loads(metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _calibration_texts(config: ExportConfig, classifier, validation: LabelledRows) -> tuple[list[str], list[str] | None, str]:
    source = config.calibration_data or Path(config.model) / CALIBRATION_FILE
    if config.calibration_data is None and not Path(source).is_file():
        # Older checkpoints: calibrate on the validation rows and say so in the manifest.
        texts, pairs, source = validation.texts, validation.text_pairs, f"{validation.source} (no calibration rows saved)"
    else:
        texts, pairs = load_texts(str(source), classifier.columns)
    n = config.calibration_samples
    return texts[:n], pairs[:n] if pairs is not None else None, str(source)


def _quantize(config, folder, source, fp32: Predictor, validation, calibration, isa, manifest) -> dict:
    """The int8 ladder: calibration feeds from the calibration texts, the label gate on `validation`."""
    texts, pairs, calibration_source = calibration
    encodings = fp32.encoder.encode(texts, pairs)
    feeds = [b.arrays for b in fp32.encoder.batches(encodings, fp32.input_names, batch_size=32)]
    ranking_feeds = [b.arrays for b in fp32.encoder.batches(encodings[:RANKING_ROWS], fp32.input_names, batch_size=32)]
    reference = [fp32.session.run(None, feed)[0] for feed in ranking_feeds]

    def ranking_error(model_file: Path) -> float:
        session = create_session(model_file)
        return float(np.mean([np.abs(session.run(None, f)[0] - r).mean() for f, r in zip(ranking_feeds, reference)]))

    check = gate_check(config, fp32, validation, manifest)
    gate = quantize_until_gate_passes(config, folder, source, isa, feeds, ranking_feeds, ranking_error, check, manifest)
    gate.update(rows=len(validation.labels), source=validation.source, calibration_source=calibration_source,
                calibration_rows=len(texts))
    return gate


def gate_check(config, fp32: Predictor, validation: LabelledRows, manifest: BundleManifest):
    """The int8 gate as a function of a session (onnxruntime's or OpenVINO's): label agreement with fp32 and the
    metric drop on `validation`, in batches of 32 as served, and the batch drift."""
    fp32_logits, _ = fp32.logits(validation.texts, validation.text_pairs)

    def check(session) -> dict:
        int8 = Predictor(session, fp32.encoder, manifest, "int8")
        int8_logits, _ = int8.logits(validation.texts, validation.text_pairs)
        gate = int8_gate(fp32_logits, int8_logits, validation, fp32.label_names, fp32.positive_label_id,
                         config.min_agreement, config.max_accuracy_drop)
        gate["batch_drift"] = batch_drift(int8, validation)
        gate["passed"] = gate["passed"] and gate["batch_drift"] <= MAX_BATCH_DRIFT
        gate["rows"], gate["source"] = len(validation.labels), validation.source
        return gate

    return check


def _nncf(config, folder: Path, fp32: Predictor, validation: LabelledRows, calibration, manifest) -> dict:
    """The NNCF int8 model (see `nncf.py`), calibrated on the calibration texts, one unpadded input each."""
    texts, pairs, calibration_source = calibration
    feeds = [fp32.encoder.pad([encoding], fp32.input_names) for encoding in fp32.encoder.encode(texts, pairs)]
    return add_nncf_model(config, folder, manifest, feeds, gate_check(config, fp32, validation, manifest),
                          calibration_source)


def export(config: ExportConfig) -> ExportResult:
    """Export a classification checkpoint (written by `tuneship train`, or any sequence-classification checkpoint)."""
    require("optimum.onnxruntime", "export")
    from ..trainer.classification import TorchClassifier

    run = ExportRun.start(config)
    classifier = TorchClassifier.from_checkpoint(run.checkpoint)
    s = classifier.settings
    validation = _validation_rows(config, classifier)
    rows_trained_on = gate_rows_trained_on(config)
    if rows_trained_on:
        logger.warning(f"{config.model} was refit on the rows of its {VALIDATION_FILE}, the int8 gate's rows: agreement "
                       "on rows the model learned overstates agreement on new inputs. Pass --validation with "
                       "labelled rows it never trained on (and that you do not report as held out) for a gate that "
                       "can fail; the manifest records rows_trained_on.")
    calibration = _calibration_texts(config, classifier, validation)

    def build(folder: Path) -> BundleManifest:
        int8_source, common = run.convert(folder, CLASSIFICATION)
        settings = Settings(text_column=s["text_column"], text_pair_column=s["text_pair_column"],
                            label_column=s["label_column"], labels=classifier.label_names,
                            positive_label=s.get("positive_label"), truncation=s["truncation"])
        manifest = BundleManifest(**common, max_length=s["max_length"], settings=settings.to_dict())
        encoder = TextEncoder.from_file(folder, manifest.max_length, settings.truncation)
        fp32 = Predictor(create_session(folder / ONNX_FILE), encoder, manifest, "fp32")

        run.stages("checking fp32 ONNX against PyTorch")
        samples = parity_samples(validation.texts, validation.text_pairs, manifest.max_length)
        run.judge_parity(manifest, fp32_parity(fp32, classifier.model, classifier.tokenizer, samples), "inputs")

        if config.quantize != "none":
            run.stages(f"quantizing to int8 ({config.quantize}, {run.isa}) and checking it on {len(validation.labels)} rows")
            manifest.gates["int8"] = _quantize(config, folder, int8_source, fp32, validation, calibration, run.isa,
                                               manifest)
            manifest.gates["int8"]["rows_trained_on"] = rows_trained_on
            if config.nncf:
                run.stages(f"quantizing with NNCF (static int8 for OpenVINO) and checking it on {len(validation.labels)} rows")
                _nncf(config, folder, fp32, validation, calibration, manifest)["rows_trained_on"] = rows_trained_on
        rows = list(zip(validation.texts, validation.text_pairs)) if validation.text_pairs else [[t] for t in validation.texts]
        shown = demo_examples(fp32, rows, validation.labels, classifier.label_names)
        write_examples(folder, settings.input_columns, [rows[i] for i in shown], len(shown),
                       [classifier.label_names[validation.labels[i]] for i in shown])
        write_golden(folder, rows, lambda batch: golden_outputs(fp32, batch))
        return run.finish_bundle(folder, manifest, [*int8_gate_line(manifest, "label", "accuracy"), *usage(manifest)])

    return run.write(build, "python -c \"from tuneship.serving import Predictor; print(Predictor.from_bundle('{output}'))\"")


def usage(manifest: BundleManifest) -> list[str]:
    """How the card says to load the bundle: tuneship's Predictor (no torch), or Optimum."""
    file_name = ', file_name="model_quantized.onnx"' if "int8" in manifest.models else ""
    return ["", "```python", "from tuneship.serving import Predictor  # onnxruntime, tokenizers and numpy only",
            'model = Predictor.from_bundle("path/to/bundle")', "",
            "from optimum.onnxruntime import ORTModelForSequenceClassification",
            f'model = ORTModelForSequenceClassification.from_pretrained("path/to/bundle"{file_name})', "```"]
