"""The HTTP API of a summarization bundle: `POST /v1/summarize` over a `Summarizer`.

Shares errors, probes, metrics, the API-key guard and the one-request-at-a-time queue with the QA app
(`api.app.serial_app`): generation is a loop of decoder steps, already batched over a request's documents.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from ..config import ServeConfig
from ..summarization import Summarizer
from .app import InputsRequest, SerialRoute, Text, serial_app

ROUTE = "/v1/summarize"

MAX_BEAMS = 8
MAX_NEW_TOKENS = 512


class SummarizeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: Text = Field(description="the text to summarize (cut to the bundle's max_length tokens)")


class SummarizeRequest(InputsRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"inputs": [{"document": "A long article ..."}], "num_beams": 4}]},
    )

    inputs: list[SummarizeInput] = Field(description="a list of documents (a single object is accepted too)")
    num_beams: int | None = Field(None, ge=1, le=MAX_BEAMS, description="beams (1: greedy); default: the bundle's")
    max_new_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS, description="longest summary, in tokens")


class SummarizeOutput(BaseModel):
    summary: str
    tokens: int = Field(description="tokens generated, the end token included")
    truncated: bool = Field(description="whether the document was cut to max_length tokens")


def create_app(summarizer: Summarizer, config: ServeConfig, api_key: str | None = None) -> FastAPI:
    """The FastAPI app serving `summarizer`. `api_key` defaults to the `TUNESHIP_API_KEY` environment variable."""

    def documents(body: SummarizeRequest) -> list[str]:
        return [i.document for i in body.inputs]

    route = SerialRoute(ROUTE, "summarize", "Summarize one document or a list of them.", SummarizeRequest,
                        SummarizeOutput, ("document",),
                        work=lambda body: summarizer.work_tokens(documents(body), body.num_beams, body.max_new_tokens),
                        run=lambda body: summarizer.summarize(documents(body), body.num_beams, body.max_new_tokens))
    app = serial_app(f"summarization with encoder-decoder ONNX models on onnxruntime ({summarizer.precision})",
                     "Summarize documents with greedy or beam search. Bad input gets 4xx with a message naming the "
                     "field.", config, api_key, summarizer, {"generation": summarizer.settings.to_dict()}, route)
    app.state.summarizer = summarizer
    return app
