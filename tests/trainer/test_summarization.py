"""Summarization: reading documents, ROUGE, lead-3, and fine-tuning a tiny BERT2BERT model."""

from __future__ import annotations

import json

import pytest

from tests.conftest import write_csv, write_jsonl
from tuneship.errors import DataError
from tuneship.metrics.summarization import rouge
from tuneship.data.summarization import lead, read_summaries, sentences


def test_rouge_matches_hand_worked_scores():
    # prediction "the cat sat", reference "the cat sat on the mat":
    # unigrams: 3 of 3 predicted match, 3 of 6 reference tokens covered -> F = 2 * 1 * 0.5 / 1.5
    # bigrams: 2 of 2 predicted, 2 of 5 reference -> F = 2 * 1 * 0.4 / 1.4; LCS = 3 -> same as unigrams
    scores = rouge(["the cat sat"], ["the cat sat on the mat"])
    assert scores["rouge1"] == pytest.approx(100 * 2 / 3)
    assert scores["rouge2"] == pytest.approx(100 * 0.8 / 1.4)
    assert scores["rougeL"] == pytest.approx(100 * 2 / 3)
    assert rouge(["a b", "x"], ["a b", "y"])["rouge1"] == pytest.approx(50.0)  # the mean over examples


def test_lead_takes_the_first_sentences():
    text = "First one. Second one! Is it third? Yes. e.g. this stays in the fourth."
    assert sentences(text)[:3] == ["First one.", "Second one!", "Is it third?"]
    assert lead(text) == "First one. Second one! Is it third?"
    assert lead("no full stop at all") == "no full stop at all"


def test_bad_rows_are_named(tmp_path):
    empty = write_csv(tmp_path / "a.csv", [{"document": "fine", "summary": "ok"}, {"document": " ", "summary": "x"}])
    with pytest.raises(DataError, match=r"a\.csv: row 2, column 'document': the document is empty"):
        read_summaries(empty)
    no_summary = write_jsonl(tmp_path / "b.jsonl", [{"document": "fine", "summary": ""}])
    with pytest.raises(DataError, match=r"b\.jsonl: row 1, column 'summary': the summary is empty"):
        read_summaries(no_summary)
    unknown = write_csv(tmp_path / "c.csv", [{"body": "fine", "summary": "ok"}])
    with pytest.raises(DataError, match=r"c\.csv: no document column .* it has 'body', 'summary'"):
        read_summaries(unknown)
    examples, columns = read_summaries(unknown, document_column="body")
    assert columns == ("body", "summary") and examples[0].document == "fine"
    with pytest.raises(DataError, match="no column 'text' for the documents"):
        read_summaries(unknown, document_column="text")


def test_checkpoint_is_a_seq2seq_folder_with_its_generation_settings(summary_checkpoint):
    from transformers import AutoModelForSeq2SeqLM, GenerationConfig

    config = json.loads((summary_checkpoint / "config.json").read_text())
    assert config["model_type"] == "encoder-decoder" and config["tuneship"]["task"] == "summarization"
    generation = GenerationConfig.from_pretrained(summary_checkpoint)
    assert (generation.num_beams, generation.max_new_tokens, generation.no_repeat_ngram_size) == (3, 12, 3)
    assert generation.decoder_start_token_id == 101  # [CLS] starts the decoder of a BERT2BERT model
    metrics = json.loads((summary_checkpoint / "metrics.json").read_text())
    for name in ("rouge1", "rouge2", "rougeL", "lead3_rouge1", "lead3_rouge2", "lead3_rougeL"):
        assert 0.0 <= metrics[name] <= 100.0
    assert metrics["lead3_rouge1"] > 40  # the first sentence is the reference, and lead-3 contains it
    assert metrics["num_examples"] == 6
    assert len((summary_checkpoint / "validation.jsonl").read_text().splitlines()) == 6
    card = (summary_checkpoint / "README.md").read_text()
    assert "pipeline_tag: summarization" in card and "lead-3 baseline" in card
    AutoModelForSeq2SeqLM.from_pretrained(summary_checkpoint)  # what transformers users load


def test_labels_drop_the_start_token_the_decoder_is_fed(summary_checkpoint):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from tuneship.data.summarization import SummaryExample
    from tuneship.trainer import TrainConfig
    from tuneship.trainer.summarization import features as _features

    model = AutoModelForSeq2SeqLM.from_pretrained(summary_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(summary_checkpoint)
    config = TrainConfig(task="summarization", max_target_length=4)
    features = _features(tokenizer, model, [SummaryExample("1", "a document", "one two three four five six")], config)
    labels = features["labels"][0]
    assert labels[0] != tokenizer.cls_token_id and labels[-1] == tokenizer.sep_token_id and len(labels) == 4


def test_card_is_built_like_every_task_s_with_eval_results(summary_checkpoint):
    from huggingface_hub import ModelCard

    card = ModelCard.load(summary_checkpoint / "README.md")
    metrics = json.loads((summary_checkpoint / "metrics.json").read_text())
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {name: pytest.approx(metrics[name], abs=1e-4) for name in ("rouge1", "rouge2", "rougeL")}
    assert card.data.pipeline_tag == "summarization" and card.data.license == "apache-2.0"
    for section in ("## Evaluation", "## Intended use", "## How to use", "## Training procedure", "## Limitations"):
        assert section in card.text
