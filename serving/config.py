"""`ServeConfig`: every option of the HTTP server, defined once for the CLI and Python."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TuneshipError
from ..options import check_choices, option
from .engines import RUNTIMES
from .plan import PRECISIONS, check_request

API_KEY_VARIABLE = "TUNESHIP_API_KEY"
ENGINES = ("uvicorn", "ray")


@dataclass
class ServeConfig:
    """Options of `serve()` and `tuneship serve`; see `tuneship serve --help` for each one.

    Example:
        >>> config = ServeConfig(bundle="runs/relevance-onnx", port=8080)
        >>> config.max_batch_tokens, config.max_wait_ms
        (16384, 5.0)
    """

    bundle: str = option(None, "bundle folder written by `tuneship export`", "model", metavar="DIR", required=True)
    precision: str = option("auto", "auto plans on load: per input length, the fastest of the bundle's models and "
                            "runtimes that passes its check against the export's golden outputs on this CPU; fp32, "
                            "int8 or bf16 narrows the plan to that precision", "model", choices=("auto", *PRECISIONS))
    runtime: str = option("auto", "onnxruntime or openvino (the `openvino` extra) narrows the plan to that runtime; "
                          "with --precision, forces one candidate", "model", choices=("auto", *RUNTIMES))
    threads: int | None = option(None, "onnxruntime threads per worker (default: available cores / workers)", "model")

    host: str = option("127.0.0.1", "interface to listen on (0.0.0.0 for all)", "server")
    port: int = option(8000, "TCP port", "server")
    workers: int = option(1, "server processes, each with its own model and batcher", "server")
    log_level: str = option("info", "uvicorn log level", "server",
                            choices=("critical", "error", "warning", "info", "debug"))
    access_log: bool = option(False, "log every request (costs throughput)", "server")

    engine: str = option("uvicorn", "uvicorn (this machine) or ray (Ray Serve replicas, on a local or existing Ray "
                         "cluster; needs the `ray` extra)", "past one machine", choices=ENGINES)
    replicas: int = option(1, "--engine ray: replicas, each with its own model and batcher", "past one machine")
    autoscale: str | None = option(None, "--engine ray: autoscale between MIN:MAX replicas instead of --replicas",
                                   "past one machine", metavar="MIN:MAX")
    address: str | None = option(None, "--engine ray: the Ray cluster to join (auto, ray://host:10001); default: a "
                                 "local one", "past one machine")

    max_batch_tokens: int = option(16384, "padded tokens (inputs x longest input) per onnxruntime run", "batching")
    max_batch_size: int = option(64, "inputs per onnxruntime run", "batching")
    max_wait_ms: float = option(5.0, "under concurrent load, how long an input may wait for a batch to fill",
                                "batching")
    max_queue: int = option(1024, "queued inputs; beyond this the server answers 429 with Retry-After", "batching")

    max_request_inputs: int = option(256, "inputs in one request; beyond this the server answers 413", "limits")
    max_body_bytes: int = option(1_048_576, "request body size; beyond this the server answers 413", "limits")
    max_request_tokens: int = option(32768, "tokens of model work in one request (classification: its inputs after "
                                     "truncation; QA: every window of every context; summarization: the documents "
                                     "as read plus beams x new tokens); beyond this 413 (one request cannot hold the "
                                     "model for long)", "limits")
    body_timeout_s: float = option(30.0, "seconds a client may take to send its request body; beyond this 408", "limits")
    header_timeout_s: float = option(10.0, "seconds a client may take to send a request's headers; beyond this 408 and "
                                     "the connection is closed", "limits")
    max_connections: int = option(512, "open connections; one past this gets 503 and is closed", "limits")
    keep_alive_s: float = option(5.0, "seconds an idle keep-alive connection stays open", "limits")

    def __post_init__(self) -> None:
        check_choices(self)
        positive = ("port", "workers", "max_batch_tokens", "max_batch_size", "max_queue", "max_request_inputs",
                    "max_body_bytes", "max_connections", "max_request_tokens")
        for name in positive:
            if getattr(self, name) < 1:
                raise TuneshipError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise TuneshipError(f"threads must be at least 1, not {self.threads}")
        for name in ("body_timeout_s", "header_timeout_s", "keep_alive_s"):
            if getattr(self, name) <= 0:
                raise TuneshipError(f"{name} must be positive, not {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise TuneshipError(f"max_wait_ms must be zero or more, not {self.max_wait_ms}")
        if self.port > 65535:
            raise TuneshipError(f"port must be at most 65535, not {self.port}")
        check_request(self.precision, self.runtime)
        if self.engine not in ENGINES:
            raise TuneshipError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.max_request_inputs > self.max_queue:
            raise TuneshipError(
                f"max_request_inputs ({self.max_request_inputs}) must not exceed max_queue ({self.max_queue}): "
                "such a request could never be queued"
            )
