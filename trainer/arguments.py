"""`transformers.TrainingArguments` for a run: tuneship's options, then any field the user set in `training_args`.

`TrainConfig` fields that are TrainingArguments under another name carry it in their metadata
(`training_arg`), so they are mapped in one loop; every other TrainingArguments field comes from
`training_args` (`--training-arg KEY=VALUE`, or a `training_args:` mapping in the config file), converted
and checked by transformers' own `HfArgumentParser` and `TrainingArguments`.
"""

from __future__ import annotations

import dataclasses
import difflib

from ..errors import TuneshipError, require
from ..log import get_logger
from .config import TrainConfig

logger = get_logger(__name__)
# Set by tuneship from its own options: where checkpoints go (`--output`) and whether to replace them.
RESERVED = ("output_dir", "overwrite_output_dir")


# TrainingArguments fields that a TrainConfig option decides, though not one to one.
DERIVED = {"metric_for_best_model": "metric_for_best_model", "bf16": "mixed_precision", "fp16": "mixed_precision"}


def mapped_options() -> dict[str, str]:
    """TrainingArguments field -> the `TrainConfig` field that sets it (as it is)."""
    return {f.metadata["training_arg"]: f.name for f in dataclasses.fields(TrainConfig) if "training_arg" in f.metadata}


def _flag(name: str) -> str:
    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    return field.metadata.get("flag", "--" + name.replace("_", "-"))


def check_training_args(values: dict) -> dict:
    """`values` (TrainingArguments fields; strings from the command line) converted to their types by transformers'
    `HfArgumentParser`; a clear error for an unknown field, a bad value, or a field tuneship sets itself."""
    transformers = require("transformers", "train")
    known = {f.name for f in dataclasses.fields(transformers.TrainingArguments) if f.init}
    mapped = {**mapped_options(), **DERIVED}
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TuneshipError(f"training_args: {key!r} is not a field of transformers.TrainingArguments{hint}")
        if key in RESERVED:
            raise TuneshipError(f"training_args: {key!r} is set by tuneship from --output")
        if key in mapped:
            raise TuneshipError(f"training_args: {key!r} is a tuneship option: set it with {_flag(mapped[key])} "
                                f"(or `{mapped[key]}:` in the config file)")
    strings = {key: value for key, value in values.items() if isinstance(value, str)}
    parser = transformers.HfArgumentParser(transformers.TrainingArguments, exit_on_error=False)
    argv = [item for key, value in strings.items() for item in (f"--{key}", value)]
    try:
        parsed, _ = parser.parse_known_args(["--output_dir", "unused", *argv])
    except Exception as error:  # noqa: BLE001 - argparse's ArgumentError names the flag and the bad value
        raise TuneshipError(f"training_args: {error}") from None
    return {**values, **{key: getattr(parsed, key) for key in strings}}


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def mixed_precision(choice: str) -> dict[str, bool]:
    """`bf16`/`fp16` for TrainingArguments: on a GPU only ('auto' picks bf16 where supported)."""
    import torch

    if choice == "no" or not has_gpu():
        if choice in ("bf16", "fp16"):
            logger.info(f"note: --mixed-precision {choice} needs a GPU; training in fp32")
        return {}
    if choice == "auto":
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {choice: True}


def training_arguments(config: TrainConfig, best_metric: str, kind: str = "TrainingArguments", **task_values):
    """`transformers.<kind>` (TrainingArguments or Seq2SeqTrainingArguments) for a run: evaluate and save every epoch,
    keep the best epoch by `best_metric` (with `keep="best"`; else the last), then the task's own values, then the
    user's `training_args` on top."""
    transformers = require("transformers", "train")
    values = {
        "output_dir": str(config.checkpoints_dir),
        "overwrite_output_dir": config.overwrite,
        **{arg: getattr(config, name) for arg, name in mapped_options().items()},
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "logging_strategy": "steps",
        "load_best_model_at_end": config.keep == "best",
        "metric_for_best_model": best_metric,
        "greater_is_better": best_metric != "loss",
        "report_to": "none",
        # Without a GPU, `use_cpu` is what makes torchrun/accelerate launches data-parallel over gloo.
        "use_cpu": not has_gpu(),
        "dataloader_pin_memory": has_gpu(),
        **mixed_precision(config.mixed_precision),
        **task_values,
        **check_training_args(config.training_args),
    }
    try:
        return getattr(transformers, kind)(**values)
    except (ValueError, TypeError) as error:
        raise TuneshipError(f"the training arguments do not fit together: {error}") from None
