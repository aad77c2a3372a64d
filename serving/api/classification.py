"""The HTTP API of a classification bundle: `POST /v1/classify` over a `Predictor`, with dynamic batching.

Concurrent requests are merged into batched onnxruntime runs by `DynamicBatcher` under a token budget.
Shares errors, probes, metrics and the API-key guard with every task's app (`api.app.app_shell`).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...data.classification import softmax, to_predictions
from ..batching import DynamicBatcher, Overloaded, ShuttingDown
from ..classification import Predictor
from ..config import ServeConfig
from ..monitoring import ServerMetrics
from .app import CLIENT_CLOSED, ClientGone, ErrorResponse, InputsRequest, Text, app_shell, count_refusal, direct_route, \
    error_response, json_response, model_info, token_refusal, unless_disconnected, validation_detail

ROUTE = "/v1/classify"
INLINE_CHARS = 4096  # requests with more text than this are tokenized on a worker thread, off the event loop


class ClassifyInput(BaseModel):
    """One input: a text, and for pair models its second text."""

    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="the text (the first text of a pair)")
    text_pair: Text | None = Field(None, description="the second text; required by pair models, refused by others")


class ClassifyRequest(InputsRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"inputs": [{"text": "An article.", "text_pair": "A comment on it."}]}]},
    )

    inputs: list[ClassifyInput] = Field(description="a list of inputs (a single input object is accepted too)")


class Prediction(BaseModel):
    label: str
    score: float
    probabilities: dict[str, float]
    truncated: bool = Field(description="whether the input was cut to the model's max length")


class ClassifyResponse(BaseModel):
    outputs: list[Prediction] = Field(description="one prediction per input, in order")


def create_app(predictor: Predictor, config: ServeConfig, api_key: str | None = None) -> FastAPI:
    """The FastAPI app serving `predictor`. `api_key` defaults to the `TUNESHIP_API_KEY` environment variable."""
    manifest = predictor.manifest
    pair = predictor.columns.is_pair
    # `app` is bound below; the queue depth is read only when /metrics is scraped, after start-up.
    metrics = ServerMetrics(lambda: app.state.batcher.queue_depth if hasattr(app.state, "batcher") else 0)
    metrics.observe_model(predictor)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = DynamicBatcher(
            lambda encodings: predictor.run(encodings, batch_size=len(encodings)),
            max_batch_tokens=config.max_batch_tokens, max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms, max_queue=config.max_queue, on_batch=metrics.observe_batch,
            buckets=getattr(predictor.session, "buckets", None),
        )
        app.state.batcher = batcher.start()
        try:
            yield
        finally:
            batcher.close()

    app = app_shell(
        f"{manifest.task} with ONNX models ({predictor.precision}, as the load-time plan chose)",
        ("Classify " + ("text pairs" if pair else "texts") + f" into {', '.join(predictor.label_names)}. "
         "Bad input gets 4xx with a message naming the field."),
        config, metrics, lifespan, api_key,
    )
    app.state.predictor = predictor

    errors = {"model": ErrorResponse}

    async def classify(body: bytes, receive) -> Response:
        """Classify one input or a list of them. Long inputs are truncated and flagged `truncated`."""
        try:  # parsed by pydantic-core straight from bytes, not through FastAPI's dependency machinery
            inputs = ClassifyRequest.model_validate_json(body).inputs
        except ValidationError as error:
            return error_response(422, *validation_detail(error.errors()))
        refusal = count_refusal(inputs, config)
        if refusal is not None:
            return refusal
        for i, item in enumerate(inputs):
            where = f"inputs[{i}].text_pair"
            if pair and item.text_pair is None:
                return error_response(422, f"{where}: required, this model classifies pairs "
                                           f"({predictor.columns.text}, {predictor.columns.text_pair})")
            if not pair and item.text_pair is not None:
                return error_response(422, f"{where}: not expected, this model classifies single texts")
        texts = [item.text for item in inputs]
        pairs = [item.text_pair for item in inputs] if pair else None
        if sum(map(len, texts)) + sum(map(len, pairs or ())) <= INLINE_CHARS:
            encodings, truncated = predictor.encoder.encode_inputs(texts, pairs)
        else:  # long text: tokenize on a worker thread, so that probes and other requests are not held up
            encodings, truncated = await run_in_threadpool(predictor.encoder.encode_inputs, texts, pairs)
        refusal = token_refusal(sum(len(encoding.ids) for encoding in encodings), config)
        if refusal is not None:
            return refusal
        try:
            logits = await unless_disconnected(receive, app.state.batcher.submit(encodings))
        except Overloaded as error:
            return error_response(429, str(error), headers={"Retry-After": str(error.retry_after)})
        except ShuttingDown as error:
            return error_response(503, str(error), headers={"Retry-After": "1"})
        except ClientGone:
            return error_response(CLIENT_CLOSED, "the client closed the connection")
        return json_response({"outputs": to_predictions(softmax(logits), predictor.label_names, truncated)})

    direct_route(app, ROUTE, classify, response_model=ClassifyResponse, tags=["inference"],
                 responses={401: errors, 413: errors, 422: errors, 429: errors, 503: errors},
                 openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"$ref": "#/components/schemas/ClassifyRequest"}}}}})

    @app.get("/v1/model", tags=["model"])
    async def model() -> Response:
        """What is served: task, labels, inputs, precision, tokenization, batching, versions."""
        return json_response({
            **model_info(predictor, config),
            "labels": predictor.label_names,
            "pair": pair,
            "columns": {"text": predictor.columns.text, "text_pair": predictor.columns.text_pair,
                        "label": predictor.columns.label},
            "batching": {"max_batch_tokens": config.max_batch_tokens, "max_batch_size": config.max_batch_size,
                         "max_wait_ms": config.max_wait_ms, "max_queue": config.max_queue},
        })

    @app.get("/readyz", tags=["probes"])
    async def readyz() -> Response:
        """Ready for traffic: model loaded, batcher running, queue not full."""
        batcher = getattr(app.state, "batcher", None)
        if batcher is None or not batcher.alive:
            return error_response(503, "not ready: the batcher is not running")
        if batcher.queue_depth >= config.max_queue:
            return error_response(503, "not ready: the queue is full", headers={"Retry-After": "1"})
        return json_response({"status": "ready", "queue_depth": batcher.queue_depth})

    generate_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate_openapi()
            request_schema = ClassifyRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(request_schema.pop("$defs", {}))
            components["ClassifyRequest"] = request_schema
        return app.openapi_schema

    app.openapi = openapi
    return app
