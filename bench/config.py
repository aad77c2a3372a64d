"""`BenchConfig`: every option of a benchmark run, defined once for the CLI, files and Python."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import TuneshipError
from ..options import option

# Every backend `tuneship bench` knows, in report order. PyTorch eager fp32 is the baseline of every speed-up.
BACKENDS = ("pytorch-fp32", "pytorch-int8", "onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-bf16", "openvino-int8",
            "bundle-default")
BASELINE = "pytorch-fp32"


def _int_list(value: str | Sequence[int], name: str) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        numbers = tuple(int(str(item).strip()) for item in items if str(item).strip())
    except ValueError:
        raise TuneshipError(f"{name} must be whole numbers separated by commas, like 32,128,256; got {value!r}") from None
    if not numbers or min(numbers) < 1:
        raise TuneshipError(f"{name} must list at least one number, all positive; got {value!r}")
    return tuple(sorted(set(numbers)))


@dataclass
class BenchConfig:
    """Options of `benchmark()` and `tuneship bench`; see `tuneship bench --help` for each one.

    Example:
        >>> config = BenchConfig(checkpoint="runs/mrpc", bundle="runs/mrpc-onnx", seq_lens="32,128")
        >>> config.seq_lens, config.batch_sizes
        ((32, 128), (1, 8, 32))
    """

    checkpoint: str = option(None, "PyTorch checkpoint folder (the one the bundle was exported from)", "input and output",
                             flag="--model",
                             metavar="CKPT", required=True)
    bundle: str = option(None, "bundle folder written by `tuneship export`", "input and output", metavar="BUNDLE",
                         required=True)
    data: str | None = option(None, "labelled file (CSV, TSV, JSON, JSONL, Parquet) to score every backend on: "
                              "accuracy, F1 and label agreement with PyTorch", "input and output", metavar="FILE")
    output: str = option("runs/bench", "folder for bench.json, bench.md and bench.png", "input and output", metavar="DIR")

    seq_lens: Any = option("32,128,256", "input lengths in tokens (each input is cut to exactly this many)", "shapes",
                           type=str, metavar="N,N")
    batch_sizes: Any = option("1,8,32", "batch sizes; latency percentiles are reported for every one, throughput too",
                              "shapes", type=str, metavar="N,N")
    max_rows: int = option(1000, "most rows of --data scored per backend", "shapes")

    backends: Any = option(",".join(BACKENDS), "backends to run, comma-separated; pytorch-fp32 (the baseline) always "
                           "runs; openvino-* need the `openvino` package and are skipped without it unless named; "
                           "openvino-bf16 runs only on CPUs with native bf16; openvino-int8 runs the bundle's NNCF static int8 model; "
                           "bundle-default is the bundle served as `tuneship serve` would serve it here (its plan)", "runtime", type=str, metavar="NAME,NAME")
    threads: int = option(2, "intra-op threads for every backend (the same for all)", "runtime")
    duration: float = option(2.0, "seconds of timing per backend and shape, split between end-to-end and model-only "
                             "(each gets at least `min_calls` calls)", "runtime")
    min_calls: int = option(5, "fewest timed calls per backend, shape and mode", "runtime")

    def __post_init__(self) -> None:
        self.seq_lens = _int_list(self.seq_lens, "seq_lens")
        self.batch_sizes = _int_list(self.batch_sizes, "batch_sizes")
        names = self.backends.split(",") if isinstance(self.backends, str) else list(self.backends)
        names = [name.strip() for name in names if name.strip()]
        unknown = [name for name in names if name not in BACKENDS]
        if unknown:
            raise TuneshipError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
        self.backends = tuple(name for name in BACKENDS if name in names or name == BASELINE)
        if min(self.seq_lens) < 8:
            raise TuneshipError(f"seq_lens must be at least 8 tokens; got {min(self.seq_lens)}")
        for name in ("threads", "min_calls", "max_rows"):
            if getattr(self, name) < 1:
                raise TuneshipError(f"{name} must be at least 1; got {getattr(self, name)}")
        if not self.duration > 0:
            raise TuneshipError(f"duration must be positive (seconds); got {self.duration}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
