"""`Summarizer`: a summarization bundle's encoder-decoder ONNX graphs on onnxruntime. No torch."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import TuneshipError
from .encoding import TOKENIZER_FILE, TextEncoder
from .generation import DECODER_FILE, DECODER_WITH_PAST_FILE, ENCODER_FILE, GenerationSettings, Seq2SeqGenerator
from .manifest import SUMMARIZATION, BundleManifest
from .predictor import create_session


class Summarizer:
    """Summarize documents with a bundle written by `tuneship export` from a summarization checkpoint.

    Example:
        >>> summarizer = Summarizer.from_bundle("runs/scitldr-onnx")  # doctest: +SKIP
        >>> summarizer.summarize(["A long abstract ..."])[0]["summary"]  # doctest: +SKIP
        'we propose ...'
    """

    def __init__(self, generator: Seq2SeqGenerator, encoder: TextEncoder, manifest: BundleManifest,
                 precision: str = "fp32"):
        self.generator = generator
        self.encoder = encoder
        self.manifest = manifest
        self.precision = precision

    @classmethod
    def from_bundle(cls, path: str | Path, precision: str | None = None, threads: int | None = None,
                    spinning: bool = True) -> "Summarizer":
        path = Path(path)
        manifest = BundleManifest.load(path)
        if manifest.task != SUMMARIZATION:
            raise TuneshipError(f"{path}: a {manifest.task} bundle, not a summarization one")
        return cls.from_folder(path, manifest, precision, threads, spinning)

    @classmethod
    def from_folder(cls, path: Path, manifest: BundleManifest, precision: str | None = None, threads: int | None = None,
                    spinning: bool = True) -> "Summarizer":
        """The graphs in `path` as `manifest` describes them (the export checks a bundle with this before its
        manifest is written)."""
        precision = precision or manifest.default_precision
        files = manifest.models.get(precision, {}).get("files")
        if not files:
            raise TuneshipError(f"{path}: this bundle has no {precision} model; it has {', '.join(sorted(manifest.models))}")
        sessions = [create_session(path / files[name], threads, spinning)
                    for name in (ENCODER_FILE, DECODER_FILE, DECODER_WITH_PAST_FILE)]
        settings = GenerationSettings.from_dict(manifest.task_settings["generation"])
        encoder = TextEncoder.from_file(path / TOKENIZER_FILE, manifest.max_length, "longest_first")
        return cls(Seq2SeqGenerator(*sessions, settings), encoder, manifest, precision)

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

    def decode(self, tokens: Sequence[int]) -> str:
        return self.encoder.tokenizer.decode(list(tokens), skip_special_tokens=True).strip()

    def summarize(self, documents: Sequence[str], num_beams: int | None = None,
                  max_new_tokens: int | None = None) -> list[dict]:
        """`{"summary", "tokens", "truncated"}` per document; `truncated` says the document was cut to max_length."""
        for index, document in enumerate(documents):
            if not isinstance(document, str) or not document.strip():
                raise TuneshipError(f"document {index} is empty")
        encodings = self.encoder.encode(list(documents))
        ids = self._generate(encodings, num_beams, max_new_tokens)
        return [{"summary": self.decode(tokens), "tokens": len(tokens), "truncated": self.encoder.is_truncated(e)}
                for tokens, e in zip(ids, encodings)]

    def summaries(self, documents: Sequence[str], **options) -> list[str]:
        """Just the summary texts (the method `TorchSummarizer` has too, so evaluation takes either)."""
        return [result["summary"] for result in self.summarize(documents, **options)]
