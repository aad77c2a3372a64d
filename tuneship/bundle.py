"""The bundle format (what `tuneship export` writes and every other stage reads, beside the checkpoint format of
`checkpoint.py`): the manifest `tuneship.json`, a common part every task has, and the task's own part (`settings`).

The common part says what the bundle is (task, max length, the graphs' inputs, the models per precision,
the gates, where it came from); `settings` is the task's part, read and checked by the task's
`Settings` (a `TaskSettings` in `serving/<task>.py`): columns and labels for classification, windows for question
answering, generation for summarization. A manifest is checked when loaded: one clear error names the
file and the field, before any model is loaded.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar, TypeVar

from .errors import TuneshipError
from .tasks import TASK_NAMES

MANIFEST_FILE = "tuneship.json"
EXAMPLES_FILE = "examples.jsonl"  # a few validation inputs saved by `tuneship export`, for demos
FORMAT_VERSION = 2
NNCF_MODEL = "nncf-int8"  # NNCF static int8 (QDQ) of the fp32 graph, for OpenVINO (`export/nncf.py`)
MODELS = ("fp32", "int8", NNCF_MODEL)


class ManifestError(TuneshipError):
    """A manifest that is missing, unreadable or does not describe a usable bundle."""


T = TypeVar("T", bound="TaskSettings")


@dataclass
class TaskSettings:
    """A task's part of the manifest (its `settings`): each task's serving module subclasses it as a dataclass with
    its fields, names its `task`, and checks what the field types do not in `check`."""

    task: ClassVar[str]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls: type[T], values: dict, where: str = MANIFEST_FILE) -> T:
        """Read and check the manifest's `settings`; errors name `where` and the field."""
        try:
            settings = cls(**values)
        except TypeError as error:
            raise ManifestError(f"{where}: field 'settings' does not fit a {cls.task} bundle ({error})") from None
        settings.check(where)
        return settings

    def check(self, where: str) -> None:
        """Raise a `ManifestError` naming `where` and the field where a value cannot serve."""


