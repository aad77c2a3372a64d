"""What a checkpoint folder holds, read without torch: its config, its weights file and the task it was trained for."""

from __future__ import annotations

import json
from pathlib import Path

from .bundle import MANIFEST_FILE
from .errors import TuneshipError
from .tasks import CLASSIFICATION

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
VALIDATION_FILE = "validation.jsonl"  # the validation rows, in the data's own columns: the export's gates read them
CALIBRATION_FILE = "calibration.jsonl"  # a sample of training rows: the export's int8 calibration reads them


def checkpoint_weights(path: str | Path) -> Path:
    """Check that `path` is a checkpoint folder (a config.json and weights) and return its weights file."""
    path = Path(path)
    if not path.is_dir():
        raise TuneshipError(f"{path}: no such checkpoint folder")
    if (path / MANIFEST_FILE).is_file():
        raise TuneshipError(f"{path}: this is an ONNX bundle (it has {MANIFEST_FILE}), not a checkpoint; "
                            "pass it as --bundle")
    if not (path / "config.json").is_file():
        raise TuneshipError(f"{path}: not a model checkpoint (no config.json); give the folder `tuneship train` wrote")
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    raise TuneshipError(f"{path}: the checkpoint has no weights ({' or '.join(WEIGHT_FILES)})")


def checkpoint_config(path: str | Path) -> dict:
    """A checkpoint's config.json as a mapping ({} when the folder has none)."""
    config = Path(path) / "config.json"
    return json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}


def checkpoint_task(path: str | Path) -> str:
    """The task a tuneship checkpoint was trained for (read from its config.json; classification by default)."""
    return (checkpoint_config(path).get("tuneship") or {}).get("task", CLASSIFICATION)
