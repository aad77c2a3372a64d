"""The HTTP API (needs the `serve` extra: FastAPI, uvicorn): one app per task, built around a loaded model.

`create_app(model, config)` builds the app of the model's task (`api/<task>.py`); `load_app(config)` loads
`config.bundle` first. The shared parts (errors, probes, metrics, the guard) are in `api/app.py`.
"""

from __future__ import annotations

from fastapi import FastAPI

from ... import tasks
from ...bundle import BundleManifest
from ...log import get_logger
from ..config import ServeConfig
from ..session import SERVER_SPINNING

logger = get_logger(__name__)


def create_app(model, config: ServeConfig, api_key: str | None = None) -> FastAPI:
    """The FastAPI app serving `model` (a bundle's Predictor, QuestionAnswerer or Summarizer).
    `api_key` defaults to the `TUNESHIP_API_KEY` environment variable."""
    return tasks.get(model.task).stage("serving.api").create_app(model, config, api_key)


def load_app(config: ServeConfig, threads: int | None = None, manifest: BundleManifest | None = None) -> FastAPI:
    """Load `config.bundle` (its threads spinning within a run only, so that they leave the event loop its CPU)
    and build its app. `manifest`: the bundle's, where the caller has read it already."""
    manifest = BundleManifest.load(config.bundle, loaded=manifest)
    task = tasks.get(manifest.task)
    task.check("serve")
    model = task.stage("serving").from_bundle(config.bundle, config.precision, threads or config.threads,
                                              spinning=SERVER_SPINNING, runtime=config.runtime,
                                              batch_size=config.max_batch_size, manifest=manifest)
    for line in model.plan.describe():
        logger.info(line)
    return create_app(model, config)


__all__ = ["create_app", "load_app"]
