"""`tuneship bench`: PyTorch, ONNX fp32, ONNX int8 (and OpenVINO) side by side on the user's model and machine."""

from .benchmark import BenchResult, benchmark
from .config import BACKENDS, BenchConfig

__all__ = ["BACKENDS", "BenchConfig", "BenchResult", "benchmark"]
