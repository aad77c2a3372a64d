"""The QA HTTP API (`POST /v1/answer`) through a real uvicorn server on a loopback port."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import running
from tuneship.serving.plan import NAMES
from tuneship.serving.question_answering import QuestionAnswerer
from tuneship.serving.api import load_app
from tuneship.serving.config import ServeConfig
from tuneship.serving.api.question_answering import create_app as create_qa_app

CONTEXT = " ".join(f"Note {j} is about nothing." for j in range(20)) + " The museum was built in 1904 by the city."


@pytest.fixture(scope="module")
def url(qa_bundle):
    with running(load_app(ServeConfig(bundle=str(qa_bundle), max_request_inputs=4))) as base:
        yield base


def test_answers_one_or_many_questions(url, qa_bundle):
    one = httpx.post(f"{url}/v1/answer", json={"inputs": {"question": "When was the museum built?", "context": CONTEXT}})
    assert one.status_code == 200
    (output,) = one.json()["outputs"]
    assert CONTEXT[output["start"]:output["end"]] == output["answer"] and 0 < output["score"] <= 1
    served = httpx.get(f"{url}/v1/model").json()["precision"]  # the candidate the plan chose when the server started
    candidate = NAMES[served]  # QA: one candidate serves every window
    expected = QuestionAnswerer.from_bundle(qa_bundle, candidate.precision, runtime=candidate.runtime).answer(
        ["When was the museum built?"], [CONTEXT])[0].to_dict()
    assert output == pytest.approx(expected)
    many = httpx.post(f"{url}/v1/answer", json={"inputs": [{"question": "When?", "context": CONTEXT},
                                                         {"question": "Who built it?", "context": "The city built it."}]})
    assert many.status_code == 200 and len(many.json()["outputs"]) == 2


@pytest.mark.parametrize("body, status, message", [
    ({"inputs": [{"question": "When?"}]}, 422, "inputs[0].context: Field required"),
    ({"inputs": [{"question": "When?", "context": "   "}]}, 422, "inputs[0].context: empty"),
    ({"inputs": [{"question": "When?", "context": "x", "text": "y"}]}, 422, "inputs[0].text: Extra inputs are not permitted"),
    ({"inputs": [{"question": 3, "context": "x"}]}, 422, "inputs[0].question: Input should be a valid string"),
    ({"inputs": [{"question": "q", "context": "c"}] * 5}, 413, "over the limit of 4"),
    ({"inputs": []}, 422, "inputs: give at least one input"),
])
def test_bad_requests_get_4xx_naming_the_field(url, body, status, message):
    response = httpx.post(f"{url}/v1/answer", json=body)
    assert response.status_code == status and message in response.json()["error"]


def test_model_probes_and_metrics(url):
    model = httpx.get(f"{url}/v1/model").json()
    assert model["task"] == "question-answering" and model["settings"]["doc_stride"] == 12
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
    assert httpx.post(f"{url}/v1/answer", content=b"{not json").status_code == 422
    assert 'path="/v1/answer"' in httpx.get(f"{url}/metrics").text
    assert "/v1/classify" not in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_api_key_guards_the_answer_route(qa_bundle):
    answerer = QuestionAnswerer.from_bundle(qa_bundle, spinning=False)
    with running(create_qa_app(answerer, ServeConfig(bundle=str(qa_bundle)), api_key="s3cret")) as base:
        body = {"inputs": [{"question": "When?", "context": CONTEXT}]}
        assert httpx.post(f"{base}/v1/answer", json=body).status_code == 401
        assert httpx.post(f"{base}/v1/answer", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_a_request_over_the_token_budget_gets_413_counting_every_window(qa_bundle):
    answerer = QuestionAnswerer.from_bundle(qa_bundle, spinning=False)
    budget = answerer.window_tokens(["When?"], [CONTEXT])  # one context's windows fit; two do not
    assert budget > 0 and answerer.window_tokens(["When?"] * 2, [CONTEXT] * 2) == 2 * budget
    with running(create_qa_app(answerer, ServeConfig(bundle=str(qa_bundle), max_request_tokens=budget))) as base:
        assert httpx.post(f"{base}/v1/answer", json={"inputs": {"question": "When?", "context": CONTEXT}}).status_code == 200
        over = httpx.post(f"{base}/v1/answer", json={"inputs": [{"question": "When?", "context": CONTEXT}] * 2})
        assert over.status_code == 413
        assert f"{2 * budget} tokens of model work, over the budget of {budget}" in over.json()["error"]


def test_a_request_whose_client_left_while_it_waited_never_runs(qa_bundle):
    answerer = QuestionAnswerer.from_bundle(qa_bundle, spinning=False)
    gate, asked, answer = threading.Event(), [], answerer.answer

    def held(questions, contexts):  # the first request holds the model until the gate opens
        asked.extend(questions)
        gate.wait(20)
        return answer(questions, contexts)

    answerer.answer = held
    body = lambda question: {"inputs": {"question": question, "context": CONTEXT}}  # noqa: E731
    with running(create_qa_app(answerer, ServeConfig(bundle=str(qa_bundle)))) as base, ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{base}/v1/answer", json=body("first"), timeout=30)
        deadline = time.time() + 10
        while not asked and time.time() < deadline:
            time.sleep(0.02)
        with pytest.raises(httpx.ReadTimeout):  # waits for its turn, then its client goes away
            httpx.post(f"{base}/v1/answer", json=body("gone"), timeout=1)
        time.sleep(0.5)
        gate.set()
        assert first.result().status_code == 200
        assert httpx.post(f"{base}/v1/answer", json=body("after"), timeout=30).status_code == 200
        assert asked == ["first", "after"]  # "gone" never ran
        assert 'tuneship_request_errors_total{path="/v1/answer",status="499"} 1.0' in httpx.get(f"{base}/metrics").text
