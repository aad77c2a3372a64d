"""Fine-tuning with `transformers.Trainer`: `TrainConfig`, `train()`, and PyTorch inference on checkpoints.

One module per task (`classification`, `question_answering`, `summarization`) holds its data, training and
checkpoint model. Importing this package is light; torch and transformers load when `train` or a
checkpoint model is first used.
"""

from .config import TrainConfig

__all__ = ["TrainConfig", "train", "TrainResult", "TorchClassifier", "DistillConfig", "distill"]


def __getattr__(name: str):
    if name == "train":
        from .training import train

        return train
    if name == "TrainResult":
        from .runs import TrainResult

        return TrainResult
    if name in ("distill", "DistillConfig"):
        from . import distillation

        return getattr(distillation, name)
    if name == "TorchClassifier":
        from .classification import TorchClassifier

        return TorchClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
