"""What every task's HTTP app shares: errors, probes, metrics, the API key and body-size guard, and the
one-request-at-a-time queue of the tasks that batch within a request.

Each task adds its route in its own module (`api/classification.py`: `POST /v1/classify`,
`api/question_answering.py`: `POST /v1/answer`, `api/summarization.py`: `POST /v1/summarize`). Every app has
`GET /v1/model`, `GET /healthz`, `GET /readyz`, `GET /metrics`, and the OpenAPI schema and docs FastAPI serves
(`/openapi.json`, `/docs`). Bad input is answered with 4xx and a message naming the field, never with 500.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, Field, StrictStr, create_model, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from ... import __version__
from ..config import API_KEY_VARIABLE, ServeConfig
from ..monitoring import CONTENT_TYPE, ServerMetrics

# Probes stay open when an API key is set, so that orchestrators can check the process without it.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
CLIENT_CLOSED = 499  # nginx's status for a client that left before its answer: noted in /metrics, never sent


# --------------------------------------------------------------------------- request and response bodies


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text holds a lone surrogate and is not valid Unicode") from None
    return value


# A text field of a request: a JSON string (no numbers or nulls) that is valid Unicode.
Text = Annotated[StrictStr, AfterValidator(_encodable)]


class InputsRequest(BaseModel):
    """A request body `{"inputs": [...]}`; a single input object is accepted for a list of one."""

    @field_validator("inputs", mode="before", check_fields=False)
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class ErrorResponse(BaseModel):
    error: str = Field(description="what was wrong, naming the field")
    detail: list[dict] | None = None


# --------------------------------------------------------------------------- helpers


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, detail: list[dict] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    payload = {"error": message} if detail is None else {"error": message, "detail": detail}
    return json_response(payload, status, headers)


def count_refusal(inputs: list, config: ServeConfig, non_empty: tuple[str, ...] = ()) -> Response | None:
    """422 for no inputs, 413 for more than `config.max_request_inputs`, 422 naming the first input whose
    `non_empty` field is blank; None when the inputs are fine."""
    if not inputs:
        return error_response(422, "inputs: give at least one input")
    if len(inputs) > config.max_request_inputs:
        return error_response(413, f"inputs: {len(inputs)} inputs, over the limit of {config.max_request_inputs} "
                                   "per request; split them")
    for i, item in enumerate(inputs):
        for name in non_empty:
            if not getattr(item, name).strip():
                return error_response(422, f"inputs[{i}].{name}: empty")
    return None


MAX_DETAIL_ERRORS = 20  # a 422 lists at most this many errors (and says how many more): its body stays small
MAX_ECHO_CHARS = 64  # a field name or value from the request, as an error repeats it


def _short(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """`text` cut to `limit` characters (with how long it was): an error never echoes a request back whole."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _field_name(location: tuple | list) -> str:
    parts = [str(part) for part in location if part != "body"]
    name = ""
    for part in parts:
        name += f"[{part}]" if part.isdigit() else (f".{part}" if name else part)
    return name or "body"


def validation_detail(errors: list[dict]) -> tuple[str, list[dict]]:
    """The 422's message (the first error, by field) and detail: at most `MAX_DETAIL_ERRORS` errors, each field
    name and message cut short (`_short`), so that the body is small whatever the request held."""
    detail = [{"loc": [part if isinstance(part, int) else _short(str(part)) for part in e.get("loc", ())],
               "msg": _short(str(e.get("msg", "")), 4 * MAX_ECHO_CHARS), "type": str(e.get("type", ""))}
              for e in errors[:MAX_DETAIL_ERRORS]]
    first = detail[0] if detail else {"loc": [], "msg": "invalid request", "type": ""}
    if first["type"] == "json_invalid":
        message = f"body: not valid JSON ({first['msg']})"
    else:
        message = f"{_field_name(first['loc'])}: {first['msg']}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return message, detail


# --------------------------------------------------------------------------- the guard in front of every route


