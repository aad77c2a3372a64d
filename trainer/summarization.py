"""Abstractive summarization: fine-tune with `transformers.Seq2SeqTrainer`, generate, score with ROUGE.

Any seq2seq model (t5-small, bart, ... by path or Hub id) is fine-tuned as it is. An encoder-only
model such as the default MiniLM becomes a BERT2BERT `EncoderDecoderModel`: encoder and decoder both
warm-started from it, the decoder's cross-attention new. That default is a small model (2 x 22M
parameters) trained from a few thousand examples; it is there to run offline, not to beat lead-3.
The generation settings (beams, max new tokens, no-repeat n-grams) are saved in
`generation_config.json`, which `generate`, the ONNX export and serving all read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..data.summarization import SummaryExample, read_summaries, trim_generated
from ..errors import TuneshipError, require
from ..log import get_logger
from ..metrics.summarization import lead3_scores, rouge
from ..tasks import SUMMARIZATION
from .config import TrainConfig
from .models import load_base_model, load_checkpoint, resolve_model
from .training import TrainingRun

logger = get_logger(__name__)

GENERATION_KEYS = ("num_beams", "max_new_tokens", "no_repeat_ngram_size", "length_penalty", "early_stopping",
                   "min_new_tokens")


def load_seq2seq_model(config: TrainConfig):
    """`config.model` as a seq2seq model with its tokenizer: an encoder-decoder model as it is, an encoder-only
    one (BERT, MiniLM) warm-started into both halves of an `EncoderDecoderModel`."""
    transformers = require("transformers", "train")
    path = resolve_model(config.model)
    try:
        base = transformers.AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise TuneshipError(f"could not load the base model {config.model!r}: {error}") from None
    if base.is_encoder_decoder:
        model, tokenizer = load_base_model(config, "AutoModelForSeq2SeqLM")
    else:
        transformers.set_seed(config.seed)  # the decoder's cross-attention weights are new
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        model = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(path, path)
        start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        if start is None or end is None or tokenizer.pad_token_id is None:
            raise TuneshipError(f"{config.model}: its tokenizer has no start/end/padding tokens to generate with")
        model.config.decoder_start_token_id, model.config.eos_token_id = start, end
        model.config.pad_token_id, model.config.vocab_size = tokenizer.pad_token_id, model.config.decoder.vocab_size
    generation = model.generation_config
    generation.decoder_start_token_id = model.config.decoder_start_token_id
    generation.eos_token_id = model.config.eos_token_id
    generation.pad_token_id = model.config.pad_token_id
    generation.num_beams = config.num_beams
    generation.max_new_tokens = config.max_target_length
    generation.max_length = config.max_target_length + 1  # with the decoder start token; Seq2SeqTrainer pads to it
    generation.no_repeat_ngram_size = config.no_repeat_ngram_size
    generation.early_stopping = True
    generation.length_penalty = 1.0
    model.config.tuneship = {"task": SUMMARIZATION, "max_length": config.max_length,
                             "max_target_length": config.max_target_length}  # the columns are added once read
    tokenizer.model_max_length = config.max_length
    return model, tokenizer


def generation_settings(model) -> dict:
    """The token ids and search settings a generator needs, from the model's generation config."""
    g = model.generation_config
    eos = g.eos_token_id[0] if isinstance(g.eos_token_id, list) else g.eos_token_id
    return {"decoder_start_token_id": g.decoder_start_token_id, "eos_token_id": eos, "pad_token_id": g.pad_token_id,
            **{k: getattr(g, k) for k in GENERATION_KEYS if getattr(g, k, None) is not None}}


