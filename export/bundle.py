"""What goes into a bundle besides the models: the source digest, file facts, examples and the model card."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Sequence

from ..bundle import EXAMPLES_FILE, NNCF_MODEL
from ..files import files_digest

SOURCE_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json")
CARD_FILE = "README.md"
USAGE_SECTION = re.compile(r"^## How to use\n.*?(?=^## )", re.MULTILINE | re.DOTALL)  # the checkpoint's: PyTorch
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")  # the images a card embeds, by file name


def checkpoint_digest(checkpoint: Path) -> str:
    """sha256 over the checkpoint's config, weights and tokenizer: which training run a bundle came from."""
    return files_digest(checkpoint, SOURCE_FILES)


def file_info(folder: Path, files: Sequence[str], **extra) -> dict:
    """A manifest's `models` entry: the graph files, their total size, and how they were made."""
    return {"files": list(files), "size_bytes": sum((folder / name).stat().st_size for name in files), **extra}


def write_examples(folder: Path, columns: Sequence[str], rows: Sequence[Sequence[str]], count: int = 5,
                   expected: Sequence[str] | None = None) -> None:
    """A few validation inputs (`rows` of values in `columns` order) for demos: the Gradio app's examples, each with
    its `expected` answer (the validation file's label) where given."""
    lines = [json.dumps({**dict(zip(columns, row)), **({"expected": expected[i]} if expected else {})},
                        ensure_ascii=False) for i, row in enumerate(list(rows)[:count])]
    (folder / EXAMPLES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


GOLDEN_ROWS = 16


def write_golden(folder: Path, rows: Sequence[Sequence[str]], outputs) -> None:
    """`golden.json`: validation inputs and the fp32 model's outputs on each (alone), for `precision="auto"` to check
    each candidate against on the serving CPU (`serving/plan.py`)."""
    import numpy as np

    from ..serving.plan import GOLDEN_FILE

    rows = [list(row) for row in rows][:GOLDEN_ROWS]
    found = np.concatenate([outputs([row]) for row in rows])
    (folder / GOLDEN_FILE).write_text(json.dumps({"inputs": rows, "fp32": found.tolist()}, ensure_ascii=False) + "\n",
                                      encoding="utf-8")


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def export_section(manifest, task_lines: Sequence[str]) -> str:
    """The card's "Export" section: files, sizes, the fp32 parity gate, then the task's lines (its int8 or
    generation gate, and how to load the bundle)."""
    parity = manifest.gates.get("fp32_parity", {})
    lines = [
        "## Export",
        "",
        f"Exported with `tuneship export` to ONNX (opset {manifest.opset}) with Optimum and onnxruntime. "
        f"`tuneship serve`, `predict` and the demo choose among the models below on the CPU that serves them (each "
        f"checked against the export's outputs there, the fastest kept per input length: they log the plan); a "
        f"reader that makes no plan (Optimum, an older tuneship) loads **{manifest.default_precision}**.",
        "",
        "| files | precision | size |",
        "|---|---|---|",
    ]
    for precision, info in manifest.models.items():
        lines.append(f"| {', '.join(f'`{name}`' for name in info['files'])} | {precision} | {info['size_bytes'] / 1e6:.1f} MB |")
    lines += ["", f"- fp32 against PyTorch: max |logit difference| {parity.get('max_abs_logit_difference', float('nan')):.2e} "
              f"on {parity.get('inputs', 0)} inputs."]
    return "\n".join([*lines, *task_lines, ""])


def int8_gate_line(manifest, agreement_of: str, first_metric: str) -> list[str]:
    """The card's lines on the int8 gates: agreement and metrics of the recipe chosen, or why fp32 is the default;
    then the NNCF model's."""
    int8 = manifest.gates.get("int8", {})
    chosen = int8.get("chosen")
    lines = []
    if chosen is not None:
        gate = int8["attempts"][chosen]["gate"]
        lines.append(f"- int8 against fp32 on {int8.get('rows')} rows of {int8.get('source')}: {agreement_of} agreement "
                     f"{percent(gate['agreement'])}, {first_metric} {gate['fp32'][first_metric]:.4f} -> "
                     f"{gate['int8'][first_metric]:.4f}, F1 {gate['fp32']['f1']:.4f} -> {gate['int8']['f1']:.4f} "
                     f"(recipe: {int8['attempts'][chosen]['recipe_text']})."
                     + (" These rows were in the model's training data (refit), so the agreement overstates agreement "
                        "on new inputs." if int8.get("rows_trained_on") else ""))
    elif int8:
        lines.append(f"- int8 did not pass the gate ({int8.get('summary', '')}); fp32 is the default.")
    return lines + nncf_gate_line(manifest, agreement_of, first_metric)


def nncf_gate_line(manifest, agreement_of: str, first_metric: str) -> list[str]:
    """The card's line on the NNCF int8 model: its gate figures, or why the bundle has none."""
    gate = manifest.gates.get(NNCF_MODEL)
    if not gate:
        return []
    if not gate["passed"]:
        return [f"- No NNCF int8 model for OpenVINO: {gate.get('reason', 'its gate failed')}."]
    return [f"- NNCF int8 (OpenVINO) against fp32 on {gate.get('rows', '?')} rows, run on {gate.get('runtime')}: "
            f"{agreement_of} agreement {percent(gate['agreement'])}, {first_metric} {gate['fp32'][first_metric]:.4f} -> "
            f"{gate['int8'][first_metric]:.4f}. `tuneship serve` picks, per input length, the fastest model that "
            "passes its checks on the serving CPU."]


def write_card(folder: Path, checkpoint: Path, manifest, task_lines: Sequence[str]) -> None:
    """Carry the checkpoint's model card over, tagged for ONNX, with an "Export" section added."""
    from huggingface_hub import ModelCard, ModelCardData

    source = checkpoint / CARD_FILE
    if source.is_file():
        card = ModelCard.load(source)
    else:
        card = ModelCard(f"---\n{ModelCardData(pipeline_tag=manifest.task).to_yaml()}\n---\n\n"
                         f"# {checkpoint.name}\n")
    card.data.tags = sorted(set(card.data.tags or []) | {"onnx", "optimum", *manifest.models})
    # Not a transformers folder (the Hub's transformers snippet fails on it), and its parent is the fine-tuned
    # checkpoint, not the checkpoint's base model: `tuneship push --bundle ... --base-model REPO` names it, quantized.
    card.data.library_name = "onnx"
    card.data.base_model = None
    text = USAGE_SECTION.sub("## How to use\n\nThis folder holds the ONNX export; see **Export** below for how to "
                             "load it (the PyTorch checkpoint's `pipeline` call does not load it).\n\n", card.text)
    for image in dict.fromkeys(IMAGE.findall(text)):  # the card's plots, so that they show on the Hub and in a Space
        if Path(image).name == image and (checkpoint / image).is_file():
            shutil.copy2(checkpoint / image, folder / image)
        else:  # nothing to show: no broken image
            text = re.sub(rf"!\[[^\]]*\]\({re.escape(image)}\)\n?", "", text)
    card.text = text.rstrip() + "\n\n" + export_section(manifest, task_lines)
    card.save(folder / CARD_FILE)
