"""`tuneship space`: the folder's contents, and the Space started in its own fresh virtual environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tuneship.errors import TuneshipError
from tuneship.hub import write_space

TUNESHIP = str(Path(sys.executable).with_name("tuneship"))


@pytest.fixture(scope="module")
def space(pair_bundle, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("space") / "tiny-pairs-space"
    result = subprocess.run([TUNESHIP, "space", "--bundle", str(pair_bundle), "--output", str(output)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return output


def test_space_folder_has_app_requirements_card_and_bundle(space, pair_bundle):
    assert (space / "app.py").read_text() == (Path(__file__).resolve().parents[2] / "gradio_app.py").read_text()
    requirements = (space / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in requirements} == {"gradio", "onnxruntime", "tokenizers", "numpy", "tqdm"}
    assert not any(name in " ".join(requirements) for name in ("torch", "transformers", "optimum"))
    card = (space / "README.md").read_text()
    header = card.split("---")[1]
    for line in ("sdk: gradio", "app_file: app.py", f"title: {pair_bundle.name}", "license: apache-2.0",
                 f"python_version: '{sys.version_info.major}.{sys.version_info.minor}'"):
        assert f"\n{line}\n" in header
    from huggingface_hub import SpaceCard

    data = SpaceCard(card).data  # the Hub's own reader
    assert data.sdk == "gradio" and data.python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    shipped = sorted(p.name for p in pair_bundle.iterdir() if not p.name.startswith("."))  # not this CPU's plan cache
    assert sorted(p.name for p in (space / "bundle").iterdir()) == shipped
    assert (space / "tuneship" / "serving" / "classification.py").is_file()


def test_space_refuses_to_overwrite(space, pair_bundle):
    with pytest.raises(TuneshipError, match="already exists; pass --overwrite"):
        write_space(pair_bundle, space)
    with pytest.raises(TuneshipError, match="outside the bundle"):
        write_space(pair_bundle, pair_bundle / "space")


@pytest.mark.slow
def test_space_runs_in_a_fresh_virtual_environment(space, tmp_path):
    """Only `requirements.txt` is installed (from the package index, or pip's cache): no tuneship, no torch."""
    from gradio_client import Client

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(space / "requirements.txt")],
                             capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stderr[-3000:]
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k != "TUNESHIP_BUNDLE"}, "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": ""}
    log = open(tmp_path / "app.log", "w")
    app = subprocess.Popen([str(venv / "bin" / "python"), "app.py"], cwd=space, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 180
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # noqa: BLE001 - not listening yet
                assert app.poll() is None and time.time() < deadline, (tmp_path / "app.log").read_text()[-3000:]
                time.sleep(1)
        label, note = client.predict("the cat sat on mat 3", "a cat was on the mat 3", api_name="/classify")
        assert label["label"] in ("0", "1") and note.endswith(" ms")
        from huggingface_hub import SpaceCard

        version = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True).stdout.strip()
        assert version == SpaceCard.load(space / "README.md").data.python_version, "the Python the card names"
        listed = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=freeze"], capture_output=True, text=True).stdout
        assert "torch==" not in listed and "transformers==" not in listed and "tuneship" not in listed
    finally:
        app.terminate()
        app.wait(timeout=30)
