"""The code's shape, checked from its source: one module per task in each stage, no task switches in the drivers,
no import circles inside a stage, no private names imported across modules, and a torch-free `serving`."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tuneship import tasks

REPO = Path(__file__).resolve().parents[1]
# Installed names of the repo's folders (pyproject.toml's package-dir).
PACKAGES = {"tuneship": REPO / "tuneship", "tuneship.trainer": REPO / "trainer", "tuneship.export": REPO / "export",
            "tuneship.serving": REPO / "serving", "tuneship.bench": REPO / "bench", "tuneship.hub": REPO / "hub"}
STAGES = {"trainer": "tuneship.trainer", "export": "tuneship.export", "serving": "tuneship.serving",
          "serving.api": "tuneship.serving.api", "bench": "tuneship.bench"}
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
        for stage, package in STAGES.items():
            if not task.supports({"serving.api": "serve", "trainer": "train", "serving": "evaluate"}.get(stage, stage)):
                continue
            assert f"{package}.{task.module}" in modules(), (task.name, stage)
        import gradio_app

        assert callable(getattr(gradio_app, f"build_{task.module}_demo")), task.name


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
    code = ("import sys, json, tuneship.serving, tuneship.serving.api, tuneship.serving.offline;"
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
