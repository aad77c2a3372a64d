"""`push`: publish a checkpoint or a bundle to the Hugging Face Hub: create the repo, upload the folder in one commit.

The token comes from `HF_TOKEN` or the login cache (`hf auth login`), as everywhere in the Hugging Face
ecosystem; it is sent to the Hub only and never printed, even in errors. `HF_ENDPOINT` points the
upload at another Hub (a private one, or the stand-in the tests run on loopback).
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TuneshipError, require
from ..serving.manifest import MANIFEST_FILE
from ..trainer.config import WEIGHT_FILES
from .cards import card_license, with_license

# What each kind of folder must hold (one of).
KINDS = {"model": WEIGHT_FILES, "bundle": (MANIFEST_FILE,)}
# Not published: the trainer's intermediate checkpoints, hidden and half-written files, caches.
IGNORED = ("checkpoint-*", ".*", "*.partial", "__pycache__", "*.pyc")
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]{0,95}$")
CARD = "README.md"


@dataclass
class PushPlan:
    """What a push uploads: files (path in the repo -> local path, or bytes for a completed card)."""

    folder: Path
    repo_id: str
    kind: str
    private: bool
    files: dict[str, Path | bytes] = field(default_factory=dict)
    url: str | None = None

    def sizes(self) -> dict[str, int]:
        return {name: len(f) if isinstance(f, bytes) else f.stat().st_size for name, f in self.files.items()}


def _ignored(relative: Path) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in IGNORED)


def plan_push(folder: str | Path, repo_id: str, kind: str, private: bool = False, license_name: str | None = None) -> PushPlan:
    """Check the folder and the card, and list what would be uploaded (nothing is sent)."""
    folder = Path(folder)
    if kind not in KINDS:
        raise TuneshipError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not any((folder / name).is_file() for name in KINDS[kind]):
        what = "checkpoint written by `tuneship train`" if kind == "model" else "bundle written by `tuneship export`"
        raise TuneshipError(f"{folder}: no {' or '.join(KINDS[kind])}; give a {what}")
    if not REPO_ID.match(repo_id):
        raise TuneshipError(f"--repo-id {repo_id!r}: use NAME or OWNER/NAME (letters, digits, '-', '_', '.')")
    plan = PushPlan(folder, repo_id, kind, private)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if not _ignored(relative):
            plan.files[relative.as_posix()] = path
    if license_name:
        card = (folder / CARD).read_text(encoding="utf-8") if (folder / CARD).is_file() else ""
        plan.files[CARD] = with_license(card, license_name).encode("utf-8")
    elif card_license(folder / CARD) is None:
        raise TuneshipError(f"{folder / CARD}: the model card has no license; pass --license NAME "
                            "(for example apache-2.0 or mit, as the Hub spells them)")
    return plan


def _scrub(message: str, token: str) -> str:
    return message.replace(token, "***") if token else message


def push(plan: PushPlan, token: str | None = None) -> PushPlan:
    """Create the repo (or reuse it) and upload `plan.files` in one commit; `plan.url` is set to the repo's URL."""
    hub = require("huggingface_hub", "train")
    token = token or hub.get_token()
    if not token:
        raise TuneshipError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (or use --dry-run)")
    api = hub.HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    operations = [hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=f if isinstance(f, bytes) else str(f))
                  for name, f in plan.files.items()]
    try:
        repo = api.create_repo(plan.repo_id, private=plan.private, exist_ok=True, repo_type="model")
        api.create_commit(repo.repo_id, operations, commit_message=f"Upload {plan.kind} with tuneship")
    except Exception as error:  # noqa: BLE001 - network, auth and Hub errors all end here, token removed
        raise TuneshipError(f"push to {plan.repo_id} failed: {_scrub(str(error), token)}") from None
    plan.url = str(repo)
    return plan
