"""`serve()`: the HTTP API on uvicorn, in one process or several workers."""

from __future__ import annotations

import dataclasses
import json
import os

from ..bundle import BundleManifest
from ..errors import TuneshipError, require
from ..log import get_logger
from .config import ServeConfig
from .session import available_cores

logger = get_logger(__name__)
WORKER_CONFIG_VARIABLE = "TUNESHIP_SERVE_CONFIG"


def serve(config: ServeConfig) -> None:
    """Run the API until interrupted. With `workers > 1`, each worker process loads its own model and
    gets `available cores / workers` onnxruntime threads (unless `threads` is given)."""
    if config.engine == "ray":
        from .ray_serve import serve_on_ray

        serve_on_ray(config, config.replicas, config.autoscale, config.address)
        return
    uvicorn = require("uvicorn", "serve")
    require("fastapi", "serve")
    from .api import load_app

    threads = config.threads or max(1, available_cores() // config.workers)
    manifest = BundleManifest.load(config.bundle)  # a clear error before any port is bound
    options = dict(host=config.host, port=config.port, log_level=config.log_level, access_log=config.access_log,
                   loop="auto", **connection_options(config))
    logger.info(f"serving {config.bundle} ({manifest.task}) on http://{config.host}:{config.port} with "
                f"{config.workers} worker(s) x {threads} thread(s); API docs at /docs")
    if config.workers == 1:
        uvicorn.run(load_app(config, threads, manifest), **options)  # the model is loaded (and checked) before the port opens
        return
    os.environ[WORKER_CONFIG_VARIABLE] = json.dumps({**dataclasses.asdict(config), "threads": threads})
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=config.workers, **options)


def connection_options(config: ServeConfig) -> dict:
    """uvicorn's settings for connections: the header deadline and connection cap (`connections.guarded_protocol`),
    the keep-alive idle limit, the grace period at shutdown."""
    from .connections import guarded_protocol

    return dict(http=guarded_protocol(config.header_timeout_s, config.max_connections),
                timeout_keep_alive=config.keep_alive_s, timeout_graceful_shutdown=10)


def worker_app():
    """App factory for uvicorn's worker processes: the config comes from the parent in an environment variable."""
    from .api import load_app

    payload = os.environ.get(WORKER_CONFIG_VARIABLE)
    if not payload:
        raise TuneshipError(f"{WORKER_CONFIG_VARIABLE} is not set; start workers with `tuneship serve --workers N`")
    from .connections import guarded_protocol

    config = ServeConfig(**json.loads(payload))
    guarded_protocol(config.header_timeout_s, config.max_connections)  # this process's copy of the protocol class
    return load_app(config)
