"""The `tuneship` command: collects the subcommands that each package defines in its own `cli.py`.

A package's CLI module is imported only to declare its flags; heavy libraries (torch,
transformers) are imported inside the command's `run`, so `tuneship serve` never loads torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .errors import TuneshipError
from .options import key_values

# Each module exposes `register(subparsers)`. Later packages append theirs here.
COMMAND_MODULES = ("tuneship.trainer.cli", "tuneship.export.cli", "tuneship.serving.cli", "tuneship.bench.cli",
                   "tuneship.hub.cli")


def _field_type(field: dataclasses.Field, hints: dict) -> type:
    kind = hints[field.name]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    return kind


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type, skip: Sequence[str] = ()) -> None:
    """Declare one flag per dataclass field, from its type and `metadata` (help, flag, choices).

    Flags default to `argparse.SUPPRESS`, so `config_from_args` can tell what was given on the
    command line from what should come from a `--config` file or the dataclass default.
    """
    hints = typing.get_type_hints(config_cls)
    groups: dict[str, argparse._ArgumentGroup] = {}
    # every task's options first, then each task's own (declared in its module, inherited first)
    for field in sorted(dataclasses.fields(config_cls), key=lambda field: field.metadata.get("task") is not None):
        if field.name in skip or not field.init or field.metadata.get("skip_flag"):
            continue
        meta = field.metadata
        group_name = meta.get("group", "options")
        group = groups.setdefault(group_name, parser.add_argument_group(group_name))
        flag = meta.get("flag", "--" + field.name.replace("_", "-"))
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = meta.get("help", "")
        kind = meta.get("type") or _field_type(field, hints)
        if meta.get("action") == "append":
            group.add_argument(flag, dest=field.name, action="append", type=str, default=argparse.SUPPRESS,
                               metavar=meta.get("metavar"), help=help_text)
            continue
        if kind is bool:  # on by default: --flag and --no-flag
            action = argparse.BooleanOptionalAction if default else "store_true"
            group.add_argument(flag, dest=field.name, action=action, default=argparse.SUPPRESS, help=help_text)
            continue
        if default is not None:
            help_text += f" (default: {default})"
        group.add_argument(
            flag,
            dest=field.name,
            type=kind,
            choices=meta.get("choices"),
            default=argparse.SUPPRESS,
            required=meta.get("required", False),
            metavar=meta.get("metavar", None if meta.get("choices") else flag.lstrip("-").replace("-", "_").upper()),
            help=help_text,
        )


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a run configuration from YAML or JSON (a mapping of field names to values)."""
    path = Path(path)
    if not path.is_file():
        raise TuneshipError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except Exception as error:  # noqa: BLE001 - any parse error is the user's file
        raise TuneshipError(f"config file {path} could not be parsed: {error}") from error
    if not isinstance(values, dict):
        raise TuneshipError(f"config file {path} must hold a mapping of option names to values")
    return {str(key).replace("-", "_"): value for key, value in values.items()}


def config_from_args(config_cls: type, args: argparse.Namespace, config_file: str | None = None):
    """Build `config_cls` from a config file (if any) overridden by the flags given."""
    names = {field.name for field in dataclasses.fields(config_cls)}
    values = load_config_file(config_file) if config_file else {}
    unknown = sorted(set(values) - names)
    if unknown:
        hint = ("; any other transformers.TrainingArguments field goes under `training_args:`" if "training_args" in names
                else "")
        raise TuneshipError(f"config file {config_file}: unknown option(s) {', '.join(unknown)}{hint}")
    merge_keys = {field.name: field.metadata.get("merge_key") for field in dataclasses.fields(config_cls)}
    for name, value in vars(args).items():
        if name not in names:
            continue
        if isinstance(value, list) and isinstance(values.get(name), dict):  # a repeatable KEY=VALUE flag adds to the
            value = {**key_values(values[name], name), **key_values(value, name)}  # file's mapping, key by key
        elif merge_keys[name] and isinstance(values.get(name), dict):  # a flag sets one key of the file's mapping
            value = {**values[name], merge_keys[name]: value}
        values[name] = value
    return config_cls(**values)


def print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False))


# Flags of earlier releases, per subcommand, under their new names: still taken for one release (0.x), with a
# deprecation note, and never listed in the help (one spelling per concept).
RENAMED_FLAGS = {
    "bench": {"--checkpoint": "--model"},
    "export": {"--validation-data": "--validation", "--calibration-data": "--calibration"},
    "predict": {"--input": "--data"},
    "train": {"--model": "--base-model"},  # --model is the checkpoint a command reads (export, predict, evaluate, bench)
}


def renamed_flags(argv: Sequence[str], names: dict[str, str], prog: str) -> list[str]:
    """`argv` with the old spellings in `names` replaced by the new ones, a deprecation note for each on stderr."""
    result = []
    for arg in argv:
        flag, equals, value = arg.partition("=")
        if flag in names:
            print(f"{prog}: {flag} is deprecated and will be removed; use {names[flag]}", file=sys.stderr)
            arg = names[flag] + equals + value
        result.append(arg)
    return result


class Parser(argparse.ArgumentParser):
    """argparse with short errors: the error, "did you mean" for a mistyped choice, command or flag (and the new name
    of a renamed flag), and where the help is, instead of the command's whole usage (its subcommands are `Parser`s
    too)."""

    def error(self, message: str):
        hint = ""
        mistyped = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if mistyped:
            close = difflib.get_close_matches(mistyped.group(1), re.findall(r"'([^']*)'", mistyped.group(2)), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        unknown = re.search(r"unrecognized arguments: (.*)", message)
        if unknown:
            hint = "".join(self._flag_hint(flag.split("=")[0]) for flag in unknown.group(1).split() if flag.startswith("--"))
        self.exit(2, f"{self.prog}: error: {message}{hint}\n(`{self.prog} --help` lists every option)\n")

    def _flag_hint(self, flag: str) -> str:
        known = {s for action in self._actions for s in action.option_strings}
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):  # the top parser: every subcommand's flags
                known |= {s for sub in action.choices.values() for a in sub._actions for s in a.option_strings}
        close = difflib.get_close_matches(flag, sorted(known), n=1)
        return f"; did you mean {close[0]}?" if close else ""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tuneship",
        description="Fine-tune a Hugging Face model (text classification of one text or a pair, extractive question "
        "answering, summarization), export it to quantized ONNX, and serve it on CPUs.",
    )
    parser.add_argument("--version", action="version", version=f"tuneship {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser().parse_args(renamed_flags(argv, RENAMED_FLAGS.get(command, {}), f"tuneship {command}"))
    try:
        return args.run(args) or 0
    except TuneshipError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
