"""Past one machine on Ray: batch prediction on Ray Data and replicas on Ray Serve, on a local Ray cluster (loopback)."""

from __future__ import annotations

import json
import os
import socket

import httpx
import pytest

from tests.conftest import pair_rows, write_csv, write_jsonl

ray = pytest.importorskip("ray", reason="the `ray` extra is not installed")


@pytest.fixture(scope="module")
def cluster():
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             configure_logging=False)
    yield
    ray.shutdown()


def local_predictions(bundle, path, tmp_path) -> list[dict]:
    from tuneship.serving import Predictor, predict_file

    out = predict_file(Predictor.from_bundle(bundle, "fp32"), path, tmp_path / f"local-{path.stem}.jsonl")
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_ray_data_predicts_a_csv_and_a_parquet_folder_like_the_local_path(cluster, pair_bundle, tmp_path):
    import pyarrow.parquet as pq

    from tuneship.serving.ray_data import predict_to_folder

    rows = pair_rows(30)
    csv_file = write_csv(tmp_path / "in.csv", rows)
    folder = tmp_path / "parquet"
    folder.mkdir()
    import pyarrow as pa

    for part in range(3):
        pq.write_table(pa.Table.from_pylist(rows[part * 10 : part * 10 + 10]), folder / f"part-{part}.parquet")
    expected = local_predictions(pair_bundle, csv_file, tmp_path)
    for source, name in ((csv_file, "from-csv"), (folder, "from-parquet")):
        done = predict_to_folder(pair_bundle, source, tmp_path / name, precision="fp32", actors=2, batch_size=8)
        assert done["rows"] == 30 and done["skipped"] == 0
        got = pq.read_table(tmp_path / name).to_pylist()
        assert [g["predicted_label"] for g in got] == [e["predicted_label"] for e in expected]
        for g, e in zip(got, expected):
            assert g["probability_1"] == pytest.approx(e["probability_1"], abs=1e-6)
            assert str(g["sentence1"]) == str(e["sentence1"])
    assert not list(tmp_path.glob(".*partial*")), "nothing half-written beside the output"


def test_ray_data_names_a_bad_row_or_skips_it(cluster, pair_bundle, tmp_path):
    from tuneship.errors import DataError
    from tuneship.serving.ray_data import predict_to_folder

    rows = pair_rows(6)
    rows[3] = {"sentence1": "only one text", "label": 1}
    source = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=r"bad.jsonl: row 4, column 'sentence2' is empty or missing \(1 row"):
        predict_to_folder(pair_bundle, source, tmp_path / "out", precision="fp32")
    assert not (tmp_path / "out").exists()
    done = predict_to_folder(pair_bundle, source, tmp_path / "out", precision="fp32", drop_invalid=True,
                             output_format="jsonl")
    assert done == {"rows": 5, "skipped": 1, "files": 1, "output": str(tmp_path / "out")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_serve_replicas_answer_like_the_single_server(cluster, pair_bundle, monkeypatch):
    from ray import serve

    from tuneship.serving.config import ServeConfig
    from tuneship.serving.ray_serve import build_app

    monkeypatch.setenv("TUNESHIP_API_KEY", "s3cret")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_app(ServeConfig(bundle=str(pair_bundle), precision="fp32"), replicas=2), name="tuneship",
                  route_prefix="/")
        url, auth = f"http://127.0.0.1:{port}", {"Authorization": "Bearer s3cret"}
        body = {"inputs": [{"text": "the cat sat on mat 3", "text_pair": "a cat was on the mat 3"}]}
        answer = httpx.post(f"{url}/v1/classify", json=body, headers=auth, timeout=60)
        assert answer.status_code == 200 and answer.json()["outputs"][0]["label"] in ("0", "1")
        assert httpx.post(f"{url}/v1/classify", json=body, timeout=60).status_code == 401
        bad = httpx.post(f"{url}/v1/classify", json={"inputs": [{"text": "no pair"}]}, headers=auth, timeout=60)
        assert bad.status_code == 422 and "inputs[0].text_pair" in bad.json()["error"]
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
        status = serve.status().applications["tuneship"].deployments["tuneship"]
        assert status.replica_states.get("RUNNING") == 2
    finally:
        serve.shutdown()


def test_app_builder_reads_serve_run_string_arguments_and_names_bad_ones():
    from tuneship.errors import TuneshipError
    from tuneship.serving.ray_serve import serve_config

    config = serve_config({"bundle": "b", "threads": "2", "max_batch_tokens": "4096", "access_log": "true"})
    assert (config.threads, config.max_batch_tokens, config.access_log) == (2, 4096, True)
    assert serve_config({"bundle": "b", "threads": 3}).threads == 3  # a config file's typed value passes through
    with pytest.raises(TuneshipError, match=r"threads='two' is not an int"):
        serve_config({"bundle": "b", "threads": "two"})
    with pytest.raises(TuneshipError, match=r"unknown option 'thread'"):
        serve_config({"bundle": "b", "thread": "2"})
