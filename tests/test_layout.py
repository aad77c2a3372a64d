"""The code's shape, checked from its source: one module per task in each stage, no task switches in the drivers,
no import circles inside a stage, no private names imported across modules, and a torch-free `serving`."""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tuneship import tasks
from tuneship.contract import STAGE_PROTOCOLS

REPO = Path(__file__).resolve().parents[1]
# Installed names of the repo's folders (pyproject.toml's package-dir).
PACKAGES = {"tuneship": REPO / "tuneship", "tuneship.trainer": REPO / "trainer", "tuneship.export": REPO / "export",
            "tuneship.serving": REPO / "serving", "tuneship.bench": REPO / "bench", "tuneship.hub": REPO / "hub"}
# The registry's stage of each stage package (its first, for serving: evaluate), from `tasks.STAGES`.
STAGE_OF_PACKAGE: dict[str, str] = {}
for _stage, _package in tasks.STAGES.items():
    if _package is not None:
        STAGE_OF_PACKAGE.setdefault(_package, _stage)
TASK_SWITCH = re.compile(r"(==|!=) ?(CLASSIFICATION|QUESTION_ANSWERING|SUMMARIZATION)\b|\btask ?(==|!=)|"
                         r"\b(CLASSIFICATION|QUESTION_ANSWERING|SUMMARIZATION) ?(==|!=)")


def modules() -> dict[str, Path]:
    """Every module of the installed package, by dotted name (sub-packages of the stage folders included)."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            if package == "tuneship" and path.relative_to(folder).parts[0] not in ("data", "metrics") \
                    and len(path.relative_to(folder).parts) > 1:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def imports_of(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names) for every `import` and `from ... import` in the file, at any depth."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
    return found


def test_every_task_has_a_module_with_the_same_name_in_every_stage():
    for task in tasks.TASKS.values():
        for package, stage in STAGE_OF_PACKAGE.items():
            if not task.supports(stage):
                continue
            assert f"tuneship.{package}.{task.module}" in modules(), (task.name, stage)
        import gradio_app

        assert callable(getattr(gradio_app, f"build_{task.module}_demo")), task.name


def misfits(module, protocol) -> list[str]:
    """What `module` lacks of `protocol`: a missing member, or a function that does not take the Protocol's
    required positional parameters (as many, any names) and its optional ones (with a default: by name, or at
    their place where the Protocol makes them positional-only)."""
    members = [n for n in [*vars(protocol), *getattr(protocol, "__annotations__", {})] if not n.startswith("_")]
    found = []
    for name in dict.fromkeys(members):
        if not hasattr(module, name):
            found.append(f"{module.__name__} has no {name}")
            continue
        wanted = getattr(protocol, name, None)
        if not inspect.isfunction(wanted):
            continue
        expected = list(inspect.signature(wanted).parameters.values())[1:]  # without self
        given = inspect.signature(getattr(module, name)).parameters
        required = [p for p in given.values() if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
        if len(required) != sum(p.default is p.empty for p in expected):
            found.append(f"{module.__name__}.{name} takes {len(required)} required parameters, "
                         f"the Protocol {sum(p.default is p.empty for p in expected)}")
        by_position = list(given.values())
        for i, p in enumerate(expected):
            if p.default is p.empty:
                continue
            if p.kind is p.POSITIONAL_ONLY:  # any name, at its place
                ok = i < len(by_position) and by_position[i].default is not p.empty
            else:
                ok = p.name in given and given[p.name].default is not p.empty
            if not ok:
                found.append(f"{module.__name__}.{name} has no optional parameter {p.name}")
    return found


@pytest.mark.parametrize("package", sorted(STAGE_PROTOCOLS))
def test_every_task_module_fits_its_stage_protocol(package):
    protocol = STAGE_PROTOCOLS[package]
    for task in tasks.TASKS.values():
        if not task.supports(STAGE_OF_PACKAGE[package]):
            assert f"tuneship.{package}.{task.module}" not in modules(), (task.name, "unsupported but present")
            continue
        module = task.stage(package)
        assert isinstance(module, protocol), (task.name, package)
        if package == "trainer":  # the task's Run fills in every hook of the one skeleton
            from tuneship.trainer.training import TrainingRun

            assert issubclass(module.Run, TrainingRun) and not module.Run.__abstractmethods__, task.name
            assert (module.Run.rows is not TrainingRun.rows) == task.supports("refit"), task.name
        assert misfits(module, protocol) == []


def test_the_protocol_check_finds_a_module_that_does_not_fit():
    from types import SimpleNamespace

    from tuneship.contract import ServingApiStage

    def create_app(model):  # a required parameter short, the optional api_key missing
        return model

    broken = SimpleNamespace(__name__="broken", ROUTE="/v1/x", create_app=create_app)
    assert misfits(broken, ServingApiStage) == ["broken.create_app takes 1 required parameters, the Protocol 2",
                                                "broken.create_app has no optional parameter api_key"]
    assert misfits(SimpleNamespace(__name__="empty"), ServingApiStage) == ["empty has no create_app",
                                                                           "empty has no ROUTE"]


def test_no_task_switch_outside_the_task_modules():
    task_modules = {t.module for t in tasks.TASKS.values()}
    offenders = []
    for name, path in [*modules().items(), ("gradio_app", REPO / "gradio_app.py")]:
        if name.rsplit(".", 1)[-1] in task_modules:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if TASK_SWITCH.search(line) and "manifest.task != task" not in line:  # the manifest's own check
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def test_each_task_option_is_declared_in_its_task_options_module():
    """A training option that only one task reads lives in `trainer/task_options/<task module>.py`, and that module
    declares only its own task's options."""
    import dataclasses

    from tuneship.trainer import TrainConfig

    misplaced = []
    for cls in TrainConfig.__mro__:
        for field in vars(cls).get("__dataclass_fields__", {}).values():
            if field.name not in vars(cls).get("__annotations__", {}):
                continue  # inherited: checked in the class that declares it
            owner = field.metadata.get("task")
            module = cls.__module__.rsplit(".", 1)[-1]
            if cls.__module__.startswith("tuneship.trainer.task_options."):
                if owner is None or tasks.get(owner).module != module:
                    misplaced.append(f"{cls.__name__}.{field.name}: task {owner!r}")
            elif owner is not None and cls.__module__ == "tuneship.trainer.config":
                misplaced.append(f"{cls.__name__}.{field.name}: a {owner} option declared in trainer/config.py")
    assert misplaced == []
    task_fields = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("task")}
    assert {"doc_stride", "num_beams", "swap_pairs"} <= task_fields


