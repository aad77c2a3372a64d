"""The HTTP API of an extractive QA bundle: `POST /v1/answer` over a `QuestionAnswerer`.

Shares errors, probes, metrics and the API-key guard with every task's app (`api.app.app_shell`).
Requests run one at a time on the session's threads (a long context is already a batch of windows;
`api.app.serial_app`); when `max_queue` requests are waiting, new ones get 429 with `Retry-After`.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from ..config import ServeConfig
from ..question_answering import QuestionAnswerer
from .app import InputsRequest, SerialRoute, Text, serial_app

ROUTE = "/v1/answer"


class AnswerInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Text = Field(description="the question")
    context: Text = Field(description="the text the answer is taken from (any length: it is read in windows)")


class AnswerRequest(InputsRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"inputs": [{"question": "When was the bridge built?",
                                                     "context": "The bridge was built in 1932."}]}]},
    )

    inputs: list[AnswerInput] = Field(description="a list of questions (a single object is accepted too)")


class AnswerOutput(BaseModel):
    answer: str
    start: int = Field(description="character offset of the answer in the context")
    end: int = Field(description="character offset just after the answer")
    score: float = Field(description="probability of this span among the n-best")


def create_app(answerer: QuestionAnswerer, config: ServeConfig, api_key: str | None = None) -> FastAPI:
    """The FastAPI app serving `answerer`. `api_key` defaults to the `TUNESHIP_API_KEY` environment variable."""

    def pairs(body: AnswerRequest) -> tuple[list[str], list[str]]:
        return [i.question for i in body.inputs], [i.context for i in body.inputs]

    route = SerialRoute(ROUTE, "answer", "Answer one question or a list of them, each with its own context.",
                        AnswerRequest, AnswerOutput, ("question", "context"),
                        work=lambda body: answerer.window_tokens(*pairs(body)),
                        run=lambda body: [a.to_dict() for a in answerer.answer(*pairs(body))])
    app = serial_app(f"extractive question answering with an ONNX model ({answerer.precision})",
                     "Answer questions with a span of their context. Bad input gets 4xx with a message naming the field.",
                     config, api_key, answerer, {"settings": answerer.settings}, route)
    app.state.answerer = answerer
    return app
