"""`SummarizationOptions`: the options only summarization reads, which `TrainConfig` inherits (a run of another
task refuses them by name)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError
from ...options import TaskOptions, option
from ...tasks import SUMMARIZATION


@dataclass
class SummarizationOptions(TaskOptions):
    """The options only summarization reads."""

    max_target_length: int = option(64, "summarization: longest summary, in tokens (training labels and generation)",
                                    "data", task=SUMMARIZATION)
    num_beams: int = option(4, "summarization: beams of the beam search (1: greedy); saved in generation_config.json",
                            "data", task=SUMMARIZATION)
    no_repeat_ngram_size: int = option(3, "summarization: never repeat an n-gram of this size in a summary (0: allow)",
                                       "data", task=SUMMARIZATION)

    def __post_init__(self) -> None:
        if self.max_target_length < 1 or self.num_beams < 1 or self.no_repeat_ngram_size < 0:
            raise ConfigError(f"max_target_length and num_beams must be positive and no_repeat_ngram_size not "
                              f"negative, got {self.max_target_length}, {self.num_beams}, {self.no_repeat_ngram_size}")
        super().__post_init__()