class TorchSummarizer:
    """A summarization checkpoint in PyTorch, generating with its saved generation settings.

    Example:
        >>> summarizer = TorchSummarizer.from_checkpoint("runs/scitldr")  # doctest: +SKIP
        >>> summarizer.summaries(["A long abstract ..."])[0]  # doctest: +SKIP
        'we propose ...'
    """

    task = SUMMARIZATION

    def __init__(self, model, tokenizer):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = model.config.tuneship
        self.document_column = self.settings.get("document_column", "document")

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "TorchSummarizer":
        return cls(*load_checkpoint(path, "AutoModelForSeq2SeqLM", SUMMARIZATION))

    def encode(self, documents: Sequence[str]):
        return self.tokenizer(list(documents), truncation=True, max_length=self.settings["max_length"],
                              padding=True, return_tensors="pt", return_token_type_ids=False)

    def generate_ids(self, documents: Sequence[str], **options) -> list[list[int]]:
        """Generated token ids per document (decoder start token left out), `options` passed to `generate`."""
        import torch

        inputs = self.encode(documents)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **options)
        settings = generation_settings(self.model)
        return [trim_generated(row, settings["eos_token_id"], settings["pad_token_id"]) for row in output[:, 1:].tolist()]

    def summaries(self, documents: Sequence[str], batch_size: int = 8, **options) -> list[str]:
        summaries = []
        for start in range(0, len(documents), batch_size):
            ids = self.generate_ids(documents[start : start + batch_size], **options)
            summaries += [s.strip() for s in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return summaries


def features(tokenizer, model, examples: Sequence[SummaryExample], config: TrainConfig) -> dict[str, list]:
    inputs = tokenizer([e.document for e in examples], truncation=True, max_length=config.max_length,
                       return_token_type_ids=False)
    labels = tokenizer(text_target=[e.summary for e in examples], truncation=True,
                       max_length=config.max_target_length + 1)["input_ids"]
    start = model.config.decoder_start_token_id
    # BERT tokenizers begin every text with [CLS], which is also the decoder start token: the decoder must not
    # learn to predict it, so it is dropped from the labels (the model shifts it back in as the first input).
    labels = [row[1:] if row and row[0] == start else row[:-2] + row[-1:] if len(row) > config.max_target_length else row
              for row in labels]
    return {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"], "labels": labels}


from_checkpoint = TorchSummarizer.from_checkpoint


@dataclass
class SummaryData:
    """The training and selection documents, their columns (document, summary), and where they came from."""

    train: list[SummaryExample]
    validation: list[SummaryExample]
    columns: tuple[str, str]
    validation_source: str


class Run(TrainingRun):
    """Summarization on `config.train_file` (CSV/JSONL with document and summary), selected on ROUGE-L with
    generation (the skeleton is `TrainingRun.run`)."""

    trainer_class = "Seq2SeqTrainer"
    arguments_class = "Seq2SeqTrainingArguments"
    data: SummaryData

    def read_data(self) -> SummaryData:
        import numpy as np

        config = self.config
        train, columns = read_summaries(config.train_file, config.text_column, config.label_column)
        if config.validation_file:
            validation, _ = read_summaries(config.validation_file, columns[0], columns[1], split="validation")
            source = config.validation_file
        else:
            order = np.random.default_rng(config.seed).permutation(len(train))
            held = max(1, round(config.validation_split * len(train)))
            validation = [train[i] for i in order[:held]]
            train = [train[i] for i in sorted(order[held:])]
            source = f"a {config.validation_split:.0%} split of {config.train_file}"
        logger.info(f"summarization: {len(train)} training and {len(validation)} validation documents "
                    f"(columns {columns[0]!r} -> {columns[1]!r})")
        return SummaryData(train, validation, columns, source)

    def build_model(self):
        model, tokenizer = load_seq2seq_model(self.config)
        document, summary = self.data.columns
        model.config.tuneship.update(document_column=document, summary_column=summary)
        return model, tokenizer

    def features(self, model, tokenizer):
        import datasets

        return tuple(datasets.Dataset.from_dict(features(tokenizer, model, examples, self.config))
                     for examples in (self.data.train, self.data.validation))

    def best_metric(self) -> str:
        return "rougeL"

    def compute_metrics(self, tokenizer):
        import numpy as np

        references = [e.summary for e in self.data.validation]

        def compute_metrics(prediction):
            ids = np.where(prediction.predictions < 0, tokenizer.pad_token_id, prediction.predictions)
            summaries = [s.strip() for s in tokenizer.batch_decode(ids, skip_special_tokens=True)]
            return rouge(summaries, references)

        return compute_metrics

    def collator(self, model, tokenizer):
        import transformers

        return transformers.DataCollatorForSeq2Seq(tokenizer, model=model)

    def argument_options(self) -> dict:
        return {"predict_with_generate": True}

    def score(self, trainer, validation_set) -> dict:
        metrics = super().score(trainer, validation_set)
        metrics.update(lead3_scores(self.data.validation))
        metrics.update(num_examples=len(self.data.validation))
        return metrics

    def save(self, folder: Path, trainer, metrics: dict) -> None:
        from .saving import card_data, save_checkpoint

        config, data = self.config, self.data
        document, summary = data.columns
        g = trainer.model.generation_config
        name = Path(config.output_dir).name
        architecture = ("An `EncoderDecoderModel` warm-started from it in both halves (BERT2BERT): a small model."
                        if trainer.model.config.model_type == "encoder-decoder" else "")
        card = card_data(
            trainer, config, task_description="An abstractive summarization model",
            summary=f"It writes a short summary of a document. {architecture}".strip(),
            train_source=config.train_file, validation_source=data.validation_source, num_train=len(data.train),
            num_validation=len(data.validation), unit="documents",
            headline_metrics={"rouge1": metrics["rouge1"], "rouge2": metrics["rouge2"], "rougeL": metrics["rougeL"]},
            evaluation_extra="\n".join([
                "The lead-3 baseline (each document's first three sentences) on the same documents:", "",
                "| | ROUGE-1 | ROUGE-2 | ROUGE-L |", "|---|---|---|---|",
                f"| this model | {metrics['rouge1']:.2f} | {metrics['rouge2']:.2f} | {metrics['rougeL']:.2f} |",
                f"| lead-3 baseline | {metrics['lead3_rouge1']:.2f} | {metrics['lead3_rouge2']:.2f} | "
                f"{metrics['lead3_rougeL']:.2f} |", "", "![training curve](training_curve.png)"]),
            intended_use="Summarizing documents like the training data. Export it to ONNX with `tuneship export` to "
                         "serve it on CPUs (encoder and decoder graphs with a KV cache).",
            usage="\n".join(["```python", "from transformers import pipeline", "",
                             f'summarizer = pipeline("summarization", model="{name}")',
                             'summarizer("A long document ...")', "```", "",
                             f'or, with tuneship: `tuneship predict --model {name} --text "A long document ..."`.']),
            preprocessing=[f"Columns: document `{document}`, summary `{summary}`.",
                           f"Documents cut to {config.max_length} tokens; summaries of at most {g.max_new_tokens} "
                           f"tokens, beam search with {g.num_beams} beams, no repeated {g.no_repeat_ngram_size}-grams "
                           "(saved in `generation_config.json`)."],
            limitations=["Summaries can state things the document does not say; check them before publishing."],
        )
        save_checkpoint(folder, trainer, config, metrics,
                        [{document: e.document, summary: e.summary} for e in data.validation], card)
