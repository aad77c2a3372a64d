"""Summarization on onnxruntime: the manifest's `Settings`, `Summarizer` (encoder-decoder graphs with a KV cache),
and file evaluation. No torch.

The file functions take any summarizer with `summaries(documents)` (a bundle's `Summarizer` or the trainer's
`TorchSummarizer`), so a bundle is scored exactly as its checkpoint is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

from ..bundle import BundleManifest, ManifestError, TaskSettings
from ..data.records import Record, field_value
from ..encoding import TOKENIZER_FILE, TextEncoder
from ..errors import TuneshipError
from ..tasks import SUMMARIZATION
from .generation import DECODER_FILE, DECODER_WITH_PAST_FILE, ENCODER_FILE, GenerationSettings, Seq2SeqGenerator
from .plan import REFERENCE, Plan, fixed_plan
from .session import create_session

GRAPH_FILES = (ENCODER_FILE, DECODER_FILE, DECODER_WITH_PAST_FILE)


@dataclass
class Settings(TaskSettings):
    """The summarization part of a manifest: the document (and reference summary) columns, and the generation
    settings (`generation_config.json` of the checkpoint)."""

    task: ClassVar[str] = SUMMARIZATION

    document_column: str
    generation: dict
    summary_column: str | None = None

    @property
    def input_columns(self) -> list[str]:
        return [self.document_column]

    def check(self, where: str) -> None:
        try:
            GenerationSettings.from_dict(self.generation)
        except (TypeError, AttributeError) as error:
            raise ManifestError(f"{where}: field 'settings.generation' does not fit a {SUMMARIZATION} bundle "
                                f"({error})") from None


class Summarizer:
    """Summarize documents with a bundle written by `tuneship export` from a summarization checkpoint.

    Example:
        >>> summarizer = Summarizer.from_bundle("runs/scitldr-onnx")  # doctest: +SKIP
        >>> summarizer.summarize(["A long abstract ..."])[0]["summary"]  # doctest: +SKIP
        'we propose ...'
    """

    task = SUMMARIZATION
    plan: Plan | None = None  # set by `from_bundle`: what runs the graphs, and why

    def __init__(self, generator: Seq2SeqGenerator, encoder: TextEncoder, manifest: BundleManifest,
                 precision: str = "fp32"):
        self.generator = generator
        self.encoder = encoder
        self.manifest = manifest
        self.precision = precision
        self.document_column = manifest.task_settings(Settings).document_column

    @classmethod
    def from_bundle(cls, path: str | Path, precision: str | None = "auto", threads: int | None = None,
                    spinning: bool | str = True, runtime: str | None = "auto", batch_size: int = 32,
                    plan_cache: bool = True, manifest: BundleManifest | None = None) -> "Summarizer":
        """Load `path`; summarization bundles are fp32 graphs on onnxruntime, so "auto" is that (nothing to plan:
        `batch_size` and `plan_cache` are accepted for the same call as the other tasks)."""
        path = Path(path)
        manifest = BundleManifest.load(path, SUMMARIZATION, loaded=manifest)
        plan = fixed_plan(manifest, REFERENCE, "summarization bundles hold fp32 graphs only (no int8 or NNCF model: "
                          "the export gates none for generation), run on onnxruntime with a KV cache", precision, runtime)
        summarizer = cls.from_folder(path, manifest, "fp32", threads, spinning)
        summarizer.plan = plan
        return summarizer

    @classmethod
    def from_folder(cls, path: Path, manifest: BundleManifest, precision: str | None = None, threads: int | None = None,
                    spinning: bool | str = True) -> "Summarizer":
        """The graphs in `path` as `manifest` describes them (the export checks a bundle with this before its
        manifest is written)."""
        task_settings = manifest.task_settings(Settings)
        files = manifest.model_files(precision)
        if sorted(files) != sorted(GRAPH_FILES):
            raise ManifestError(f"{manifest.location}: field 'models' must name the graphs {', '.join(GRAPH_FILES)}, "
                                f"not {', '.join(files)}")
        sessions = [create_session(path / name, threads, spinning) for name in GRAPH_FILES]
        settings = GenerationSettings.from_dict(task_settings.generation)
        encoder = TextEncoder.from_file(path / TOKENIZER_FILE, manifest.max_length, "longest_first")
        return cls(Seq2SeqGenerator(*sessions, settings), encoder, manifest, manifest.resolve_precision(precision))

    @property
    def settings(self) -> GenerationSettings:
        return self.generator.settings

    def generate_ids(self, documents: Sequence[str], num_beams: int | None = None,
                     max_new_tokens: int | None = None, batch_size: int = 8) -> list[list[int]]:
        """Generated token ids per document, documents of similar length batched together."""
        return self._generate(self.encoder.encode(list(documents)), num_beams, max_new_tokens, batch_size)

    def _generate(self, encodings: list, num_beams: int | None, max_new_tokens: int | None,
                  batch_size: int = 8) -> list[list[int]]:
        results: list[list[int]] = [[] for _ in encodings]
        for batch in self.encoder.batches(encodings, ["input_ids", "attention_mask"], batch_size=batch_size):
            ids = self.generator.generate(batch.arrays["input_ids"], batch.arrays["attention_mask"], num_beams,
                                          max_new_tokens)
            for index, tokens in zip(batch.indices, ids):
                results[index] = tokens
        return results

    def work_tokens(self, documents: Sequence[str], num_beams: int | None = None,
                    max_new_tokens: int | None = None) -> int:
        """Tokens of model work for these documents: each one's tokens as read (truncated), plus the most its beams
        can generate (beams x new tokens)."""
        beams = self.settings.num_beams if num_beams is None else num_beams
        new = self.settings.max_new_tokens if max_new_tokens is None else max_new_tokens
        read = sum(len(encoding.ids) for encoding in self.encoder.encode(list(documents)))
        return read + len(documents) * max(1, beams) * new

    def decode(self, tokens: Sequence[int]) -> str:
        return self.encoder.tokenizer.decode(list(tokens), skip_special_tokens=True).strip()

    def summarize(self, documents: Sequence[str], num_beams: int | None = None,
                  max_new_tokens: int | None = None) -> list[dict]:
        """`{"summary", "tokens", "truncated"}` per document; `truncated` says the document was cut to max_length."""
        for index, document in enumerate(documents):
            if not isinstance(document, str) or not document.strip():
                raise TuneshipError(f"document {index} is empty")
        encodings, truncated = self.encoder.encode_inputs(list(documents))
        ids = self._generate(encodings, num_beams, max_new_tokens)
        return [{"summary": self.decode(tokens), "tokens": len(tokens), "truncated": cut}
                for tokens, cut in zip(ids, truncated)]

    def summaries(self, documents: Sequence[str], **options) -> list[str]:
        """Just the summary texts (the method `TorchSummarizer` has too, so evaluation takes either)."""
        return [result["summary"] for result in self.summarize(documents, **options)]


from_bundle = Summarizer.from_bundle


def predict_text(summarizer, document: str, text_pair: str | None = None) -> dict:
    """The summary of one document."""
    if text_pair is not None:
        raise TuneshipError("summarization takes one document (--text); give no --text-pair")
    return {"summary": summarizer.summaries([document])[0]}


def input_columns(summarizer) -> list[str]:
    """The column a file to summarize must have: the documents (the column the model was trained on)."""
    return [summarizer.document_column]


def predict_rows(summarizer, records: list[Record], source: Path, batch_size: int = 8) -> list[dict]:
    """The output column of each record (its document, in the column the model was trained on): `summary`."""
    column = summarizer.document_column
    documents = [str(field_value(r, column, source, allow_empty=False)) for r in records]
    return [{"summary": s} for s in summarizer.summaries(documents)]


def evaluate(summarizer, data_file: str | Path, batch_size: int = 8) -> dict:
    """ROUGE-1/2/L of any summarizer (`summaries(documents)`: a bundle's or a checkpoint's) on a file of documents
    and reference summaries, next to the lead-3 baseline on the same documents, with a few examples."""
    from tqdm.auto import tqdm

    from ..data.summarization import read_summaries
    from ..metrics.summarization import lead3_scores, rouge

    examples, _ = read_summaries(data_file, split="validation")
    summaries: list[str] = []
    for start in tqdm(range(0, len(examples), batch_size), desc="summarizing", unit="batch"):
        summaries += summarizer.summaries([e.document for e in examples[start : start + batch_size]])
    references = [e.summary for e in examples]
    return {**rouge(summaries, references), **lead3_scores(examples), "num_examples": len(examples),
            "examples": [{"summary": s, "reference": r} for s, r in zip(summaries[:3], references[:3])]}
