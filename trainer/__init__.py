"""Fine-tuning with `transformers.Trainer`: `TrainConfig`, `train()`, and checkpoint inference.

Importing this package is light; torch and transformers load when `train` or `TorchClassifier`
is first used.
"""

from .config import TrainConfig

__all__ = ["TrainConfig", "train", "TrainResult", "TorchClassifier"]


def __getattr__(name: str):
    if name in ("train", "TrainResult"):
        from . import training

        return getattr(training, name)
    if name == "TorchClassifier":
        from . import inference

        return getattr(inference, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
