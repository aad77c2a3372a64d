"""`tuneship bench`: a short real run on a tiny model (every backend in its own process), config errors, inputs."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import pair_rows, write_csv
from tuneship.bench import BACKENDS, BenchConfig, benchmark
from tuneship.bench.inputs import make_inputs
from tuneship.errors import TuneshipError
from tuneship.serving import BundleManifest
from tuneship.encoding import TextEncoder

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None


@pytest.fixture(scope="module")
def short_run(pair_checkpoint, pair_bundle, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    data = write_csv(folder / "data.csv", pair_rows(24))
    config = BenchConfig(checkpoint=str(pair_checkpoint), bundle=str(pair_bundle), data=str(data),
                         seq_lens="16,48", batch_sizes="1,4", threads=1, duration=0.1, min_calls=3,
                         output=str(folder / "out"))
    result = benchmark(config)
    result.config_manifest = BundleManifest.load(pair_bundle)
    return result


def test_every_backend_runs_or_says_why_not(short_run):
    assert set(short_run.backends) | set(short_run.skipped) == set(BACKENDS)
    assert {"pytorch-fp32", "pytorch-int8", "onnx-fp32", "onnx-int8"} <= set(short_run.backends)
    if HAS_OPENVINO:
        assert "openvino-fp32" in short_run.backends
    else:
        assert "not installed" in short_run.skipped["openvino-fp32"]
    if HAS_OPENVINO and "nncf-int8" in short_run.config_manifest.models:
        assert "openvino-int8" in short_run.backends
    else:
        assert "openvino-int8" in short_run.skipped
    assert "bundle-default" in short_run.backends, "the bundle as served always runs"
    for name, facts in short_run.backends.items():
        assert facts["runtime"] in ("pytorch", "onnxruntime", "openvino", "plan") and facts["version"], name


def test_bundle_default_is_the_plan_serve_would_use(short_run, pair_bundle):
    from tuneship.serving import Predictor

    facts = short_run.backends["bundle-default"]
    served = Predictor.from_bundle(pair_bundle, threads=1, batch_size=4)  # the plan cache the bench wrote
    assert facts["plan"] == {str(b): c for b, c in served.plan.serving.items()}
    assert served.plan.cached
    report = (Path(short_run.output) / "bench.md").read_text()
    assert "### Fastest backend per shape" in report and "bundle-default serves with" in report
    assert report.index("### Fastest backend per shape") < report.index("### Backends"), "the verdict comes first"
    candidate = served.plan.candidate_for(16)
    assert f"| 16 tok x 1 | " in report and f"| {candidate} |" in report


def test_every_row_has_sane_figures(short_run):
    rows = short_run.rows
    assert len(rows) == len(short_run.backends) * 2 * 2
    assert {(r["seq_len"], r["batch_size"]) for r in rows} == {(16, 1), (16, 4), (48, 1), (48, 4)}
    for row in rows:
        for prefix in ("", "model_"):
            p50, p95, p99 = (row[f"{prefix}latency_{p}_ms"] for p in ("p50", "p95", "p99"))
            assert 0 < p50 <= p95 <= p99, row
            assert row[f"{prefix}calls"] >= 3
            assert row[f"{prefix}throughput"] > 0 and row[f"{prefix}speedup_vs_torch"] > 0
            # throughput is inputs per second of timed calls: about batch_size / mean latency
            assert row[f"{prefix}throughput"] <= row["batch_size"] * 1000 / row[f"{prefix}latency_p50_ms"] * row[f"{prefix}calls"]
        if row["backend"] == "pytorch-fp32":
            assert row["speedup_vs_torch"] == row["model_speedup_vs_torch"] == 1.0
    # end to end includes tokenization, so it is never faster than the model alone (medians, same process)
    onnx = [r for r in rows if r["backend"] == "onnx-int8"]
    assert all(r["latency_p50_ms"] > 0.8 * r["model_latency_p50_ms"] for r in onnx)


def test_sizes_match_the_files_and_onnx_processes_stay_small(short_run, pair_checkpoint, pair_bundle):
    facts = short_run.backends
    manifest = BundleManifest.load(pair_bundle)
    assert facts["pytorch-fp32"]["size_bytes"] == (pair_checkpoint / "model.safetensors").stat().st_size
    assert facts["onnx-fp32"]["size_bytes"] == (pair_bundle / manifest.model_file("fp32")).stat().st_size
    assert facts["onnx-int8"]["size_bytes"] == (pair_bundle / manifest.model_file("int8")).stat().st_size
    assert facts["onnx-int8"]["size_bytes"] < facts["onnx-fp32"]["size_bytes"]
    if HAS_OPENVINO:
        assert facts["openvino-fp32"]["size_bytes"] == facts["onnx-fp32"]["size_bytes"]
    for row in short_run.rows:
        assert row["size_bytes"] == facts[row["backend"]]["size_bytes"]
    # each backend was measured in its own process: the ONNX ones never load torch
    assert 0 < facts["onnx-int8"]["peak_rss_mb"] < facts["pytorch-fp32"]["peak_rss_mb"] - 100


def test_openvino_int8_runs_the_bundles_nncf_model(short_run, pair_bundle):
    manifest = short_run.config_manifest
    if "openvino-int8" not in short_run.backends:
        pytest.skip(f"openvino-int8 not run: {short_run.skipped['openvino-int8']}")
    facts = short_run.backends["openvino-int8"]
    assert facts["precision"] == "int8" and "NNCF" in facts["quantization"]
    assert facts["size_bytes"] == (pair_bundle / manifest.model_file("nncf-int8")).stat().st_size
    assert 0 < facts["size_bytes"] < short_run.backends["openvino-fp32"]["size_bytes"]
    assert facts["agreement_with_torch"] >= 0.5


def test_openvino_int8_needs_the_bundles_nncf_model(pair_checkpoint, pair_bundle, tmp_path):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(pair_bundle, bundle)
    manifest = BundleManifest.load(bundle)
    manifest.models.pop("nncf-int8", None)
    manifest.gates["nncf-int8"] = {"passed": False, "reason": "its gate failed"}
    manifest.save(bundle)
    with pytest.raises(TuneshipError, match="openvino-int8 cannot run: the bundle has no NNCF int8 model: its gate"):
        benchmark(BenchConfig(checkpoint=str(pair_checkpoint), bundle=str(bundle), backends="openvino-int8",
                              output=str(tmp_path / "out")))


def test_accuracy_and_agreement_with_pytorch(short_run):
    facts = short_run.backends
    for name, backend in facts.items():
        assert 0 <= backend["accuracy"] <= 1 and 0 <= backend["f1"] <= 1 and backend["scored_rows"] == 24, name
    assert facts["pytorch-fp32"]["agreement_with_torch"] == 1.0
    assert facts["onnx-fp32"]["agreement_with_torch"] == 1.0
    assert facts["onnx-fp32"]["accuracy"] == facts["pytorch-fp32"]["accuracy"]


def test_json_markdown_and_png_are_written(short_run):
    import matplotlib.image

    output = Path(short_run.config.output)
    saved = json.loads((output / "bench.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(short_run.rows))
    assert {"backend", "seq_len", "batch_size", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "throughput",
            "speedup_vs_torch"} <= set(saved["rows"][0])
    machine = saved["machine"]
    assert machine["threads"] == 1 and machine["cpu"] and machine["logical_cores"] >= 1
    assert {"torch", "onnxruntime", "tokenizers"} <= set(machine["versions"])
    table = (output / "bench.md").read_text()
    for name in short_run.backends:
        assert f"| {name} |" in table
    assert "### Latency at batch 1, end to end" in table and "### Throughput, model only" in table
    image = matplotlib.image.imread(output / "bench.png")
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert not list(output.glob(".*.partial"))


def test_inputs_are_cut_to_exactly_the_asked_length(pair_bundle):
    manifest = BundleManifest.load(pair_bundle)
    for seq_len in (8, 33, 256):
        texts, pairs = make_inputs(["short", "words"], seq_len, 3, is_pair=True)
        encoder = TextEncoder.from_file(pair_bundle, seq_len, manifest.settings["truncation"])
        assert [len(e.ids) for e in encoder.encode(texts, pairs)] == [seq_len] * 3
        single, none = make_inputs([], seq_len, 2, is_pair=False)
        assert none is None and [len(e.ids) for e in encoder.encode(single)] == [seq_len] * 2
    texts, pairs = make_inputs([f"word{i}" for i in range(100)], 16, 8, is_pair=True)
    assert len(set(texts)) == 8 and len(set(pairs)) == 8 and not set(texts) & set(pairs)


def test_config_errors_name_the_option():
    with pytest.raises(TuneshipError, match="seq_lens must be whole numbers"):
        BenchConfig(checkpoint="c", bundle="b", seq_lens="32,long")
    with pytest.raises(TuneshipError, match="unknown backend"):
        BenchConfig(checkpoint="c", bundle="b", backends="onnx-int4")
    with pytest.raises(TuneshipError, match="duration must be positive"):
        BenchConfig(checkpoint="c", bundle="b", duration=0)
    config = BenchConfig(checkpoint="c", bundle="b", backends="onnx-int8", batch_sizes=[32, 1, 8, 8])
    assert config.backends == ("pytorch-fp32", "onnx-int8") and config.batch_sizes == (1, 8, 32)


def test_command_line_run_and_bad_input(pair_checkpoint, pair_bundle, tmp_path):
    tuneship = str(Path(sys.executable).with_name("tuneship"))
    output = tmp_path / "out"
    result = subprocess.run(
        [tuneship, "bench", "--model", str(pair_checkpoint), "--bundle", str(pair_bundle), "--seq-lens", "16",
         "--batch-sizes", "2", "--backends", "onnx-int8", "--threads", "1", "--duration", "0.05", "--min-calls", "2",
         "--output", str(output)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| onnx-int8 |" in result.stdout and "| pytorch-fp32 |" in result.stdout
    assert {r["backend"] for r in json.loads((output / "bench.json").read_text())["rows"]} == {"pytorch-fp32", "onnx-int8"}

    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run([tuneship, "bench", "--model", str(empty), "--bundle", str(pair_bundle)],
                            capture_output=True, text=True, timeout=120, cwd=empty)
    assert result.returncode == 2 and "not a model checkpoint (no config.json)" in result.stderr
    result = subprocess.run([tuneship, "bench", "--model", str(pair_checkpoint), "--bundle", str(pair_bundle),
                             "--seq-lens", "1024"], capture_output=True, text=True, timeout=120, cwd=empty)
    assert result.returncode == 2 and "at most 512 tokens, not 1024" in result.stderr
    assert not list(empty.iterdir()), "nothing is written when the input is bad"


def test_question_answering_bundles_are_benchmarked_too(qa_checkpoint, qa_bundle, tmp_path):
    config = BenchConfig(checkpoint=str(qa_checkpoint), bundle=str(qa_bundle), data=str(qa_checkpoint.parent / "validation.json"),
                         seq_lens="24,48", batch_sizes="1,2", backends="pytorch-int8,onnx-fp32,onnx-int8", threads=1,
                         duration=0.05, min_calls=2, output=str(tmp_path / "out"))
    result = benchmark(config)
    assert set(result.backends) == {"pytorch-fp32", "pytorch-int8", "onnx-fp32", "onnx-int8"}
    assert len(result.rows) == 4 * 2 * 2 and all(r["model_latency_p50_ms"] > 0 for r in result.rows)
    facts = result.backends
    assert facts["onnx-fp32"]["agreement_with_torch"] == 1.0 and facts["onnx-fp32"]["f1"] == facts["pytorch-fp32"]["f1"]
    assert all(0 <= f["exact_match"] <= f["f1"] <= 100 and f["scored_rows"] == 8 for f in facts.values())
    assert "| exact match | F1 | answer spans as PyTorch's |" in (tmp_path / "out" / "bench.md").read_text()
