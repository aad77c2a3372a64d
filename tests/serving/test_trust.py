"""Answers you can trust (one test per failure found by probing): the same answer in any batch, the plan made on
the serving CPU, bundles checked on load, text the tokenizer cannot take, nothing lost in batch prediction, and the
server under long or abandoned requests."""

from __future__ import annotations

import json
import re
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import pair_rows, running, write_csv, write_jsonl
from tuneship.errors import DataError
from tuneship.serving import BundleManifest, Predictor, predict_file
from tuneship.serving.api import create_app
from tuneship.serving.config import ServeConfig
from tuneship.serving.engines import openvino_missing

TUNESHIP = str(Path(sys.executable).with_name("tuneship"))
LONG = " ".join(["a very long neighbour that fills the whole window"] * 20)


def texts(count: int = 20) -> tuple[list[str], list[str]]:
    rows = pair_rows(count)
    return [r["sentence1"] for r in rows], [r["sentence2"] for r in rows]


# --------------------------------------------------------------------------- 1. batch invariance


@pytest.mark.parametrize("precision,runtime", [("auto", "auto"), ("int8", "onnxruntime"), ("fp32", "onnxruntime"),
                                               ("int8", "openvino"), ("fp32", "openvino")])
def test_an_input_gets_the_same_answer_alone_and_in_any_batch(pair_bundle, precision, runtime):
    if runtime == "openvino" and openvino_missing():
        pytest.skip(openvino_missing())
    if (precision, runtime) == ("int8", "openvino") and "nncf-int8" not in BundleManifest.load(pair_bundle).models:
        pytest.skip("the tiny bundle's NNCF model did not pass its gate")
    predictor = Predictor.from_bundle(pair_bundle, precision, runtime=runtime)
    firsts, seconds = texts()
    alone = [predictor.predict([a], [b])[0] for a, b in zip(firsts, seconds)]
    mixed = predictor.predict([LONG, *firsts, "x"], [LONG, *seconds, "y"], batch_size=7)[1:-1]  # long batch mates
    for one, batched in zip(alone, mixed):
        assert one["label"] == batched["label"]
        assert one["probabilities"] == pytest.approx(batched["probabilities"], abs=1e-3)


def test_the_export_gate_measures_batch_drift(pair_bundle):
    gate = BundleManifest.load(pair_bundle).gates["int8"]
    chosen = gate["attempts"][gate["chosen"]]["gate"] if gate["passed"] else gate["attempts"][-1]["gate"]
    assert chosen["batch_drift"] <= 1e-3 or not gate["passed"]
    assert gate["attempts"][0]["recipe"]["mode"] == "calibrated"


def test_served_predicted_and_evaluated_answers_match_alone(pair_bundle, tmp_path):
    predictor = Predictor.from_bundle(pair_bundle, "int8", spinning=False)
    firsts, seconds = texts(12)
    alone = [predictor.predict([a], [b])[0] for a, b in zip(firsts, seconds)]
    rows = [{"sentence1": a, "sentence2": b, "label": 0} for a, b in zip([LONG, *firsts], [LONG, *seconds])]
    written = predict_file(predictor, write_csv(tmp_path / "in.csv", rows), tmp_path / "out.jsonl")
    from_file = [json.loads(line) for line in written.read_text().splitlines()][1:]
    with running(create_app(predictor, ServeConfig(bundle=str(pair_bundle)), api_key="")) as url:
        body = {"inputs": [{"text": a, "text_pair": b} for a, b in zip([LONG, *firsts], [LONG, *seconds])]}
        served = httpx.post(f"{url}/v1/classify", json=body, timeout=30).json()["outputs"][1:]
    for one, line, answer in zip(alone, from_file, served):
        assert one["label"] == line["predicted_label"] == answer["label"]
        assert one["score"] == pytest.approx(line["score"], abs=1e-3) and one["score"] == pytest.approx(answer["score"], abs=1e-3)


# --------------------------------------------------------------------------- 2. the plan made on this CPU


def broken_copy(bundle: Path, tmp_path: Path) -> Path:
    """The bundle with an int8 model that answers the opposite: its logits negated."""
    import onnx
    from onnx import helper

    copy = tmp_path / "broken"
    shutil.copytree(bundle, copy)
    model = onnx.load(str(copy / "model_quantized.onnx"))
    logits = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{name}_before" if name == logits else name for name in node.output]
    model.graph.node.append(helper.make_node("Neg", [f"{logits}_before"], [logits]))
    onnx.save(model, str(copy / "model_quantized.onnx"))
    return copy


