"""Serving replicas past one machine, on Ray Serve: the same FastAPI app in every replica.

    tuneship serve --bundle B --engine ray [--replicas 2 | --autoscale 1:4] [--address auto]

Each replica loads the bundle and builds tuneship's own app (`api.load_app`): the same routes, errors, API
key, metrics and dynamic batcher, with onnxruntime threads from the replica's CPUs (`--threads`, default 1,
and as many CPUs reserved from Ray). Serve's health check asks the replica's batcher; a saturated replica answers
429 as a single server does. For `serve run`, a Serve config file or KubeRay's `RayService`, `app_builder` is the
import path: `tuneship.serving.ray_serve:app_builder` with `args: {bundle: ...}`.
"""

from __future__ import annotations

import dataclasses
import os
import typing

from ..errors import TuneshipError, require
from ..log import get_logger
from .config import API_KEY_VARIABLE, ServeConfig

logger = get_logger(__name__)


def build_app(config: ServeConfig, replicas: int = 1, autoscale: tuple[int, int] | None = None):
    """The Ray Serve application for `config.bundle`: `replicas` replicas, or autoscaling between `autoscale`'s
    bounds; each replica reserves `config.threads` (default 1) CPUs for its onnxruntime threads."""
    serve = require("ray.serve", "ray")
    from ..bundle import BundleManifest

    BundleManifest.load(config.bundle)  # a clear error here, not in every replica
    threads = config.threads or 1
    scaling = {"num_replicas": replicas} if autoscale is None else {
        "autoscaling_config": {"min_replicas": autoscale[0], "max_replicas": autoscale[1],
                               "target_ongoing_requests": max(2, config.max_batch_size // 4)}}

    options = {"num_cpus": threads}
    if os.environ.get(API_KEY_VARIABLE):  # replicas on other machines do not inherit this process's environment
        options["runtime_env"] = {"env_vars": {API_KEY_VARIABLE: os.environ[API_KEY_VARIABLE]}}

    @serve.deployment(name="tuneship", ray_actor_options=options, max_ongoing_requests=config.max_queue,
                      health_check_period_s=10, **scaling)
    @serve.ingress()
    class Replica:
        def __init__(self, values: dict):
            self.config = ServeConfig(**values)

        def __serve_build_asgi_app__(self):
            from .api import load_app

            self.tuneship_app = load_app(self.config, self.config.threads or 1)  # `app` is Serve's own attribute
            return self.tuneship_app

        def check_health(self) -> None:
            """Serve's health check: the replica is up and its batcher (classification) runs."""
            app = getattr(self, "tuneship_app", None)
            batcher = getattr(app.state, "batcher", None) if app is not None else None
            if batcher is not None and not batcher.alive:
                raise RuntimeError("the dynamic batcher stopped")

    return Replica.bind(dataclasses.asdict(config))


def app_builder(args: dict):
    """For `serve run tuneship.serving.ray_serve:app_builder bundle=...` and Serve config files: `args` are
    `ServeConfig` options plus `replicas` (an int) or `autoscale` ("MIN:MAX")."""
    args = dict(args)
    replicas = int(args.pop("replicas", 1))
    autoscale = parse_autoscale(args.pop("autoscale", None))
    return build_app(serve_config(args), replicas, autoscale)


def serve_config(args: dict) -> ServeConfig:
    """`ServeConfig` from `serve run`'s `key=value` arguments, which arrive as strings (`threads=2`), or from a
    config file's typed values; an unknown key or a value of the wrong kind is named."""
    hints = typing.get_type_hints(ServeConfig)
    values = {}
    for name, value in args.items():
        if name not in hints:
            raise TuneshipError(f"app_builder: unknown option {name!r} (options: {', '.join(sorted(hints))})")
        kind = next((base for base in (bool, int, float) if hints[name] is base or base in typing.get_args(hints[name])),
                    None)
        if isinstance(value, str) and kind is bool:
            value = value.strip().lower() in ("1", "true", "yes", "on")
        elif isinstance(value, str) and kind is not None:
            try:
                value = kind(value)
            except ValueError:
                raise TuneshipError(f"app_builder: {name}={value!r} is not a{'n' if kind is int else ''} "
                                    f"{kind.__name__}") from None
        values[name] = value
    return ServeConfig(**values)


def parse_autoscale(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    low, _, high = str(value).partition(":")
    try:
        bounds = int(low), int(high)
    except ValueError:
        raise TuneshipError(f"--autoscale {value!r}: give MIN:MAX replicas, like 1:4") from None
    if not 1 <= bounds[0] <= bounds[1]:
        raise TuneshipError(f"--autoscale {value!r}: need 1 <= MIN <= MAX")
    return bounds


def serve_on_ray(config: ServeConfig, replicas: int = 1, autoscale: str | None = None, address: str | None = None) -> None:
    """Start (or join) a Ray cluster, deploy the replicas behind Serve's proxy on `config.host:config.port`, and
    block until interrupted."""
    ray = require("ray", "ray")
    serve = require("ray.serve", "ray")
    app = build_app(config, replicas, parse_autoscale(autoscale))
    # Serve's HTTP proxy gets 5 s to start by default: too short on a small machine that is busy.
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
    ray.init(address=address, log_to_driver=False, configure_logging=False)
    serve.start(http_options={"host": config.host, "port": config.port})
    serve.run(app, name="tuneship", route_prefix="/", blocking=False)
    logger.info(f"serving {config.bundle} on Ray Serve at http://{config.host}:{config.port} with "
                f"{'autoscaling ' + autoscale if autoscale else f'{replicas} replica(s)'}; API docs at /docs")
    try:
        import time

        while True:
            time.sleep(3600)
    finally:
        serve.shutdown()
