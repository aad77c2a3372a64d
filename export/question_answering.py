"""Export an extractive QA checkpoint: fp32 and int8 ONNX models (onnxruntime's and NNCF's), with span gates.

The same stages as classification (Optimum export, fusions, fp32 parity, the int8 remedy ladder,
an atomic bundle); the int8 gate compares answer spans: the share of validation questions whose
int8 answer is the fp32 answer, and the drop in SQuAD F1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..bundle import BundleManifest
from ..checkpoint import VALIDATION_FILE
from ..data.question_answering import QAExample, read_qa_examples
from ..encoding import pad_encodings
from ..errors import TuneshipError, require
from ..metrics.question_answering import squad_score
from ..serving.question_answering import QuestionAnswerer, Settings, golden_outputs
from ..serving.session import create_session
from ..spans import windows_of
from ..tasks import QUESTION_ANSWERING
from .bundle import int8_gate_line, write_examples, write_golden
from .config import ExportConfig
from .conversion import ONNX_FILE
from .nncf import add_nncf_model
from .quantization import quantize_until_gate_passes
from .stages import ExportResult, ExportRun

PARITY_QUESTIONS = 4


def _validation(config: ExportConfig) -> tuple[list[QAExample], str]:
    source = config.validation_data or Path(config.model) / VALIDATION_FILE
    if not Path(source).is_file():
        raise TuneshipError(f"{config.model} has no {VALIDATION_FILE}; give QA rows for the int8 gate with --validation")
    return read_qa_examples(source, split="validation"), str(source)


def _parity(fp32: QuestionAnswerer, torch_answerer, examples: list[QAExample]) -> dict:
    """Max |logit difference| (start and end) on short and multi-window contexts, and whether both
    tokenizers cut the same windows."""
    samples = list(examples[:PARITY_QUESTIONS])
    long = samples[0]
    samples.append(QAExample("long", long.question, " ".join([long.context] * (3 * fp32.settings["max_length"] // 64 + 2))))
    s = fp32.settings
    windows, _ = windows_of(samples, fp32.tokenizer, s["max_length"], s["doc_stride"])
    torch_windows, _ = windows_of(samples, torch_answerer.tokenizer, s["max_length"], s["doc_stride"])
    identical = [w.ids for w in windows] == [w.ids for w in torch_windows]
    onnx_start, onnx_end = fp32.logits(windows, batch_size=4)
    torch_start, torch_end = torch_answerer.logits(windows, batch_size=4)
    difference = max(float(np.abs(onnx_start - torch_start).max()), float(np.abs(onnx_end - torch_end).max()))
    return {"max_abs_logit_difference": difference, "inputs": len(windows), "tokenization_identical": identical}


def _span_gate(fp32_answers, int8_answers, examples, min_agreement: float, max_drop: float) -> dict:
    agreement = float(np.mean([(a.start, a.end) == (b.start, b.end) for a, b in zip(fp32_answers, int8_answers)]))
    fp32_score, int8_score = squad_score(examples, fp32_answers), squad_score(examples, int8_answers)
    drop = max(fp32_score["f1"] - int8_score["f1"], fp32_score["exact_match"] - int8_score["exact_match"]) / 100
    return {"agreement": agreement, "metric_drop": drop,
            "fp32": {k: fp32_score[k] for k in ("exact_match", "f1")},
            "int8": {k: int8_score[k] for k in ("exact_match", "f1")},
            "passed": agreement >= min_agreement and drop <= max_drop}


def export(config: ExportConfig) -> ExportResult:
    """Export a question-answering checkpoint (written by `tuneship train --task question-answering`)."""
    require("optimum.onnxruntime", "export")
    from ..trainer.question_answering import TorchQuestionAnswerer

    run = ExportRun.start(config)
    torch_answerer = TorchQuestionAnswerer.from_checkpoint(run.checkpoint)
    settings = torch_answerer.settings
    validation, validation_source = _validation(config)

    def build(folder: Path) -> BundleManifest:
        int8_source, common = run.convert(folder, QUESTION_ANSWERING)
        task_settings = Settings(**{k: settings[k] for k in ("doc_stride", "max_answer_length", "n_best")})
        manifest = BundleManifest(**common, max_length=settings["max_length"], settings=task_settings.to_dict())
        from tokenizers import Tokenizer  # the bundle is not complete yet: its parts are loaded by hand

        fp32 = QuestionAnswerer(create_session(folder / ONNX_FILE), Tokenizer.from_file(str(folder / "tokenizer.json")),
                                manifest, "fp32")

        run.stages("checking fp32 ONNX against PyTorch")
        run.judge_parity(manifest, _parity(fp32, torch_answerer, validation), "windows")

        if config.quantize != "none":
            run.stages(f"quantizing to int8 ({config.quantize}, {run.isa}) and checking answer spans on "
                       f"{len(validation)} questions")
            s = fp32.settings
            windows, _ = windows_of(validation, fp32.tokenizer, s["max_length"], s["doc_stride"])
            calibration = windows[: config.calibration_samples]
            feeds = [pad_encodings(calibration[i : i + 32], fp32.input_names, fp32.pad_id)
                     for i in range(0, len(calibration), 32)]
            ranking_feeds = feeds[:2]
            reference = [fp32.session.run(None, f) for f in ranking_feeds]
            fp32_answers = fp32.answer_examples(validation)

            def ranking_error(model_file: Path) -> float:
                session = create_session(model_file)
                return float(np.mean([np.abs(np.stack(session.run(None, f)[:2]) - np.stack(r[:2])).mean()
                                      for f, r in zip(ranking_feeds, reference)]))

            def check(session) -> dict:
                int8 = QuestionAnswerer(session, fp32.tokenizer, manifest, "int8")
                return _span_gate(fp32_answers, int8.answer_examples(validation), validation, config.min_agreement,
                                  config.max_accuracy_drop)

            gate = quantize_until_gate_passes(config, folder, int8_source, run.isa, feeds, ranking_feeds, ranking_error,
                                              check, manifest)
            gate.update(rows=len(validation), source=validation_source, calibration_rows=len(calibration),
                        calibration_source=f"{validation_source} (windows of the validation questions)")
            manifest.gates["int8"] = gate
            if config.nncf:
                run.stages(f"quantizing with NNCF (static int8 for OpenVINO) and checking answer spans on "
                           f"{len(validation)} questions")
                add_nncf_model(config, folder, manifest, feeds, check,
                               f"{validation_source} (windows of the validation questions)", granule=None)
        rows = [(e.question, e.context) for e in validation]
        write_examples(folder, task_settings.input_columns, rows)
        write_golden(folder, rows, lambda batch: golden_outputs(fp32, batch))
        return run.finish_bundle(folder, manifest, [*int8_gate_line(manifest, "answer-span", "exact_match"), "",
                                                    "```python",
                                                    "from tuneship.serving.question_answering import QuestionAnswerer",
                                                    'model = QuestionAnswerer.from_bundle("path/to/bundle")', "",
                                                    "from optimum.onnxruntime import ORTModelForQuestionAnswering",
                                                    'model = ORTModelForQuestionAnswering.from_pretrained("path/to/bundle")',
                                                    "```"])

    return run.write(build, "python -c \"from tuneship.serving.question_answering import QuestionAnswerer; "
                            "print(QuestionAnswerer.from_bundle('{output}'))\"")