class RequestGuard:
    """Pure ASGI middleware: API key, body size limit, and per-request metrics (cheaper than BaseHTTPMiddleware).

    A route registered in `direct` (`{(method, path): handler(body, receive) -> Response}`, see `direct_route`) is
    answered here once its body is read, without Starlette's router, exception and dependency layers: the hot
    inference route spends its time in the model, not in routing. Its FastAPI route (for the OpenAPI document)
    calls the same handler."""

    def __init__(self, app, metrics: ServerMetrics, max_body_bytes: int, api_key: str | None,
                 paths: Callable[[], set[str]], body_timeout_s: float = 30.0, direct: dict | None = None):
        self.app = app
        self.direct = direct if direct is not None else {}
        self.metrics = metrics
        self.body_timeout_s = body_timeout_s
        self._paths = paths  # the app's routes, the only paths metrics are labelled with (others: "other")
        self._known: set[str] | None = None
        self.max_body_bytes = max_body_bytes
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            body = None
            if refusal is None and scope["method"] in ("POST", "PUT", "PATCH"):
                refusal, body, receive = await self._buffer_body(receive)
            handler = self.direct.get((scope["method"], scope["path"])) if refusal is None else None
            if refusal is not None:
                await refusal(scope, receive, send_and_note)
            elif handler is not None and body is not None:
                response = await handler(body, receive)
                await response(scope, receive, send_and_note)
            else:
                await self.app(scope, receive, send_and_note)
        finally:
            if self._known is None:
                self._known = self._paths()
            path = scope["path"] if scope["path"] in self._known else "other"
            self.metrics.observe_request(path, scope["method"], status, time.perf_counter() - started)

    def _refusal(self, scope) -> Response | None:
        headers = dict(scope["headers"])
        if self.api_key is not None and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            scheme, _, token = given.partition(b" ")
            if scheme.lower() != b"bearer" or not secrets.compare_digest(token.strip(), self.api_key):
                return error_response(401, "missing or wrong API key: send the header `Authorization: Bearer <key>`",
                                      headers={"WWW-Authenticate": "Bearer"})
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return error_response(400, "the Content-Length header is not a number")
            if int(length) > self.max_body_bytes:
                return self._too_large()
        return None

    def _too_large(self) -> Response:
        return error_response(413, f"the request body is over the limit of {self.max_body_bytes} bytes")

    async def _buffer_body(self, receive):
        """Read the whole body (refusing it past the limit, or one whose last byte has not come `body_timeout_s` after
        the first was awaited, however it trickles in: 408 and the connection closed), then replay it to the app. A
        client that leaves before its body is whole is noted as 499 (nothing is sent back)."""
        chunks, size = [], 0
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        while True:
            try:
                left = max(0.0, deadline - asyncio.get_running_loop().time())
                message = await asyncio.wait_for(receive(), left)
            except asyncio.TimeoutError:
                return error_response(408, f"the request body did not arrive within {self.body_timeout_s:g} s",
                                      headers={"Connection": "close"}), None, receive
            if message["type"] == "http.disconnect":
                return error_response(CLIENT_CLOSED, "the client closed the connection before its body was whole"), \
                    None, receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return self._too_large(), None, receive
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return None, body, replay


# --------------------------------------------------------------------------- the app


