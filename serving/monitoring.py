"""Prometheus metrics of the HTTP server: requests, errors, latency, batch sizes, queue depth."""

from __future__ import annotations

from typing import Callable

from .batching import BatchStats

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKEN_BUCKETS = (32, 128, 512, 1024, 2048, 4096, 8192, 16384, 32768)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerMetrics:
    """One registry per app (so several apps in one process, as in tests, never share counts)."""

    def __init__(self, queue_depth: Callable[[], int]):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no `*_created` series: they double the output and nobody graphs them
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("tuneship_requests", "HTTP requests answered", ["path", "method", "status"], registry=r)
        self.errors = Counter("tuneship_request_errors", "HTTP answers with status 400 or more", ["path", "status"],
                              registry=r)
        self.latency = Histogram("tuneship_request_duration_seconds", "time to answer an HTTP request", ["path"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.inputs = Counter("tuneship_inputs", "inputs classified", registry=r)
        self.batch_size = Histogram("tuneship_batch_size", "inputs per onnxruntime run", buckets=SIZE_BUCKETS,
                                    registry=r)
        self.batch_tokens = Histogram("tuneship_batch_padded_tokens", "padded tokens per onnxruntime run",
                                      buckets=TOKEN_BUCKETS, registry=r)
        self.batch_seconds = Histogram("tuneship_batch_duration_seconds", "time of one onnxruntime run",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Gauge("tuneship_queue_depth", "inputs waiting for a batch", registry=r)
        self.queue.set_function(queue_depth)
        self.model = Gauge("tuneship_model_precision", "the precision served (1), and why", ["precision", "reason"],
                           registry=r)
        self.plan = Gauge("tuneship_plan_candidate", "the candidate (runtime-precision) serving each length bucket (1)",
                          ["max_tokens", "candidate"], registry=r)
        self.plan_seconds = Gauge("tuneship_plan_seconds", "time to make (or read) the serving plan at start-up",
                                  registry=r)

    def observe_model(self, model) -> None:
        """The plan: what serves each length bucket, the precision, and the reason."""
        plan = getattr(model, "plan", None)
        self.model.labels(model.precision, plan.reason if plan is not None else "as loaded").set(1)
        if plan is not None:
            for bucket, candidate in plan.serving.items():
                self.plan.labels(str(bucket), candidate).set(1)
            self.plan_seconds.set(plan.seconds)

    def observe_request(self, path: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(path, method, str(status)).inc()
        self.latency.labels(path).observe(seconds)
        if status >= 400:
            self.errors.labels(path, str(status)).inc()

    def observe_batch(self, stats: BatchStats) -> None:
        self.inputs.inc(stats.size)
        self.batch_size.observe(stats.size)
        self.batch_tokens.observe(stats.padded_tokens)
        self.batch_seconds.observe(stats.seconds)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
