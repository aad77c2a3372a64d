"""Config options, defined once: the dataclass fields every stage's config declares with `option` (help text,
group, flag, choices), read by the CLI (`cli.add_config_arguments`) and checked by the configs themselves
(`check_choices` in their `__post_init__`), so that a config built in Python is checked as the command line is."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from .errors import ConfigError, TuneshipError


def option(default: Any, help: str, group: str, **extra: Any) -> Any:
    """A config dataclass field with what `add_config_arguments` needs: help text, group, flag, choices, and
    `type` where the command line gives a string that `__post_init__` parses (e.g. "32,128" for a tuple)."""
    return dataclasses.field(default=default, metadata={"help": help, "group": group, **extra})


class TaskOptions:
    """The base of a task's options (a dataclass in the task's module, e.g. `ClassificationOptions`), which a stage's
    config inherits: each checks its own values in `__post_init__` and then calls `super().__post_init__()`, so a
    config made of several tasks' options checks them all."""

    def __post_init__(self) -> None:
        pass


def check_choices(config: Any) -> None:
    """Every field of `config` declared with `choices` holds one of them (None passes where it is the default)."""
    for field in dataclasses.fields(config):
        choices = field.metadata.get("choices")
        value = getattr(config, field.name)
        if choices is None or value in choices or (value is None and field.default is None):
            continue
        raise ConfigError(f"{field.name} must be one of {', '.join(map(str, choices))}, not {value!r}")


def check_task_options(config: Any, task: str) -> None:
    """No field declared for another task (`option(..., task=...)`) is set away from its default: a QA option in a
    classification run would be silently ignored."""
    for field in dataclasses.fields(config):
        owner = field.metadata.get("task")
        if owner is None or owner == task or getattr(config, field.name) == field.default:
            continue
        flag = field.metadata.get("flag", "--" + field.name.replace("_", "-"))
        raise ConfigError(f"{field.name} ({flag}) is a {owner} option; this run's task is {task}: leave it out, or "
                          f"pass --task {owner}")


def key_values(items: dict | Sequence[str] | None, flag: str) -> dict[str, Any]:
    """`KEY=VALUE` strings (a repeatable flag) as a mapping; a mapping (from a config file) passes through."""
    if items is None:
        return {}
    if isinstance(items, dict):
        return {str(key).replace("-", "_"): value for key, value in items.items()}
    if isinstance(items, str):
        items = [items]
    result = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise TuneshipError(f"{flag} {item!r}: give KEY=VALUE")
        result[key.strip().replace("-", "_")] = value.strip()
    return result