def app_shell(summary: str, description: str, config: ServeConfig, metrics: ServerMetrics, lifespan,
              api_key: str | None) -> FastAPI:
    """What every tuneship app shares: 4xx (never 500) for bad input, `/healthz`, `/metrics`, the API key and
    body-size guard. `api_key` defaults to the `TUNESHIP_API_KEY` environment variable."""
    api_key = api_key if api_key is not None else os.environ.get(API_KEY_VARIABLE) or None
    app = FastAPI(title="tuneship", version=__version__, summary=summary, description=description, lifespan=lifespan,
                  redoc_url=None)
    app.state.metrics = metrics

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        return error_response(422, *validation_detail(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        return error_response(error.status_code, str(error.detail), headers=getattr(error, "headers", None))

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> Response:
        """The process is up."""
        return json_response({"status": "ok"})

    @app.get("/metrics", tags=["probes"])
    async def prometheus_metrics() -> Response:
        """Prometheus text format: requests, errors, latency, batch sizes, queue depth."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.state.direct_routes = {}
    app.add_middleware(RequestGuard, metrics=metrics, max_body_bytes=config.max_body_bytes, api_key=api_key,
                       paths=lambda: {route.path for route in app.routes}, body_timeout_s=config.body_timeout_s,
                       direct=app.state.direct_routes)
    return app


def direct_route(app: FastAPI, path: str, handler, **route_options) -> None:
    """`POST path` answered by `handler(body: bytes, receive) -> Response`: straight from `RequestGuard` in
    production, and through a FastAPI route (documented with `route_options`) for anything that bypasses the
    guard. The handler parses and checks the body itself (errors: 4xx naming the field)."""
    app.state.direct_routes["POST", path] = handler

    async def endpoint(request: Request) -> Response:
        return await handler(await request.body(), request.receive)

    endpoint.__doc__, endpoint.__name__ = handler.__doc__, handler.__name__
    app.post(path, **route_options)(endpoint)


@dataclass(frozen=True)
class SerialRoute:
    """A task's inference route on a `serial_app`: `POST path` with a `request_model` body (a list of `inputs`),
    answered `{"outputs": [output_model, ...]}`."""

    path: str
    name: str  # the handler's name (its OpenAPI operation)
    doc: str
    request_model: type[BaseModel]
    output_model: type[BaseModel]
    non_empty: tuple[str, ...]  # the input fields that may not be blank
    work: Callable[[Any], int]  # body -> tokens of model work, checked against the budget
    run: Callable[[Any], list]  # body -> outputs, run on a worker thread in turn


def token_refusal(tokens: int, config: ServeConfig, what: str = "tokens after truncation") -> Response | None:
    """413 when a request's work, counted in `tokens`, is over `config.max_request_tokens`."""
    if tokens <= config.max_request_tokens:
        return None
    return error_response(413, f"the request holds {tokens} {what}, over the budget of {config.max_request_tokens} "
                               "per request (--max-request-tokens); send its inputs in smaller requests")


def serial_app(summary: str, description: str, config: ServeConfig, api_key: str | None, model, info: dict,
               route: SerialRoute) -> FastAPI:
    """An `app_shell` whose `model` runs one request at a time, with `GET /v1/model` (`model_info` and `info`), a
    `/readyz` that fails while the queue is full, and `route`. A request gets its refusal (`count_refusal`), 413 when
    `route.work` is over the token budget, 429 when `config.max_queue` requests are waiting, or else
    `{"outputs": route.run(body)}`. A request whose client leaves while it waits for its turn never runs."""
    waiting = {"count": 0}
    turn = asyncio.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield

    metrics = ServerMetrics(lambda: waiting["count"])
    metrics.observe_model(model)
    app = app_shell(summary, description, config, metrics, lifespan, api_key)
    info = {**model_info(model, config), **info}

    async def in_turn(body):
        await turn.acquire()  # cancelled here (its client gone), a request never runs
        run = asyncio.ensure_future(run_in_threadpool(route.run, body))
        run.add_done_callback(lambda _: turn.release())  # a run once started holds the turn until its thread is done
        return await asyncio.shield(run)

    async def endpoint(body, request):
        refusal = count_refusal(body.inputs, config, route.non_empty)
        if refusal is None:
            refusal = token_refusal(await run_in_threadpool(route.work, body), config, "tokens of model work")
        if refusal is not None:
            return refusal
        if waiting["count"] >= config.max_queue:
            return error_response(429, f"{waiting['count']} requests are waiting; retry shortly",
                                  headers={"Retry-After": "1"})
        waiting["count"] += 1
        try:
            outputs = await unless_disconnected(request.receive, asyncio.ensure_future(in_turn(body)))
        except ClientGone:
            return error_response(CLIENT_CLOSED, "the client closed the connection")
        finally:
            waiting["count"] -= 1
        return json_response({"outputs": outputs})

    endpoint.__name__, endpoint.__doc__ = route.name, route.doc
    endpoint.__annotations__ = {"body": route.request_model, "request": Request, "return": Response}
    response = create_model(route.output_model.__name__.removesuffix("Output") + "Response",
                            outputs=(list[route.output_model], ...))
    errors = {"model": ErrorResponse}
    app.post(route.path, response_model=response, tags=["inference"],
             responses={401: errors, 413: errors, 422: errors, 429: errors})(endpoint)

    @app.get("/v1/model", tags=["model"])
    async def model() -> Response:
        """What is served: task, precision, settings, gates, versions."""
        return json_response(info)

    @app.get("/readyz", tags=["probes"])
    async def readyz() -> Response:
        """Ready for traffic unless the queue is full."""
        if waiting["count"] >= config.max_queue:
            return error_response(503, "not ready: the queue is full", headers={"Retry-After": "1"})
        return json_response({"status": "ready", "queue_depth": waiting["count"]})

    return app


def model_info(model, config: ServeConfig) -> dict:
    """The part of `GET /v1/model` every task shares (`model`: a bundle's loaded model)."""
    from ..engines import runtime_versions

    manifest, precision = model.manifest, model.precision
    plan = model.plan.to_dict() if getattr(model, "plan", None) is not None else {"precision": precision}
    return {
        "task": manifest.task, "precision": precision, "plan": plan,
        "model_files": getattr(model, "model_files", None) or manifest.model_files(),
        "max_length": manifest.max_length, "settings": manifest.settings,
        "limits": {"max_request_inputs": config.max_request_inputs, "max_body_bytes": config.max_body_bytes},
        "gates": manifest.gates,
        # the checkpoint's folder name only: the export machine's absolute path is nobody's business
        "source": {**manifest.source, "checkpoint": Path(manifest.source.get("checkpoint", "")).name},
        "versions": {**manifest.versions, "tuneship_server": __version__,
                     **{f"{name}_server": version for name, version in runtime_versions().items()}},
    }




async def until_disconnected(receive) -> None:
    """Return when the client has gone away (`receive` is the request's ASGI receive; its body was read already, so
    the next message is the disconnect)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(receive, work: asyncio.Future):
    """Await `work` (a future), or cancel it and raise `ClientGone` when the client leaves first: a request nobody
    waits for does not keep its inputs in the queue."""
    watch = asyncio.ensure_future(until_disconnected(receive))
    watch.add_done_callback(lambda _: work.cancel())
    try:
        return await work
    except asyncio.CancelledError:
        if watch.done() and not watch.cancelled():
            raise ClientGone() from None
        raise
    finally:
        watch.cancel()


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""
