"""Every card tuneship writes is read by `huggingface_hub.ModelCard`, and the Python snippets it shows run against
the folder it describes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard


def snippets(card: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card.read_text(encoding="utf-8"), flags=re.S)


PIPELINE_TAGS = {"pair": "text-classification", "text": "text-classification", "qa": "question-answering",
                 "summary": "summarization"}


@pytest.mark.parametrize("task", list(PIPELINE_TAGS))
@pytest.mark.parametrize("kind", ["checkpoint", "bundle"])
def test_a_card_loads_and_its_snippets_run_against_its_folder(kind, task, request):
    folder = request.getfixturevalue(f"{task}_{kind}")
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == "apache-2.0" and card.data.pipeline_tag == PIPELINE_TAGS[task]
    if kind == "bundle":  # no transformers snippet offered for an ONNX folder, no claim to be the base model's child
        assert card.data.library_name == "onnx" and card.data.base_model is None  # `push` names the checkpoint
    run_snippets(folder)


def run_snippets(folder: Path) -> None:
    code = snippets(folder / "README.md")
    assert code, "the card shows how to use the folder"
    for block in code:
        # the bundle's card names a placeholder path; the checkpoint's names the folder, run from beside it
        block = block.replace("path/to/bundle", str(folder))
        result = subprocess.run([sys.executable, "-c", block], cwd=folder.parent, capture_output=True, text=True,
                                timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert result.returncode == 0, (block, result.stderr[-2000:])
