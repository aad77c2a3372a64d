"""`tuneship push` against a stand-in Hub on loopback.

The real Hub is unreachable from here, so these tests point `HF_ENDPOINT` at a small HTTP server that
answers the requests huggingface_hub makes for `create_repo` + `create_commit` (repo creation,
model-card validation, preupload, the Git LFS batch API and upload, the NDJSON commit) and records them. They check what the
command sends; they cannot check what the real Hub would accept beyond that protocol.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tuneship.errors import TuneshipError
from tuneship.hub import plan_push
from tuneship.hub.cards import card_license, with_license

TOKEN = "hf_standInSecret1234567890"
TUNESHIP = str(Path(sys.executable).with_name("tuneship"))
LFS_SUFFIXES = (".onnx", ".safetensors", ".bin", ".png")


class StandInHub(ThreadingHTTPServer):
    """Records every request; `status` forces an error answer (e.g. 401) on repo creation."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.requests: list[tuple[str, str, dict]] = []
        self.repos: dict[str, dict] = {}
        self.lfs: dict[str, bytes] = {}
        self.commits: list[list[dict]] = []
        self.validated: list[str] = []
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class HubHandler(BaseHTTPRequestHandler):
    server: StandInHub

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def _reply(self, payload: dict, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_PUT(self):
        body = self._body()
        self.server.requests.append(("PUT", self.path, {k.lower(): v for k, v in self.headers.items()}))
        oid = self.path.rsplit("/", 1)[-1]
        assert hashlib.sha256(body).hexdigest() == oid
        self.server.lfs[oid] = body
        self._reply({})

    def do_POST(self):
        body = self._body()
        hub = self.server
        hub.requests.append(("POST", self.path, {k.lower(): v for k, v in self.headers.items()}))
        path = self.path.split("?")[0]
        if path == "/api/repos/create":
            if hub.status != 200:
                return self._reply({"error": "Invalid credentials in Authorization header"}, hub.status)
            request = json.loads(body)
            repo_id = f"{request.get('organization') or 'stand-in-user'}/{request['name']}"
            hub.repos[repo_id] = request
            return self._reply({"url": f"{hub.url}/{repo_id}", "name": repo_id})
        if path == "/api/validate-yaml":  # the Hub checks a README's YAML header before the commit
            hub.validated.append(json.loads(body)["content"])
            return self._reply({"errors": [], "warnings": []})
        if path.endswith("/preupload/main"):
            files = json.loads(body)["files"]
            return self._reply({"files": [{"path": f["path"], "shouldIgnore": False,
                                           "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular"}
                                          for f in files]})
        if path.endswith(".git/info/lfs/objects/batch"):
            objects = json.loads(body)["objects"]
            return self._reply({"transfer": "basic", "objects": [
                {**o, "authenticated": True, "actions": {"upload": {"href": f"{hub.url}/lfs-upload/{o['oid']}"}}}
                for o in objects]})
        if path.endswith("/commit/main"):
            hub.commits.append([json.loads(line) for line in body.decode().splitlines() if line.strip()])
            repo_id = path.split("/api/models/")[1].rsplit("/commit/", 1)[0]
            return self._reply({"commitUrl": f"{hub.url}/{repo_id}/commit/{'a' * 40}", "commitOid": "a" * 40})
        self._reply({"error": f"stand-in Hub does not know {path}"}, 404)


@pytest.fixture
def hub():
    server = StandInHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def run_push(*args: str, hub: StandInHub | None = None, token: str | None = TOKEN, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1")
    if hub:
        env["HF_ENDPOINT"] = hub.url
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([TUNESHIP, "push", *args], capture_output=True, text=True, timeout=300, env=env)


def test_push_a_bundle_creates_the_repo_and_uploads_every_file(hub, pair_bundle, tmp_path):
    result = run_push("--bundle", str(pair_bundle), "--repo-id", "tester/tiny-pairs-onnx", "--private",
                      hub=hub, home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"published: {hub.url}/tester/tiny-pairs-onnx" in result.stdout
    assert hub.repos["tester/tiny-pairs-onnx"]["private"] is True
    assert all(headers.get("authorization") == f"Bearer {TOKEN}"
               for method, path, headers in hub.requests if path.startswith("/api/"))

    (commit,) = hub.commits
    header = next(item["value"] for item in commit if item["key"] == "header")
    assert header["summary"] == "Upload bundle with tuneship"
    regular = {item["value"]["path"]: base64.b64decode(item["value"]["content"]) for item in commit if item["key"] == "file"}
    lfs = {item["value"]["path"]: item["value"]["oid"] for item in commit if item["key"] == "lfsFile"}
    expected = {p.relative_to(pair_bundle).as_posix() for p in pair_bundle.rglob("*")
                if p.is_file() and not p.name.startswith(".")}  # a served bundle's plan cache is not published
    assert set(regular) | set(lfs) == expected
    assert {"model.onnx", "model_quantized.onnx"} <= set(lfs)
    for name, oid in lfs.items():
        assert hub.lfs[oid] == (pair_bundle / name).read_bytes()
    assert regular["tuneship.json"] == (pair_bundle / "tuneship.json").read_bytes()
    # upload_folder has the Hub check the card's YAML (huggingface_hub 0.36 asks twice, with the same card).
    assert b"license: apache-2.0" in regular["README.md"] and set(hub.validated) == {regular["README.md"].decode()}
    assert TOKEN not in result.stdout + result.stderr


def test_dry_run_lists_files_and_sends_nothing(hub, pair_checkpoint, tmp_path):
    result = run_push("--model", str(pair_checkpoint), "--repo-id", "tiny", "--dry-run", hub=hub, token=None,
                      home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "would upload" in result.stdout and "model.safetensors" in result.stdout and "config.json" in result.stdout
    assert not any(name.startswith("checkpoint-") for name in result.stdout.split())
    assert hub.requests == []
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    held = [name for name in ("validation.jsonl", "calibration.jsonl", "training_args.bin") if (pair_checkpoint / name).exists()]
    assert held and not set(held) & set(listed), "the user's data and the pickle are not published by default"
    left_out = next(line for line in result.stdout.splitlines() if line.startswith("left out, as your own data: "))
    assert all(name in left_out for name in held) and "--include-data publishes them" in left_out
    assert "tiny will be a PUBLIC repository" in result.stdout

    everything = run_push("--model", str(pair_checkpoint), "--repo-id", "tiny", "--dry-run", "--include-data",
                          "--private", hub=hub, token=None, home=tmp_path)
    assert everything.returncode == 0 and "PUBLIC" not in everything.stdout and "left out" not in everything.stdout
    assert set(held) <= {line.split()[0] for line in everything.stdout.splitlines() if line.startswith("  ")}


def test_errors_are_clear_and_never_show_the_token(hub, pair_bundle, tmp_path):
    result = run_push("--bundle", str(pair_bundle), "--repo-id", "tiny", hub=hub, token=None, home=tmp_path)
    assert result.returncode == 2 and "no Hugging Face token: set HF_TOKEN" in result.stderr

    hub.status = 401
    result = run_push("--bundle", str(pair_bundle), "--repo-id", "tiny", hub=hub, home=tmp_path)
    assert result.returncode == 2 and "push to tiny failed" in result.stderr and "Traceback" not in result.stderr
    assert TOKEN not in result.stdout + result.stderr

    result = run_push("--bundle", str(pair_bundle), "--repo-id", "not a/valid/name", hub=hub, home=tmp_path)
    assert result.returncode == 2 and "use NAME or OWNER/NAME" in result.stderr
    result = run_push("--bundle", str(pair_bundle), "--repo-id", "owner/double--dash", hub=hub, home=tmp_path)
    assert result.returncode == 2 and "Cannot have -- or .." in result.stderr, "the Hub's own rules"
    result = run_push("--model", str(tmp_path), "--repo-id", "tiny", hub=hub, home=tmp_path)
    assert result.returncode == 2 and "no model.safetensors or pytorch_model.bin; give a checkpoint" in result.stderr


def test_a_card_without_license_needs_one(pair_bundle, tmp_path):
    folder = tmp_path / "bundle"
    folder.mkdir()
    for name in ("tuneship.json", "model.onnx"):
        (folder / name).write_bytes((pair_bundle / name).read_bytes())
    (folder / "README.md").write_text("# A card\n", encoding="utf-8")
    with pytest.raises(TuneshipError, match="has no license; pass --license"):
        plan_push(folder, "tiny", "bundle")
    plan = plan_push(folder, "tiny", "bundle", license_name="mit")
    card = plan.files["README.md"].decode()
    assert card.startswith("---\nlicense: mit\n---\n# A card")
    assert card_license(pair_bundle / "README.md") == "apache-2.0"
    # huggingface_hub's ModelCard keeps the header's key order: the license is replaced where it stands.
    assert with_license("---\nlicense: mit\ntags:\n- x\n---\nbody", "apache-2.0") == "---\nlicense: apache-2.0\ntags:\n- x\n---\nbody"


def test_a_bundle_card_is_onnx_and_push_links_it_to_its_checkpoint_as_quantized(pair_bundle, pair_checkpoint, tmp_path):
    from huggingface_hub import ModelCard

    card = ModelCard.load(pair_bundle / "README.md").data
    assert card.library_name == "onnx" and card.base_model is None, "no transformers snippet, no wrong parent"
    plan = plan_push(pair_bundle, "tester/tiny-onnx", "bundle", base_model="tester/tiny")
    pushed = ModelCard(plan.files["README.md"].decode()).data
    assert pushed.base_model == "tester/tiny" and pushed.base_model_relation == "quantized"
    assert pushed.license == "apache-2.0" and pushed.library_name == "onnx"
    assert "base_model" not in (pair_bundle / "README.md").read_text(), "the user's folder is left as it is"
    with pytest.raises(TuneshipError, match="--base-model is for a bundle"):
        plan_push(pair_checkpoint, "tester/tiny", "model", base_model="tester/base")
    with pytest.raises(TuneshipError, match="use OWNER/NAME"):
        plan_push(pair_bundle, "tester/tiny-onnx", "bundle", base_model="not a repo")
    result = run_push("--bundle", str(pair_bundle), "--repo-id", "tiny", "--dry-run", token=None, home=tmp_path)
    assert "names no base model; pass --base-model" in result.stdout
