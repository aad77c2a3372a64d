"""Atomic outputs: a folder or file is built beside its destination and renamed into place,
so an interrupted job never leaves a half-written result where a finished one is expected."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence


def write_directory_atomically(output: Path, write: Callable[[Path], None]) -> None:
    """Call `write(staging)` on an empty folder beside `output`, then rename it to `output`.

    An existing `output` is replaced only once the new folder is complete.
    """
    output = Path(output)
    staging = output.with_name(f".{output.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        write(staging)
        if output.exists():
            trash = output.with_name(f".{output.name}.old")
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(output, trash)
            os.replace(staging, output)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_file(path: str | Path, content: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to `path` atomically: into a partial file beside it, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    if isinstance(content, str):
        partial.write_text(content, encoding="utf-8")
    else:
        partial.write_bytes(content)
    os.replace(partial, path)
    return path


def write_json(path: str | Path, payload: Any) -> Path:
    """Write `payload` as indented UTF-8 JSON, atomically."""
    return write_file(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def files_digest(folder: Path, names: Sequence[str]) -> str:
    """sha256 over the named files of `folder` that exist (each name, then its bytes): what a cache or a record
    of provenance is keyed by."""
    import hashlib

    digest = hashlib.sha256()
    for name in names:
        path = Path(folder) / name
        if path.is_file():
            digest.update(name.encode())
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(chunk)
    return digest.hexdigest()
