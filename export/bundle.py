"""What goes into a bundle besides the models: the source digest, examples and the model card."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from ..serving.manifest import EXAMPLES_FILE, QUESTION_ANSWERING

SOURCE_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json")
CARD_FILE = "README.md"


def checkpoint_digest(checkpoint: Path) -> str:
    """sha256 over the checkpoint's config, weights and tokenizer: which training run a bundle came from."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        path = checkpoint / name
        if path.is_file():
            digest.update(name.encode())
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def write_examples(folder: Path, columns, texts: Sequence[str], pairs: Sequence[str] | None, count: int = 5) -> None:
    """A few validation inputs, in the data's column names, for demos (the Gradio app's examples)."""
    lines = []
    for i in range(min(count, len(texts))):
        row = {columns.text: texts[i]}
        if pairs is not None:
            row[columns.text_pair] = pairs[i]
        lines.append(json.dumps(row, ensure_ascii=False))
    (folder / EXAMPLES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def export_section(manifest) -> str:
    """The card's "Export" section: files, sizes, gate results and how to load the bundle."""
    parity = manifest.gates.get("fp32_parity", {})
    int8 = manifest.gates.get("int8", {})
    lines = [
        "## Export",
        "",
        f"Exported with `tuneship export` to ONNX (opset {manifest.opset}) and quantized to int8 with Optimum and "
        f"onnxruntime. The default model of this bundle is **{manifest.default_precision}**.",
        "",
        "| file | precision | size |",
        "|---|---|---|",
    ]
    for precision, info in manifest.models.items():
        lines.append(f"| `{info['file']}` | {precision} | {info['size_bytes'] / 1e6:.1f} MB |")
    lines += ["", f"- fp32 against PyTorch: max |logit difference| {parity.get('max_abs_logit_difference', float('nan')):.2e} "
              f"on {parity.get('inputs', 0)} inputs (short and at max length, batch 1 and batched)."]
    qa = manifest.task == QUESTION_ANSWERING
    loader = "QuestionAnswerer" if qa else "Predictor"
    ort_class = "ORTModelForQuestionAnswering" if qa else "ORTModelForSequenceClassification"
    chosen = int8.get("chosen")
    if chosen is not None:
        gate = int8["attempts"][chosen]["gate"]
        first_metric, agreement = ("exact_match", "answer-span") if qa else ("accuracy", "label")
        lines.append(
            f"- int8 against fp32 on {int8.get('rows')} rows of {int8.get('source')}: {agreement} agreement "
            f"{_percent(gate['agreement'])}, {first_metric} {gate['fp32'][first_metric]:.4f} -> {gate['int8'][first_metric]:.4f}, "
            f"F1 {gate['fp32']['f1']:.4f} -> {gate['int8']['f1']:.4f} (recipe: {int8['attempts'][chosen]['recipe_text']})."
        )
    elif int8:
        lines.append(f"- int8 did not pass the gate ({int8.get('summary', '')}); fp32 is the default.")
    lines += [
        "",
        "```python",
        f"from tuneship.serving{'.answering' if qa else ''} import {loader}  # onnxruntime, tokenizers and numpy only",
        f"model = {loader}.from_bundle(\"path/to/bundle\")",
        "",
        f"from optimum.onnxruntime import {ort_class}",
        f"model = {ort_class}.from_pretrained(\"path/to/bundle\"" +
        (", file_name=\"model_quantized.onnx\")" if "int8" in manifest.models else ")"),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_card(folder: Path, checkpoint: Path, manifest) -> None:
    """Carry the checkpoint's model card over, tagged for ONNX, with an "Export" section added."""
    from huggingface_hub import ModelCard, ModelCardData

    source = checkpoint / CARD_FILE
    if source.is_file():
        card = ModelCard.load(source)
    else:
        card = ModelCard(f"---\n{ModelCardData(library_name='transformers', pipeline_tag='text-classification').to_yaml()}\n---\n\n"
                         f"# {checkpoint.name}\n")
    card.data.tags = sorted(set(card.data.tags or []) | {"onnx", "int8", "optimum"})
    card.text = card.text.rstrip() + "\n\n" + export_section(manifest)
    card.save(folder / CARD_FILE)