def test_auto_drops_int8_when_it_disagrees_here(pair_bundle, tmp_path, capsys):
    broken = broken_copy(pair_bundle, tmp_path)
    planned = Predictor.from_bundle(broken)
    verdict = planned.plan.candidates["onnxruntime-int8"]
    assert not verdict["passed"] and "onnxruntime-int8" not in planned.plan.serving.values(), planned.plan
    assert "disagrees" in verdict["reason"] or "did not pass" in verdict["reason"]
    obeyed = Predictor.from_bundle(broken, "int8", runtime="onnxruntime")
    assert obeyed.precision == "onnxruntime-int8" and "warning: serving onnxruntime-int8 as asked" in capsys.readouterr().out


def test_auto_serves_a_candidate_that_passed_its_checks(pair_bundle):
    planned = Predictor.from_bundle(pair_bundle)
    plan = planned.plan
    for name in set(plan.serving.values()):
        assert plan.candidates[name]["passed"], plan.candidates[name]
        assert plan.candidates[name]["golden_inputs"] >= 8
    assert plan.cpu["model"] and isinstance(plan.cpu["flags"], list)
    timed = [name for name, verdict in plan.candidates.items() if "ms" in verdict]
    if len(timed) > 1 and not plan.cached:  # the chosen one is the fastest (relative mean over the shapes timed; a
        shapes = sorted({k for n in timed for k in plan.candidates[n]["ms"]})  # candidate pruned at one cannot win)
        best = {k: min(plan.candidates[m]["ms"][k] for m in timed if k in plan.candidates[m]["ms"]) for k in shapes}
        score = {n: np.mean([plan.candidates[n]["ms"].get(k, np.inf) / best[k] for k in shapes]) for n in timed}
        assert score[plan.serving[32]] == min(score.values())


def test_the_plan_is_in_model_info_and_metrics(pair_bundle):
    predictor = Predictor.from_bundle(pair_bundle, spinning=False)
    with running(create_app(predictor, ServeConfig(bundle=str(pair_bundle)), api_key="")) as url:
        info = httpx.get(f"{url}/v1/model").json()
        metrics = httpx.get(f"{url}/metrics").text
    assert info["precision"] == predictor.precision and info["plan"]["serving"] == {"32": predictor.plan.serving[32]}
    assert "flags" in info["plan"]["cpu"] and info["plan"]["ranges"][0]["lengths"] == "1-32 tokens"
    assert set(info["model_files"]) == set(predictor.model_files)
    assert f'tuneship_model_precision{{precision="{predictor.precision}"' in metrics
    assert f'tuneship_plan_candidate{{candidate="{predictor.plan.serving[32]}",max_tokens="32"}} 1.0' in metrics
    assert "/" not in info["source"]["checkpoint"], "the export machine's path is not shown"


# --------------------------------------------------------------------------- 3. bundles checked on load


