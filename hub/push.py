"""`push`: publish a checkpoint or a bundle to the Hugging Face Hub: create the repo, upload the folder in one commit
with `huggingface_hub`'s `upload_folder`.

The token comes from `HF_TOKEN` or the login cache (`hf auth login`), as everywhere in the Hugging Face
ecosystem; it is sent to the Hub only and never printed, even in errors. `HF_ENDPOINT` points the
upload at another Hub (a private one, or the stand-in the tests run on loopback).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..bundle import MANIFEST_FILE
from ..checkpoint import CALIBRATION_FILE, VALIDATION_FILE, WEIGHT_FILES
from ..errors import TuneshipError, require
from .cards import card_license, with_base_model, with_license

# What each kind of folder must hold (one of).
KINDS = {"model": WEIGHT_FILES, "bundle": (MANIFEST_FILE,)}
# Not published: the trainer's intermediate checkpoints, hidden and half-written files, caches (upload_folder's
# `ignore_patterns`, matched against paths relative to the folder).
IGNORED = ["checkpoint-*", ".*", "*/.*", "*.partial", "*.partial/*", "__pycache__/*", "*/__pycache__/*", "*.pyc"]
# Not published unless asked (`include_data`): rows of the user's own data (the validation rows and the calibration
# sample a checkpoint keeps for its export) and the Trainer's pickled arguments, which the Hub flags as unsafe.
DATA_FILES = [VALIDATION_FILE, CALIBRATION_FILE, "training_args.bin"]
CARD = "README.md"


@dataclass
class PushPlan:
    """What a push uploads: files (path in the repo -> local path, or bytes for a completed card)."""

    folder: Path
    repo_id: str
    kind: str
    private: bool
    files: dict[str, Path | bytes] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # files of the folder withheld as the user's data
    ignore_patterns: list[str] = field(default_factory=lambda: list(IGNORED))
    url: str | None = None

    def sizes(self) -> dict[str, int]:
        return {name: len(f) if isinstance(f, bytes) else f.stat().st_size for name, f in self.files.items()}


def check_repo_id(repo_id: str, flag: str, advice: str) -> None:
    """A clear error for a repo id the Hub would refuse (`huggingface_hub.utils.validate_repo_id`'s rules)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise TuneshipError(f"{flag} {repo_id!r}: {advice} ({error})") from None


def plan_push(folder: str | Path, repo_id: str, kind: str, private: bool = False, license_name: str | None = None,
              include_data: bool = False, base_model: str | None = None) -> PushPlan:
    """Check the folder and the card, and list what would be uploaded (nothing is sent). The user's data files
    (`DATA_FILES`) are left out unless `include_data`. `base_model`: a bundle's fine-tuned checkpoint on the Hub,
    set in the bundle's card as its base model with `base_model_relation: quantized`."""
    folder = Path(folder)
    if kind not in KINDS:
        raise TuneshipError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not any((folder / name).is_file() for name in KINDS[kind]):
        what = "checkpoint written by `tuneship train`" if kind == "model" else "bundle written by `tuneship export`"
        raise TuneshipError(f"{folder}: no {' or '.join(KINDS[kind])}; give a {what}")
    check_repo_id(repo_id, "--repo-id", "use NAME or OWNER/NAME")
    from huggingface_hub.utils import filter_repo_objects

    plan = PushPlan(folder, repo_id, kind, private, ignore_patterns=IGNORED + ([] if include_data else DATA_FILES))
    paths = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    for name in filter_repo_objects(paths, ignore_patterns=plan.ignore_patterns):  # what upload_folder will send
        plan.files[name] = paths[name]
    plan.left_out = [name for name in filter_repo_objects(paths, ignore_patterns=IGNORED) if name not in plan.files]
    if base_model is not None:
        if kind != "bundle":
            raise TuneshipError("--base-model is for a bundle (its fine-tuned checkpoint); a checkpoint's card names "
                                "its base model already")
        check_repo_id(base_model, "--base-model", "use OWNER/NAME, the checkpoint's repo on the Hub")
    card = (folder / CARD).read_text(encoding="utf-8") if (folder / CARD).is_file() else ""
    if base_model:
        card = with_base_model(card, base_model, "quantized")
    if license_name:
        card = with_license(card, license_name)
    if license_name or base_model:
        plan.files[CARD] = card.encode("utf-8")
    elif card_license(folder / CARD) is None:
        raise TuneshipError(f"{folder / CARD}: the model card has no license; pass --license NAME "
                            "(for example apache-2.0 or mit, as the Hub spells them)")
    return plan


def _scrub(message: str, token: str) -> str:
    return message.replace(token, "***") if token else message


def _staged(plan: PushPlan, staging: Path) -> Path:
    """The folder to upload: `plan.folder` itself, or, when the card was completed, a copy of it (hard links where
    the file system allows) with the completed card, so the user's folder is left as it is."""
    if not any(isinstance(f, bytes) for f in plan.files.values()):
        return plan.folder
    for name, source in plan.files.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
            continue
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
    return staging


def push(plan: PushPlan, token: str | None = None) -> PushPlan:
    """Create the repo (or reuse it) and upload the folder in one commit; `plan.url` is set to the repo's URL."""
    hub = require("huggingface_hub", "train")
    token = token or hub.get_token()
    if not token:
        raise TuneshipError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (or use --dry-run)")
    api = hub.HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        repo = api.create_repo(plan.repo_id, private=plan.private, exist_ok=True, repo_type="model")
        with tempfile.TemporaryDirectory(prefix="tuneship-push-") as staging:
            api.upload_folder(repo_id=repo.repo_id, folder_path=_staged(plan, Path(staging)), repo_type="model",
                              ignore_patterns=plan.ignore_patterns, commit_message=f"Upload {plan.kind} with tuneship")
    except Exception as error:  # noqa: BLE001 - network, auth and Hub errors all end here, token removed
        raise TuneshipError(f"push to {plan.repo_id} failed: {_scrub(str(error), token)}") from None
    plan.url = str(repo)
    return plan