@dataclass
class BundleManifest:
    """What every bundle says of itself, and its task's part in `settings`.

    `models` maps a model (`fp32`, `int8`: onnxruntime's int8, `nncf-int8`: NNCF's static int8 for OpenVINO) to
    `{"files": [...], "size_bytes": ...}` plus how it was made; `default_precision` names the model a reader that
    makes no plan (Optimum, an older tuneship) should load. tuneship's serving plans per CPU (`serving/plan.py`).
    """

    task: str
    max_length: int
    input_names: list[str]
    models: dict[str, dict]
    default_precision: str
    settings: dict
    opset: int | None = None
    gates: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    export: dict = field(default_factory=dict)  # the export's options (`ExportConfig.recipe`): how it was made
    format_version: int = FORMAT_VERSION
    location: str = field(default=MANIFEST_FILE, repr=False, compare=False)  # where it was read from, for errors
    _task_settings: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def task_settings(self, cls: type[T]) -> T:
        """`settings` read and checked by the task's `cls` (a `TaskSettings`) once; later calls return the same."""
        if cls not in self._task_settings:
            self._task_settings[cls] = cls.from_dict(self.settings, self.location)
        return self._task_settings[cls]

    def resolve_precision(self, precision: str | None) -> str:
        """`precision`, or the bundle's default, checked against what the bundle has."""
        if precision is not None and precision not in MODELS:
            raise TuneshipError(f"model must be one of {', '.join(MODELS)}, not {precision!r}")
        precision = precision or self.default_precision
        if precision not in self.models:
            raise TuneshipError(f"this bundle has no {precision} model; it has {', '.join(sorted(self.models))}")
        return precision

    def model_files(self, precision: str | None = None) -> list[str]:
        """The graph files of the model in `precision` (default: the bundle's default)."""
        return list(self.models[self.resolve_precision(precision)]["files"])

    def model_file(self, precision: str | None = None) -> str:
        """The graph file of a one-graph model (classification, question answering)."""
        files = self.model_files(precision)
        if len(files) != 1:
            raise TuneshipError(f"this {self.task} bundle has {len(files)} graphs per model, not one")
        return files[0]

    def to_dict(self) -> dict:
        values = asdict(self)
        del values["location"], values["_task_settings"]
        return values

    def save(self, folder: str | Path) -> Path:
        from .files import write_json

        return write_json(Path(folder) / MANIFEST_FILE, self.to_dict())

    def examples(self, folder: str | Path, columns: list[str]) -> list[list[str]]:
        """The example inputs saved in the bundle `folder`: per row, its values of `columns` (the task's inputs)."""
        path = Path(folder) / EXAMPLES_FILE
        if not path.is_file():
            return []
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [[str(row.get(c, "")) for c in columns] for row in rows]

    @classmethod
    def load(cls, folder: str | Path, task: str | None = None, loaded: "BundleManifest | None" = None) -> "BundleManifest":
        """Read and check `folder/tuneship.json`; with `task`, the bundle must be for that task. A caller that has
        read it already passes it as `loaded` (the serve path reads a bundle's manifest once)."""
        manifest = loaded if loaded is not None else cls._read(Path(folder))
        if task is not None and manifest.task != task:
            raise ManifestError(f"{manifest.location}: field 'task' is {manifest.task!r}; this needs a {task} bundle")
        return manifest

    @classmethod
    def _read(cls, folder: Path) -> "BundleManifest":
        path = folder / MANIFEST_FILE
        if not folder.is_dir():
            raise ManifestError(f"{folder}: no such bundle folder")
        if not path.is_file():
            from .checkpoint import WEIGHT_FILES  # here: checkpoint.py reads MANIFEST_FILE from this module

            if any((folder / name).is_file() for name in WEIGHT_FILES):
                raise ManifestError(f"{folder}: this is a checkpoint, not a bundle; pass it as --model, or export it "
                                    f"first with `tuneship export --model {folder} --output BUNDLE`")
            raise ManifestError(f"{folder}: not a tuneship bundle (no {MANIFEST_FILE}); make one with `tuneship export`")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ManifestError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(values, dict):
            raise ManifestError(f"{path}: expected a JSON object")
        version = values.get("format_version")
        if version != FORMAT_VERSION:
            raise ManifestError(f"{path}: field 'format_version' is {version!r}; this tuneship reads version "
                                f"{FORMAT_VERSION}: export the checkpoint again with this tuneship")
        known = {f.name: f for f in fields(cls) if f.init and f.name != "location"}
        required = [name for name, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in values]
        if missing:
            raise ManifestError(f"{path}: field {missing[0]!r} is missing")
        manifest = cls(**{k: v for k, v in values.items() if k in known}, location=str(path))
        manifest.check(path, folder)
        return manifest

    def check(self, path: Path, folder: Path) -> None:
        """The common part's schema: a known task, a positive max length, model files present, sane types."""
        def bad(name: str, why: str) -> ManifestError:
            return ManifestError(f"{path}: field {name!r} {why}")

        if self.task not in TASK_NAMES:
            raise bad("task", f"is {self.task!r}, not a task tuneship knows ({', '.join(TASK_NAMES)})")
        if not isinstance(self.max_length, int) or isinstance(self.max_length, bool) or self.max_length < 1:
            raise bad("max_length", f"must be a positive whole number, not {self.max_length!r}")
        if not isinstance(self.input_names, list) or not all(isinstance(n, str) for n in self.input_names):
            raise bad("input_names", f"must be a list of input names, not {self.input_names!r}")
        if not isinstance(self.settings, dict):
            raise bad("settings", f"must be an object, not {type(self.settings).__name__}")
        if not isinstance(self.models, dict) or not self.models:
            raise bad("models", "must map a precision to its files")
        for precision, info in self.models.items():
            where = f"models.{precision}"
            if precision not in MODELS:
                raise bad("models", f"has model {precision!r}; known: {', '.join(MODELS)}")
            files = info.get("files") if isinstance(info, dict) else None
            if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
                raise bad(f"{where}.files", "must be a list of graph files")
            for name in files:
                if Path(name).name != name:
                    raise bad(f"{where}.files", f"names {name!r}, which is not a file name")
                if not (folder / name).is_file() and precision != NNCF_MODEL:  # a missing NNCF file: the plan drops it
                    raise bad(f"{where}.files", f"names {name!r}, which is not a file in {folder}")
        if self.default_precision not in self.models:
            raise bad("default_precision", f"is {self.default_precision!r}, but the bundle has "
                                           f"{', '.join(sorted(self.models))}")
