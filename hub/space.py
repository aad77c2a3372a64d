"""`write_space`: a folder ready to push as a Hugging Face Space running the Gradio demo on a bundle.

The Space carries `app.py` (tuneship's `gradio_app.py`), the bundle, the few tuneship modules that
serving needs (so nothing but `requirements.txt` has to be installed), and a README with the Space's
YAML header. No torch: the requirements are gradio, onnxruntime, tokenizers, numpy and tqdm.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

from .. import tasks
from ..bundle import BundleManifest
from ..errors import TuneshipError
from ..files import write_directory_atomically
from .cards import card_license

# What app.py imports at run time, as distributions to pin at the versions this tuneship runs with.
REQUIREMENTS = ("gradio", "onnxruntime", "tokenizers", "numpy", "tqdm")
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"  # the Python the pins were resolved on


def _app_file() -> Path:
    import gradio_app

    return Path(gradio_app.__file__)


def _copy_serving_code(folder: Path) -> None:
    """The light root package (stdlib and numpy: data, metrics, tasks) and `serving`, as `tuneship/` in the Space."""
    import tuneship
    import tuneship.serving

    roots = {Path(tuneship.__file__).parent: folder / "tuneship",
             Path(tuneship.serving.__file__).parent: folder / "tuneship" / "serving"}
    for source, target in roots.items():
        for path in source.rglob("*.py"):
            if "__pycache__" in path.parts or (source == Path(tuneship.__file__).parent and path.parent != source
                                               and path.parent.name not in ("data", "metrics")):
                continue
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)


def requirements() -> str:
    lines = [f"{name}=={importlib.metadata.version(name)}" for name in REQUIREMENTS]
    return "\n".join(lines) + "\n"


def space_card(bundle: Path, manifest: BundleManifest, title: str) -> str:
    """The Space README (`huggingface_hub.SpaceCard`): its metadata (sdk and its version, the Python version the
    requirements were pinned on, app_file, title, license), then what the demo does."""
    import gradio
    from huggingface_hub import SpaceCard, SpaceCardData

    license_name = card_license(bundle / "README.md") or "apache-2.0"
    task = tasks.get(manifest.task)
    settings = manifest.task_settings(task.stage("serving").Settings)
    demo = task.demo
    labels = getattr(settings, "labels", None)
    short = f"{manifest.task}{f' ({chr(44).join(labels)})' if labels else ''} on CPU with onnxruntime"
    call = ", ".join(f'"<{c}>"' for c in settings.input_columns) + f', api_name="/{demo.api_name}"'
    data = SpaceCardData(
        title=title, sdk="gradio", sdk_version=gradio.__version__, app_file="app.py", license=license_name,
        python_version=PYTHON_VERSION,
        tags=["tuneship", "onnx", manifest.task], emoji="🚢", colorFrom="blue", colorTo="green", pinned=False,
        short_description=short)
    body = "\n".join([
        f"# {title}",
        "",
        f"{manifest.task} ({task.description}{f': {chr(44).join(labels)}' if labels else ''}), with the "
        f"{manifest.default_precision} ONNX model of a bundle exported by [tuneship](https://github.com/tuneship/tuneship), "
        "on onnxruntime (no torch).",
        "",
        *[f"- {view}" for view in demo.views],
        "",
        f"From Python: `gradio_client.Client(URL).predict({call})`. The bundle (manifest, models, tokenizer, "
        "model card) is in `bundle/`.",
        "",
    ])
    return SpaceCard(f"---\n{data.to_yaml()}\n---\n\n{body}").content


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
        shutil.copytree(bundle, folder / "bundle", ignore=shutil.ignore_patterns(".*"))  # not the plan cache of this CPU
        _copy_serving_code(folder)
        (folder / "requirements.txt").write_text(requirements(), encoding="utf-8")
        (folder / "README.md").write_text(space_card(bundle, manifest, title), encoding="utf-8")

    write_directory_atomically(output, write)
    return output