def test_no_import_circle_inside_a_stage():
    graph = {name: {target for target, _ in imports_of(name, path)} for name, path in modules().items()}
    for package in {"tuneship.trainer", "tuneship.export", "tuneship.serving", "tuneship.bench", "tuneship.hub"}:
        inside = {name for name in graph if name.startswith(package + ".")}
        edges = {name: {t for t in graph[name] if t in inside and t != name} for name in inside}
        visiting, done = set(), set()

        def visit(node, trail):
            assert node not in visiting, f"import circle: {' -> '.join(trail + [node])}"
            if node in done:
                return
            visiting.add(node)
            for nxt in edges[node]:
                visit(nxt, trail + [node])
            visiting.discard(node)
            done.add(node)

        for node in inside:
            visit(node, [])


def test_no_private_name_is_imported_from_another_module():
    found = [(name, target, imported) for name, path in modules().items() for target, names in imports_of(name, path)
             for imported in names if imported.startswith("_") and not imported.startswith("__")
             and target.startswith("tuneship")]
    assert found == []


def test_serving_imports_nothing_from_the_trainer_and_loads_no_torch():
    for name, path in modules().items():
        if name.startswith("tuneship.serving"):
            targets = [target for target, _ in imports_of(name, path)]
            assert not any(t.startswith(("tuneship.trainer", "tuneship.export")) for t in targets), name
    code = ("import sys, json, tuneship.serving, tuneship.serving.api, tuneship.serving.offline, tuneship.serving.ray_data, "
            "tuneship.serving.ray_serve;"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('torch', 'transformers', 'pandas', "
            "'tuneship.trainer', 'tuneship.export')))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("stage", ["trainer", "export", "serving", "bench"])
def test_drivers_find_the_task_in_the_registry(stage):
    """A task unknown to the registry is refused with the names it knows."""
    from tuneship.errors import TuneshipError

    with pytest.raises(TuneshipError, match="unknown task 'image-generation'; tuneship knows text-classification"):
        tasks.get("image-generation").stage(stage)


def layout_tree() -> set[str]:
    """The files docs/layout.md's tree names, as paths from the repository root (`a.py, b.py   text` names two)."""
    text = (REPO / "docs" / "layout.md").read_text(encoding="utf-8")
    tree = text.split("```\n", 2)[1]
    named, folders = set(), []  # folders: (indent, path) of the folders open above the current line
    for line in tree.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        found = re.match(r"([\w.]+\.\w+|[\w.]+/|Makefile)((?:, [\w.]+\.\w+)*)(?:\s|$)", line.strip())
        if not found:
            continue  # a description's second line
        entry = found.group(0).strip()
        folders = [(i, f) for i, f in folders if i < indent]
        base = folders[-1][1] if folders else ""
        for name in entry.split(", "):
            named.add(base + name)
            if name.endswith("/"):
                folders.append((indent, base + name))
    return named


def test_the_layout_doc_names_every_module_and_only_modules_that_exist():
    """docs/layout.md's tree cannot drift: every module of the packages and every benchmark script is in it, and
    every file it names exists."""
    named = layout_tree()
    on_disk = {path.relative_to(REPO).as_posix() for path in modules().values()}
    on_disk |= {path.relative_to(REPO).as_posix() for path in (REPO / "benchmarks").glob("*.py")}
    assert sorted(on_disk - named) == [], "modules missing from docs/layout.md"
    missing = sorted(name for name in named if not (REPO / name).exists() and name not in ("Makefile", "pyproject.toml"))
    assert missing == [], "docs/layout.md names files that do not exist"
