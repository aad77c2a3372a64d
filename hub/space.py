"""`write_space`: a folder ready to push as a Hugging Face Space running the Gradio demo on a bundle.

The Space carries `app.py` (tuneship's `gradio_app.py`), the bundle, the few tuneship modules that
serving needs (so nothing but `requirements.txt` has to be installed), and a README with the Space's
YAML header. No torch: the requirements are gradio, onnxruntime, tokenizers, numpy and tqdm.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

from ..errors import TuneshipError
from ..files import write_directory_atomically
from ..serving.manifest import QUESTION_ANSWERING, BundleManifest
from .cards import card_license

# What app.py imports at run time, as distributions to pin at the versions this tuneship runs with.
REQUIREMENTS = ("gradio", "onnxruntime", "tokenizers", "numpy", "tqdm")


def _app_file() -> Path:
    import gradio_app

    return Path(gradio_app.__file__)


def _copy_serving_code(folder: Path) -> None:
    import tuneship
    import tuneship.serving

    package = folder / "tuneship"
    (package / "serving").mkdir(parents=True)
    for source in Path(tuneship.__file__).parent.glob("*.py"):  # the light shared modules (stdlib and numpy only)
        shutil.copy2(source, package / source.name)
    for source in Path(tuneship.serving.__file__).parent.glob("*.py"):
        shutil.copy2(source, package / "serving" / source.name)


def requirements() -> str:
    lines = [f"{name}=={importlib.metadata.version(name)}" for name in REQUIREMENTS]
    return "\n".join(lines) + "\n"


def space_card(bundle: Path, manifest: BundleManifest, title: str) -> str:
    """The Space README: YAML header (sdk, app_file, title, license), then what the demo does."""
    import gradio

    license_name = card_license(bundle / "README.md") or "apache-2.0"
    qa = manifest.task == QUESTION_ANSWERING
    labels = ", ".join(manifest.labels)
    inputs = (f"{manifest.columns.text} and {manifest.columns.text_pair}" if manifest.columns.is_pair
              else manifest.columns.text)
    what = ("Answers a question with a span of its context" if qa else f"Classifies {inputs} into {labels}")
    views = (["- **Answer**: a question and a context in, the answer highlighted in its context, with its score "
              "and the latency of the call."] if qa else [
        "- **Classify**: the prediction with every class probability, and the latency of the call.",
        "- **Compare**: the same input through each of the bundle's models, and a short benchmark.",
        "- **Batch**: upload a CSV or JSON Lines file, download the predictions."])
    arguments = ["question", "context"] if qa else [c for c in (manifest.columns.text, manifest.columns.text_pair) if c]
    call = ", ".join(f'"<{a}>"' for a in arguments) + f', api_name="/{"answer" if qa else "classify"}"'

    return "\n".join([
        "---",
        f"title: {title}",
        "emoji: 🚢",
        "colorFrom: blue",
        "colorTo: green",
        "sdk: gradio",
        f"sdk_version: {gradio.__version__}",
        "app_file: app.py",
        "pinned: false",
        f"license: {license_name}",
        f"short_description: {manifest.task}{'' if qa else f' ({labels})'} on CPU with onnxruntime",
        "tags:",
        "- tuneship",
        "- onnx",
        f"- {manifest.task}",
        "---",
        "",
        f"# {title}",
        "",
        f"{what}, with the {manifest.default_precision} ONNX model of a bundle exported "
        "by [tuneship](https://github.com/tuneship/tuneship), on onnxruntime (no torch).",
        "",
        *views,
        "",
        f"From Python: `gradio_client.Client(URL).predict({call})`. The bundle (manifest, models, tokenizer, "
        "model card) is in `bundle/`.",
        "",
    ])


def write_space(bundle: str | Path, output: str | Path, title: str | None = None, overwrite: bool = False) -> Path:
    """Write a Hugging Face Space folder for `bundle` into `output` (atomically) and return it.

    Example:
        >>> write_space("runs/relevance-minilm-onnx", "runs/relevance-space")  # doctest: +SKIP
        PosixPath('runs/relevance-space')
    """
    bundle, output = Path(bundle), Path(output)
    manifest = BundleManifest.load(bundle)
    if output.exists() and not overwrite:
        raise TuneshipError(f"{output} already exists; pass --overwrite to replace it")
    if output.resolve() == bundle.resolve() or bundle.resolve() in output.resolve().parents:
        raise TuneshipError(f"{output}: write the Space outside the bundle folder")
    title = title or bundle.name

    def write(folder: Path) -> None:
        shutil.copy2(_app_file(), folder / "app.py")
        shutil.copytree(bundle, folder / "bundle")
        _copy_serving_code(folder)
        (folder / "requirements.txt").write_text(requirements(), encoding="utf-8")
        (folder / "README.md").write_text(space_card(bundle, manifest, title), encoding="utf-8")

    write_directory_atomically(output, write)
    return output
