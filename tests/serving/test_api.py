"""The HTTP API through a real uvicorn server on a loopback port, driven with httpx."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import running
from tuneship.serving.plan import NAMES
from tuneship.serving import Predictor
from tuneship.serving.api import create_app
from tuneship.serving.config import ServeConfig

PAIR = {"text": "the cat sat on mat 3", "text_pair": "a cat was on the mat 3"}


def make_app(bundle: Path, api_key: str | None = "", predictor: Predictor | None = None, **options):
    config = ServeConfig(bundle=str(bundle), **options)
    return create_app(predictor or Predictor.from_bundle(bundle, spinning=False), config, api_key=api_key)


def with_run(predictor: Predictor, run) -> Predictor:
    """The same session and tokenizer, with `run` in place of `Predictor.run` (what the batcher calls)."""
    copy = Predictor(predictor.session, predictor.encoder, predictor.manifest, predictor.precision)
    copy.run = run
    return copy


@pytest.fixture(scope="module")
def predictor(pair_bundle) -> Predictor:
    return Predictor.from_bundle(pair_bundle, spinning=False)


@pytest.fixture(scope="module")
def url(pair_bundle, predictor):
    with running(make_app(pair_bundle, predictor=predictor, max_request_inputs=8, max_body_bytes=4096)) as base:
        yield base


def test_classify_one_or_many_inputs_matches_the_library(url, predictor):
    expected = predictor.predict([PAIR["text"], "x"], [PAIR["text_pair"], ""])
    many = httpx.post(f"{url}/v1/classify", json={"inputs": [PAIR, {"text": "x", "text_pair": ""}]})
    assert many.status_code == 200
    outputs = many.json()["outputs"]
    assert [o["label"] for o in outputs] == [e["label"] for e in expected]
    assert outputs[0]["probabilities"] == pytest.approx(expected[0]["probabilities"], abs=1e-6)
    one = httpx.post(f"{url}/v1/classify", json={"inputs": PAIR})
    assert one.status_code == 200 and one.json()["outputs"][0]["label"] == expected[0]["label"]


def test_over_long_inputs_are_truncated_and_flagged(url):
    long = " ".join(["word"] * 150)  # the tiny model truncates at 32 tokens
    response = httpx.post(f"{url}/v1/classify", json={"inputs": [{"text": long, "text_pair": long}, PAIR]})
    assert response.status_code == 200
    assert [o["truncated"] for o in response.json()["outputs"]] == [True, False]


@pytest.mark.parametrize("body, field", [
    ({"inputs": [{"text": "a"}]}, "inputs[0].text_pair: required"),
    ({"inputs": [PAIR, {"text": 5, "text_pair": "b"}]}, "inputs[1].text: Input should be a valid string"),
    ({"inputs": [{"text_pair": "b"}]}, "inputs[0].text: Field required"),
    ({"input": [PAIR]}, "inputs: Field required"),
    ({"inputs": [{**PAIR, "label": "1"}]}, "inputs[0].label: Extra inputs are not permitted"),
    ({"inputs": []}, "inputs: give at least one input"),
    ({"inputs": "text"}, "inputs: Input should be a valid array"),
    ([PAIR], "body: Input should be an object"),
])
def test_bad_bodies_get_422_naming_the_field(url, body, field):
    response = httpx.post(f"{url}/v1/classify", json=body)
    assert response.status_code == 422
    assert response.json()["error"].startswith(field), response.json()


def test_malformed_json_and_bad_encodings_get_422(url):
    for content in (b"{not json", b'{"inputs": {"text": "\\ud800", "text_pair": "b"}}', b'{"inputs": "\xff"}', b""):
        response = httpx.post(f"{url}/v1/classify", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 422 and response.json()["error"].startswith("body: not valid JSON")


def test_too_many_inputs_or_too_large_a_body_get_413(url):
    response = httpx.post(f"{url}/v1/classify", json={"inputs": [PAIR] * 9})
    assert response.status_code == 413 and "over the limit of 8" in response.json()["error"]
    response = httpx.post(f"{url}/v1/classify", json={"inputs": [{"text": "a" * 5000, "text_pair": "b"}]})
    assert response.status_code == 413 and "4096 bytes" in response.json()["error"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 1000

    response = httpx.post(f"{url}/v1/classify", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_a_request_over_the_token_budget_gets_413_naming_it(pair_bundle, predictor):
    app = make_app(pair_bundle, predictor=predictor, max_request_tokens=100)
    long = {"text": "word " * 400, "text_pair": "word " * 400}  # cut to the bundle's max length
    with running(app) as base:
        response = httpx.post(f"{base}/v1/classify", json={"inputs": [long] * 4})
        assert response.status_code == 413
        assert "over the budget of 100 per request (--max-request-tokens)" in response.json()["error"]
        assert httpx.post(f"{base}/v1/classify", json={"inputs": [PAIR]}).status_code == 200, "a short one passes"


def test_single_text_models_refuse_a_second_text(text_bundle):
    with running(make_app(text_bundle)) as base:
        response = httpx.post(f"{base}/v1/classify", json={"inputs": [{"text": "crash", "text_pair": "b"}]})
        assert response.status_code == 422 and response.json()["error"].startswith("inputs[0].text_pair: not expected")
        ok = httpx.post(f"{base}/v1/classify", json={"inputs": [{"text": "crash"}, {"text": "", "text_pair": None}]})
        assert ok.status_code == 200 and len(ok.json()["outputs"]) == 2


def test_model_probes_metrics_and_openapi(url):
    model = httpx.get(f"{url}/v1/model").json()
    assert model["pair"] is True and model["labels"] == ["0", "1"]
    assert all(name in NAMES for name in model["precision"].split("+")), "the candidates in use"
    assert {"onnxruntime_server", "tuneship_server"} <= set(model["versions"])
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").status_code == 200
    schema = httpx.get(f"{url}/openapi.json").json()
    assert schema["paths"]["/v1/classify"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "ClassifyRequest" in schema["components"]["schemas"] and "ClassifyInput" in schema["components"]["schemas"]
    httpx.post(f"{url}/v1/classify", json={"inputs": {"text": 1}})
    metrics = httpx.get(f"{url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for name in ("tuneship_requests_total", "tuneship_request_errors_total", "tuneship_request_duration_seconds_bucket",
                 "tuneship_batch_size_bucket", "tuneship_queue_depth"):
        assert name in text
    assert 'tuneship_request_errors_total{path="/v1/classify",status="422"}' in text
    assert httpx.get(f"{url}/nowhere").status_code == 404


def test_concurrent_requests_are_all_answered_correctly_and_batched(pair_bundle, predictor):
    texts = [f"the cat sat on mat {i}" for i in range(48)]
    pairs = [f"a cat was on the mat {i}" if i % 2 else f"stocks fell {i}" for i in range(48)]
    expected = [p["label"] for p in predictor.predict(texts, pairs)]
    slow_run = predictor.run

    def run(encodings, **options):  # slower model runs, so that requests pile up as under real load
        time.sleep(0.02)
        return slow_run(encodings, **options)

    with running(make_app(pair_bundle, predictor=with_run(predictor, run))) as base:
        async def fire():
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                return await asyncio.gather(*(
                    client.post("/v1/classify", json={"inputs": [{"text": t, "text_pair": p}]})
                    for t, p in zip(texts, pairs)))

        responses = asyncio.run(fire())
        assert [r.status_code for r in responses] == [200] * 48
        assert [r.json()["outputs"][0]["label"] for r in responses] == expected
        metrics = httpx.get(f"{base}/metrics").text
    runs = float(metrics.split("tuneship_batch_size_count ")[1].split()[0])
    assert float(metrics.split("tuneship_batch_size_sum ")[1].split()[0]) == 48
    assert runs < 48 / 2, f"48 concurrent requests took {runs} runs"


def test_a_full_queue_answers_429_with_retry_after(pair_bundle, predictor):
    gate = threading.Event()
    real_run = predictor.run
    blocked = with_run(predictor, lambda encodings, **options: (gate.wait(20), real_run(encodings, **options))[1])
    with running(make_app(pair_bundle, predictor=blocked, max_queue=4, max_request_inputs=4)) as base:
        async def fire():
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                first = asyncio.create_task(client.post("/v1/classify", json={"inputs": [PAIR]}))
                await asyncio.sleep(0.3)  # the worker holds this one at the gate
                queued = asyncio.create_task(client.post("/v1/classify", json={"inputs": [PAIR] * 4}))
                await asyncio.sleep(0.3)
                refused = await client.post("/v1/classify", json={"inputs": [PAIR]})
                not_ready = await client.get("/readyz")
                gate.set()
                return refused, not_ready, await first, await queued

        refused, not_ready, first, queued = asyncio.run(fire())
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "overloaded" in refused.json()["error"]
    assert not_ready.status_code == 503
    assert first.status_code == 200 and queued.status_code == 200 and len(queued.json()["outputs"]) == 4


def test_api_key_is_required_when_set(pair_bundle, predictor, monkeypatch):
    monkeypatch.setenv("TUNESHIP_API_KEY", "s3cret")
    with running(make_app(pair_bundle, api_key=None, predictor=predictor)) as base:
        assert httpx.post(f"{base}/v1/classify", json={"inputs": PAIR}).status_code == 401
        wrong = httpx.post(f"{base}/v1/classify", json={"inputs": PAIR}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{base}/v1/model").status_code == 401
        assert httpx.get(f"{base}/metrics").status_code == 401
        assert httpx.get(f"{base}/healthz").status_code == 200  # probes stay open
        good = httpx.post(f"{base}/v1/classify", json={"inputs": PAIR}, headers={"Authorization": "Bearer s3cret"})
        assert good.status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
input_like = st.fixed_dictionaries({}, optional={"text": json_values | st.text(), "text_pair": json_values | st.text(),
                                                 "other": json_values})
bodies = (
    json_values.map(json.dumps)
    | st.fixed_dictionaries({"inputs": json_values | input_like | st.lists(input_like, max_size=12)}).map(json.dumps)
    | st.binary(max_size=200).map(lambda raw: raw.decode("latin-1"))
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_fuzzed_bodies_never_get_a_500(url, body):
    response = httpx.post(f"{url}/v1/classify", content=body.encode("utf-8", "surrogatepass"),
                          headers={"content-type": "application/json"})
    assert response.status_code in (200, 413, 422), (response.status_code, body, response.text)
    assert "error" in response.json() or "outputs" in response.json()


def test_an_error_never_echoes_the_request_back_whole():
    from pydantic import ValidationError

    from tuneship.serving.api.app import error_response, validation_detail
    from tuneship.serving.api.classification import ClassifyRequest

    attacks = [json.dumps({"inputs": [{**PAIR, "k" * 900_000: 1}]}),  # a 900 KB field name
               json.dumps({"inputs": [{**PAIR, **{f"x{i}": 1 for i in range(60_000)}}]})]  # 60,000 extra keys
    for body in attacks:
        with pytest.raises(ValidationError) as error:
            ClassifyRequest.model_validate_json(body)
        message, detail = validation_detail(error.value.errors())
        response = error_response(422, message, detail)
        assert response.status_code == 422 and len(response.body) < 4096, len(response.body)
        assert message.startswith("inputs[0].") and "Extra inputs are not permitted" in message
    assert "(900000 characters)" in message or "(and 59999 more)" in message
