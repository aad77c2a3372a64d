"""The summarization HTTP API (`POST /v1/summarize`) through a real uvicorn server on a loopback port."""

import httpx
import pytest

from tests.conftest import running
from tuneship.serving.api import load_app
from tuneship.serving.config import ServeConfig
from tuneship.serving.summarization import Summarizer

DOCUMENT = "The bridge was built in 1932 by the city. It cost 3 million to build. Visitors say it is worth a trip."


@pytest.fixture(scope="module")
def url(summary_bundle):
    with running(load_app(ServeConfig(bundle=str(summary_bundle), max_request_inputs=4))) as base:
        yield base


def test_summarizes_one_or_many_documents(url, summary_bundle):
    summarizer = Summarizer.from_bundle(summary_bundle)
    one = httpx.post(f"{url}/v1/summarize", json={"inputs": {"document": DOCUMENT}}, timeout=60)
    assert one.status_code == 200
    assert one.json()["outputs"] == summarizer.summarize([DOCUMENT])
    greedy = httpx.post(f"{url}/v1/summarize", json={"inputs": [{"document": DOCUMENT}, {"document": "Short."}],
                                                    "num_beams": 1, "max_new_tokens": 5}, timeout=60)
    assert greedy.status_code == 200
    outputs = greedy.json()["outputs"]
    assert len(outputs) == 2 and all(o["tokens"] <= 5 for o in outputs)
    assert outputs == summarizer.summarize([DOCUMENT, "Short."], num_beams=1, max_new_tokens=5)


@pytest.mark.parametrize("body, status, message", [
    ({"inputs": [{"text": "x"}]}, 422, "inputs[0].document: Field required"),
    ({"inputs": [{"document": "   "}]}, 422, "inputs[0].document: empty"),
    ({"inputs": [{"document": 3}]}, 422, "inputs[0].document: Input should be a valid string"),
    ({"inputs": [{"document": "x"}], "num_beams": 0}, 422, "num_beams: Input should be greater than or equal to 1"),
    ({"inputs": [{"document": "x"}], "max_new_tokens": 100000}, 422, "max_new_tokens: Input should be less than"),
    ({"inputs": [{"document": "x"}] * 5}, 413, "over the limit of 4"),
    ({"inputs": []}, 422, "inputs: give at least one input"),
])
def test_bad_requests_are_named_never_500(url, body, status, message):
    response = httpx.post(f"{url}/v1/summarize", json=body, timeout=60)
    assert response.status_code == status and message in response.json()["error"]


def test_model_info_and_probes(url):
    info = httpx.get(f"{url}/v1/model").json()
    assert info["task"] == "summarization" and info["generation"]["num_beams"] == 3
    assert info["gates"]["generation"]["passed"]
    assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.post(f"{url}/v1/summarize", content=b"{not json", timeout=10).status_code == 422


def test_metrics_label_summarize_traffic_with_its_route(url):
    """`/v1/summarize` is counted under its own path, not as "other" (its route was once missing from the labels)."""
    httpx.post(f"{url}/v1/summarize", json={"inputs": {"document": DOCUMENT}, "num_beams": 1}, timeout=60)
    httpx.get(f"{url}/no-such-page", timeout=10)
    metrics = httpx.get(f"{url}/metrics").text
    assert 'tuneship_requests_total{method="POST",path="/v1/summarize",status="200"}' in metrics
    assert 'path="other"' in metrics and 'path="/no-such-page"' not in metrics


def test_a_request_over_the_token_budget_gets_413_counting_what_its_beams_may_generate(summary_bundle):
    from tuneship.serving.api.summarization import create_app

    summarizer = Summarizer.from_bundle(summary_bundle)
    greedy = summarizer.work_tokens([DOCUMENT], num_beams=1, max_new_tokens=5)
    beams = summarizer.work_tokens([DOCUMENT], num_beams=3, max_new_tokens=40)
    assert beams - greedy == 3 * 40 - 5
    with running(create_app(summarizer, ServeConfig(bundle=str(summary_bundle), max_request_tokens=greedy))) as base:
        small = {"inputs": {"document": DOCUMENT}, "num_beams": 1, "max_new_tokens": 5}
        assert httpx.post(f"{base}/v1/summarize", json=small, timeout=60).status_code == 200
        over = httpx.post(f"{base}/v1/summarize", json={**small, "num_beams": 3, "max_new_tokens": 40}, timeout=60)
        assert over.status_code == 413
        assert f"{beams} tokens of model work, over the budget of {greedy}" in over.json()["error"]