@pytest.mark.parametrize("field, value, message", [
    ("task", "image-generation", "field 'task' is 'image-generation', not a task tuneship knows"),
    ("settings.labels", "notalist", "field 'settings.labels' must be a list of at least two label names"),
    ("settings.labels", ["0", "1", "2"], "field 'settings.labels' names 3 labels, but the model has 2 outputs"),
    ("input_names", ["input_ids", "oops"], "the graph's inputs are"),
    ("models.fp32.files", ["missing.onnx"], "names 'missing.onnx', which is not a file"),
])
def test_a_bad_manifest_is_one_clear_line_and_exit_2(pair_bundle, tmp_path, field, value, message):
    copy = tmp_path / "bundle"
    shutil.copytree(pair_bundle, copy)
    manifest = json.loads((copy / "tuneship.json").read_text())
    target = manifest
    *parents, last = field.split(".")
    for part in parents:
        target = target[part]
    target[last] = value
    (copy / "tuneship.json").write_text(json.dumps(manifest))
    data = write_csv(tmp_path / "d.csv", pair_rows(4))
    for command in (["predict", "--bundle", str(copy), "--text", "a", "--text-pair", "b"],
                    ["evaluate", "--bundle", str(copy), "--data", str(data)],
                    ["serve", "--bundle", str(copy), "--port", str(free_port())]):
        result = subprocess.run([TUNESHIP, *command], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, (command, result.stderr[-1000:])
        assert message in result.stderr and "tuneship.json" in result.stderr and "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- 5. text the tokenizer cannot take


def test_lone_surrogates_are_named_or_skipped(pair_bundle, tmp_path):
    predictor = Predictor.from_bundle(pair_bundle, "fp32")
    path = tmp_path / "in.jsonl"
    rows = [json.dumps(r) for r in pair_rows(3)]
    rows.insert(1, '{"sentence1": "bad \\ud800 text", "sentence2": "b", "label": 1}')
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"in.jsonl: row 2, column 'sentence1' holds text that is not valid Unicode"):
        predict_file(predictor, path, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl.partial").exists(), "a failed job leaves no empty partial file"
    written = predict_file(predictor, path, tmp_path / "out.jsonl", drop_invalid=True)
    assert len(written.read_text().splitlines()) == 3
    result = subprocess.run([TUNESHIP, "predict", "--bundle", str(pair_bundle), "--text", "caf\udce9", "--text-pair", "b"],
                            capture_output=True, text=True, timeout=120, errors="surrogateescape")
    assert result.returncode == 2 and "--text holds text that is not valid Unicode" in result.stderr


def test_training_rows_with_lone_surrogates_are_named(tmp_path):
    from tuneship.trainer.classification import load_classification_data

    rows = [{"text": f"ok {i}", "label": "a" if i % 2 else "b"} for i in range(8)]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    path.write_text(path.read_text().replace("ok 3", "bad \\ud800"))
    with pytest.raises(DataError, match=r"t.jsonl: row 4, column 'text' holds text that is not valid Unicode"):
        load_classification_data(str(path))


# --------------------------------------------------------------------------- 6. nothing silently lost in batch prediction


def test_input_columns_named_like_outputs_are_refused(pair_bundle, tmp_path):
    predictor = Predictor.from_bundle(pair_bundle, "fp32")
    rows = [{**r, "score": 0.5} for r in pair_rows(4)]
    with pytest.raises(DataError, match=r"input column\(s\) 'score' would be overwritten"):
        predict_file(predictor, write_csv(tmp_path / "in.csv", rows), tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.csv.partial").exists()


def test_jsonl_to_csv_keeps_keys_missing_from_the_first_row(pair_bundle, tmp_path):
    predictor = Predictor.from_bundle(pair_bundle, "fp32")
    rows = pair_rows(4)
    rows[2]["note"] = "only here"
    written = predict_file(predictor, write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.csv")
    import csv

    out = list(csv.DictReader(written.open(encoding="utf-8")))
    assert out[2]["note"] == "only here" and out[0]["note"] == ""


def test_duplicate_headers_deep_json_and_empty_files_are_named(pair_bundle, tmp_path, capsys):
    predictor = Predictor.from_bundle(pair_bundle, "fp32")
    twice = tmp_path / "twice.csv"
    twice.write_text("sentence1,sentence2,sentence2\na,b,c\n")
    with pytest.raises(DataError, match="the header names column\\(s\\) 'sentence2' more than once"):
        predict_file(predictor, twice, tmp_path / "o1.csv")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="deep.json: the JSON is nested too deeply to read"):
        predict_file(predictor, deep, tmp_path / "o2.csv")
    header = tmp_path / "header.csv"
    header.write_text("sentence1,sentence2\n")
    written = predict_file(predictor, header, tmp_path / "o3.csv")
    assert written.is_file() and "0 rows to predict" in capsys.readouterr().out


# --------------------------------------------------------------------------- 7. the server under long and abandoned input


def test_long_text_is_cut_before_tokenizing_and_flagged(pair_bundle):
    predictor = Predictor.from_bundle(pair_bundle, "fp32")
    megabyte = "word " * 200_000
    encodings, truncated = predictor.encoder.encode_inputs([megabyte], ["short"])
    assert truncated == [True] and len(encodings[0].ids) == predictor.manifest.max_length
    assert predictor.encoder.max_chars < len(megabyte)


def trickle(client: socket.socket, first: bytes, byte: bytes = b"x") -> tuple[bytes, float]:
    """Send `first`, then `byte` every 0.3 s, until the server answers (or 8 s pass); the answer and its time."""
    client.settimeout(0.3)
    client.sendall(first)
    started, reply = time.monotonic(), b""
    while time.monotonic() - started < 8 and not reply:
        try:
            client.sendall(byte)
            reply = client.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            break
    return reply, time.monotonic() - started


def test_a_stalled_body_gets_408(pair_bundle):
    predictor = Predictor.from_bundle(pair_bundle, "fp32", spinning=False)
    app = create_app(predictor, ServeConfig(bundle=str(pair_bundle), body_timeout_s=1.0), api_key="")
    with running(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 100\r\n\r\n{\"inputs\"")
            started = time.monotonic()
            reply = client.recv(4096).decode()
        assert reply.startswith("HTTP/1.1 408") and time.monotonic() - started < 10
        assert httpx.get(f"{url}/healthz").status_code == 200
        # a body that trickles in, a byte every 0.3 s, is timed on the whole: 408 at the deadline, then closed
        with socket.create_connection(("127.0.0.1", port)) as client:
            reply, took = trickle(client, b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                          b"Content-Length: 100\r\n\r\n", b" ")
            assert reply.startswith(b"HTTP/1.1 408") and took < 1.0 + 2.0, (reply[:80], took)
            assert b"connection: close" in reply.lower()
        # a client that leaves mid-body is counted as 499, not as a malformed request
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 100\r\n\r\n{\"inp")
        time.sleep(0.5)
        metrics = httpx.get(f"{url}/metrics").text
        assert 'status="499"' in metrics and 'status="422"' not in metrics


def test_inputs_of_a_client_that_left_are_not_run():
    import asyncio

    from tuneship.serving.batching import DynamicBatcher

    ran = []

    def run(encodings):
        ran.append(len(encodings))
        time.sleep(0.2)
        return np.zeros((len(encodings), 2), dtype=np.float32)

    class Encoding:
        ids = [1, 2, 3]

    async def scenario():
        batcher = DynamicBatcher(run, max_batch_tokens=1000, max_batch_size=1, max_wait_ms=0, max_queue=6).start()
        first = batcher.submit([Encoding()])  # runs at once, for 0.2 s
        await asyncio.sleep(0.05)
        abandoned = batcher.submit([Encoding()] * 5)
        abandoned.cancel()  # what the handler does when its client disconnects
        await asyncio.sleep(0)  # the future's callbacks run
        assert batcher.queue_depth == 0, "the abandoned inputs left the queue at once"
        kept = batcher.submit([Encoding()] * 6)  # admitted: the 5 gone inputs do not count against the queue of 6
        await first
        await kept
        batcher.close()

    asyncio.run(scenario())
    assert sum(ran) == 7, f"the abandoned request's 5 inputs ran: {ran}"


def test_a_pipelined_request_is_not_cut_off_by_the_header_deadline_while_it_runs(pair_bundle):
    from tuneship.serving.connections import guarded_protocol

    predictor = Predictor.from_bundle(pair_bundle, "fp32", spinning=False)
    run = predictor.session.run
    predictor.session.run = lambda *args: (time.sleep(1.6), run(*args))[1]  # slower than the 1 s header deadline
    app = create_app(predictor, ServeConfig(bundle=str(pair_bundle)), api_key="")
    body = json.dumps({"inputs": [{"text": "profit rose", "text_pair": "the profit went up"}]}).encode()
    with running(app, http=guarded_protocol(header_timeout_s=1.0), timeout_keep_alive=30) as url:
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as client:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" +  # two requests in one write
                           b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            client.settimeout(10)
            replies = b""
            while replies.count(b"HTTP/1.1 ") < 2:
                chunk = client.recv(65536)
                if not chunk:
                    break
                replies += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", replies)  # the second answer follows the first body directly
    assert statuses == [b"200", b"200"], replies[:600]
    assert b'"label"' in replies and b"did not arrive" not in replies


def test_slow_headers_idle_connections_and_too_many_connections_are_cut_off(pair_bundle):
    from tuneship.serving.connections import guarded_protocol

    predictor = Predictor.from_bundle(pair_bundle, "fp32", spinning=False)
    app = create_app(predictor, ServeConfig(bundle=str(pair_bundle)), api_key="")
    protocol = guarded_protocol(header_timeout_s=1.0, max_connections=20)
    with running(app, http=protocol, timeout_keep_alive=30) as url:
        port = int(url.rsplit(":", 1)[1])

        with socket.create_connection(("127.0.0.1", port)) as slow:
            reply, took = trickle(slow, b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            assert reply.startswith(b"HTTP/1.1 408") and b"headers did not arrive within 1 s" in reply
            assert took < 1.0 + 2.0 and b"connection: close" in reply
        assert httpx.get(f"{url}/healthz").status_code == 200, "a normal client is served meanwhile"

        with socket.create_connection(("127.0.0.1", port)) as idle:  # connects and sends nothing
            idle.settimeout(4)
            started = time.monotonic()
            assert idle.recv(4096).startswith(b"HTTP/1.1 408") and time.monotonic() - started < 3

        # after a keep-alive answer, the next request's headers have the same deadline
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            client.settimeout(4)
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
            reply, took = trickle(client, b"GET /healthz HTTP/1.1\r\nHo")
            assert reply.startswith(b"HTTP/1.1 408") and took < 3

        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        try:
            time.sleep(0.2)
            with socket.create_connection(("127.0.0.1", port)) as extra:
                extra.settimeout(4)
                reply = extra.recv(4096)
            assert reply.startswith(b"HTTP/1.1 503") and b"limit of 20 open connections" in reply
        finally:
            for connection in held:
                connection.close()
        time.sleep(0.3)
        assert httpx.get(f"{url}/healthz").status_code == 200, "below the cap again"


def test_an_idle_keep_alive_connection_is_closed_after_keep_alive_s(pair_bundle):
    from tuneship.serving.server import connection_options

    predictor = Predictor.from_bundle(pair_bundle, "fp32", spinning=False)
    config = ServeConfig(bundle=str(pair_bundle), keep_alive_s=1.0, header_timeout_s=10.0)
    with running(create_app(predictor, config, api_key=""), **connection_options(config)) as url:
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as client:
            client.settimeout(6)
            for _ in range(2):  # kept alive between two requests in quick succession
                client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert client.recv(4096).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert client.recv(4096) == b"", "closed, without a 408: the header deadline is 10 s"
            assert 0.5 < time.monotonic() - started < 1.0 + 2.0


# --------------------------------------------------------------------------- 8. hostile clients on a real server
# (issue #25's "done when": each on uvicorn on loopback, each bounded in time)

ONE = {"text": "profit rose", "text_pair": "the profit went up"}
JSON = {"content-type": "application/json"}


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def post_bytes(body: bytes) -> bytes:
    """A whole `POST /v1/classify` request of `body`, as a raw client sends it."""
    return (b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def first_replies(clients: list[socket.socket], seconds: float,
                  enough: int) -> dict[socket.socket, tuple[bytes, float]]:
    """The first bytes each client gets (b"" for a close) and when, until `enough` have had one or `seconds` pass."""
    got: dict[socket.socket, tuple[bytes, float]] = {}
    with selectors.DefaultSelector() as selector:
        for client in clients:
            selector.register(client, selectors.EVENT_READ)
        stop = time.monotonic() + seconds
        while len(got) < enough and time.monotonic() < stop:
            for key, _ in selector.select(max(0.0, stop - time.monotonic())):
                try:
                    data = key.fileobj.recv(4096)
                except OSError:  # reset: a close
                    data = b""
                got[key.fileobj] = (data, time.monotonic())
                selector.unregister(key.fileobj)
    return got


def queue_depth(url: str) -> int:
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    return int(float(re.search(r"^tuneship_queue_depth (\S+)$", metrics, re.M).group(1)))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("slow", ["headers", "body"])
def test_a_normal_client_is_served_while_headers_or_a_body_trickle_in(pair_bundle, slow):
    from tuneship.serving.connections import guarded_protocol

    deadline = 2.0  # for the headers and for the body
    predictor = Predictor.from_bundle(pair_bundle, "fp32", spinning=False)
    app = create_app(predictor, ServeConfig(bundle=str(pair_bundle), body_timeout_s=deadline), api_key="")
    first = (b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nX-Slow: " if slow == "headers" else
             b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    served: dict = {}

    def normal(url: str) -> None:  # another client, once the trickle is under way
        time.sleep(0.5)
        response = httpx.post(f"{url}/v1/classify", json={"inputs": [ONE]}, timeout=10)
        served.update(status=response.status_code, at=time.monotonic(), outputs=len(response.json().get("outputs", [])))

    with running(app, http=guarded_protocol(header_timeout_s=deadline), timeout_keep_alive=30) as url:
        meanwhile = threading.Thread(target=normal, args=(url,), daemon=True)
        with socket.create_connection(("127.0.0.1", port_of(url))) as trickler:
            started = time.monotonic()
            meanwhile.start()
            reply, took = trickle(trickler, first, b"x" if slow == "headers" else b" ")
            answered = time.monotonic()
            trickler.settimeout(2)
            rest = trickler.recv(4096) if reply else b""
            while rest:  # then the server closes the connection
                rest = trickler.recv(4096)
        meanwhile.join(10)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"did not arrive within 2 s" in reply and b"connection: close" in reply.lower()
    assert deadline - 0.5 < took < deadline + 2.0, took
    assert served.get("status") == 200 and served["outputs"] == 1, served
    assert started + 0.5 <= served["at"] < answered, "the normal client was answered during the trickle, before its 408"


@pytest.mark.timeout(60)
def test_200_idle_connections_past_the_cap_are_refused_and_the_rest_cut_off(pair_bundle):
    from tuneship.serving.connections import guarded_protocol

    cap, deadline = 190, 3.0
    predictor = Predictor.from_bundle(pair_bundle, "fp32", spinning=False)
    app = create_app(predictor, ServeConfig(bundle=str(pair_bundle)), api_key="")
    protocol = guarded_protocol(header_timeout_s=deadline, max_connections=cap)
    with running(app, http=protocol, timeout_keep_alive=30) as url:
        started = time.monotonic()
        idle = [socket.create_connection(("127.0.0.1", port_of(url))) for _ in range(200)]  # they send nothing
        try:
            assert time.monotonic() - started < 1.0, "all 200 were open well before the header deadline"
            refused = first_replies(idle, deadline - 0.5, enough=200 - cap)  # before any header deadline
            assert len(refused) == 200 - cap, f"{len(refused)} of 200 connections were answered at once"
            assert all(data.startswith(b"HTTP/1.1 503") and b"limit of 190 open connections" in data
                       for data, _ in refused.values()), [data[:80] for data, _ in refused.values()]
            held = [client for client in idle if client not in refused]
            cut = first_replies(held, deadline + 2.0, enough=cap)  # the header deadline closes the idle ones
            assert len(cut) == cap, f"{cap - len(cut)} idle connections still open {deadline + 2:g} s after connecting"
            assert all(data.startswith(b"HTTP/1.1 408") or data == b"" for data, _ in cut.values())
            assert max(at for _, at in cut.values()) - started < deadline + 2.0
        finally:
            for client in idle:
                client.close()
        response = httpx.post(f"{url}/v1/classify", json={"inputs": [ONE]}, timeout=10)
        assert response.status_code == 200, "a normal client is served afterwards"


@pytest.mark.timeout(120)
def test_200_inputs_of_5000_characters_get_413_naming_the_budget_or_are_answered_in_time(pair_bundle):
    predictor = Predictor.from_bundle(pair_bundle, "fp32", spinning=False)
    body = json.dumps({"inputs": [{"text": "word " * 1000, "text_pair": "b"}] * 200}).encode()  # 5,000 characters each
    limit = ServeConfig(bundle=str(pair_bundle)).max_body_bytes
    assert len(body) < limit, "under the body limit: the token budget decides"
    tokens = 200 * predictor.manifest.max_length  # each input is cut to the bundle's max length
    assert tokens == 6400
    # under a budget of 4,096 tokens: 413 naming it, before the model runs
    budget = ServeConfig(bundle=str(pair_bundle), max_request_tokens=4096)
    with running(create_app(predictor, budget, api_key="")) as url:
        started = time.monotonic()
        response = httpx.post(f"{url}/v1/classify", content=body, headers=JSON, timeout=30)
        took = time.monotonic() - started
    assert response.status_code == 413, response.text[:300]
    assert f"holds {tokens} tokens after truncation, over the budget of 4096 per request" in response.json()["error"]
    assert took < 5.0, took
    # under the default budget (32,768 tokens): every input answered, within 15 s on 2 busy cores
    with running(create_app(predictor, ServeConfig(bundle=str(pair_bundle)), api_key="")) as url:
        started = time.monotonic()
        response = httpx.post(f"{url}/v1/classify", content=body, headers=JSON, timeout=30)
        took = time.monotonic() - started
        assert httpx.post(f"{url}/v1/classify", json={"inputs": [ONE]}, timeout=10).status_code == 200
    assert response.status_code == 200 and len(response.json()["outputs"]) == 200
    assert all(output["truncated"] for output in response.json()["outputs"])
    assert took < 15.0, took


@pytest.mark.timeout(90)
def test_50_abandoned_requests_leave_the_queue_and_a_following_request_is_admitted(pair_bundle):
    predictor = Predictor.from_bundle(pair_bundle, "fp32", spinning=False)
    gate, ran, real_run = threading.Event(), [], predictor.run
    predictor.run = lambda encodings, **options: (ran.append(len(encodings)), gate.wait(30),  # counted, then held
                                                  real_run(encodings, **options))[2]
    app = create_app(predictor, ServeConfig(bundle=str(pair_bundle), max_queue=64, max_request_inputs=16), api_key="")
    answers: dict[str, httpx.Response] = {}

    def post(name: str, url: str) -> None:
        answers[name] = httpx.post(f"{url}/v1/classify", json={"inputs": [ONE]}, timeout=30)

    with running(app) as url:
        try:
            held = threading.Thread(target=post, args=("held", url), daemon=True)
            held.start()  # the worker holds this one at the gate: the model is busy
            until = time.monotonic() + 10
            while ran != [1] and time.monotonic() < until:
                time.sleep(0.02)
            assert ran == [1]
            request = post_bytes(json.dumps({"inputs": [ONE] * 16}).encode())
            clients = [socket.create_connection(("127.0.0.1", port_of(url))) for _ in range(50)]
            for client in clients:
                client.sendall(request)
            refused = first_replies(clients, 20, enough=46)  # 4 x 16 inputs fill the queue of 64; 46 get 429
            assert len(refused) == 46 and all(data.startswith(b"HTTP/1.1 429") for data, _ in refused.values())
            assert queue_depth(url) == 64
            for client in clients:  # every one leaves before its answer: 4 queued, 46 refused
                client.close()
            left = time.monotonic()
            while queue_depth(url) and time.monotonic() - left < 2:
                time.sleep(0.02)
            assert queue_depth(url) == 0, "the abandoned inputs left the queue within 2 s"
            follower = threading.Thread(target=post, args=("follower", url), daemon=True)
            follower.start()
            until = time.monotonic() + 10
            while queue_depth(url) != 1 and "follower" not in answers and time.monotonic() < until:
                time.sleep(0.02)
            assert "follower" not in answers, f"answered while the model is held: {answers['follower'].status_code}"
            assert queue_depth(url) == 1, "the 1-input request was admitted to the queue"
        finally:
            gate.set()
        held.join(30)
        follower.join(30)
        metrics = httpx.get(f"{url}/metrics").text
    assert answers["held"].status_code == 200 and answers["follower"].status_code == 200, answers
    assert ran == [1, 1], f"abandoned inputs ran: {ran}"
    assert 'tuneship_request_errors_total{path="/v1/classify",status="499"} 4.0' in metrics
    assert 'tuneship_request_errors_total{path="/v1/classify",status="429"} 46.0' in metrics


@pytest.mark.timeout(60)
def test_a_900_kb_field_name_over_http_gets_a_422_under_4_kb(pair_bundle):
    predictor = Predictor.from_bundle(pair_bundle, "fp32", spinning=False)
    attacks = {"900 KB field name": json.dumps({"inputs": [{**ONE, "k" * 900_000: 1}]}).encode(),
               "60,000 extra keys": json.dumps({"inputs": [{**ONE, **{f"x{i}": 1 for i in range(60_000)}}]}).encode()}
    with running(create_app(predictor, ServeConfig(bundle=str(pair_bundle)), api_key="")) as url:
        for name, body in attacks.items():
            assert len(body) < ServeConfig(bundle=str(pair_bundle)).max_body_bytes, name
            response = httpx.post(f"{url}/v1/classify", content=body, headers=JSON, timeout=30)
            assert response.status_code == 422 and len(response.content) < 4096, (name, len(response.content))
            error = response.json()["error"]
            assert error.startswith("inputs[0].") and "Extra inputs are not permitted" in error, error[:300]
            cut = "(900000 characters)" if name.startswith("900") else "(and 59999 more)"  # cut short, not echoed
            assert cut in error, error[:300]
        assert httpx.post(f"{url}/v1/classify", json={"inputs": [ONE]}, timeout=10).status_code == 200
