"""tuneship's Gradio demo of an exported bundle: classify (compare with PyTorch, predict a whole file), answer
questions or summarize, whichever task the bundle serves.

    python gradio_app.py --bundle runs/relevance-minilm-onnx [--model runs/relevance-minilm] [--share]

Without --bundle, the bundle comes from $TUNESHIP_BUNDLE or from a `bundle/` folder beside this file
(how the Hugging Face Space written by `tuneship space` runs). Inference goes through
`tuneship.serving` (onnxruntime and tokenizers, no torch); torch is loaded only when a checkpoint is
given for the comparison tab.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import logging
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import gradio as gr

from tuneship import tasks
from tuneship.cli import RENAMED_FLAGS, renamed_flags
from tuneship.data.records import RecordReader, check_text
from tuneship.errors import DataError, TuneshipError
from tuneship.log import get_logger
from tuneship.serving import BundleManifest, Predictor, predict_file
from tuneship.serving.classification import Settings

logger = get_logger("tuneship.demo")
BUNDLE_VARIABLE = "TUNESHIP_BUNDLE"
BUNDLE_FOLDER = "bundle"  # beside app.py in a Space
QUEUE_SIZE = 64  # requests waiting beyond this get "queue full" instead of an ever longer wait
CONCURRENCY = 2  # requests run at once; each model call already uses every core
OUTPUT_SUFFIXES = {".csv": ".csv", ".tsv": ".tsv"}  # other inputs get JSON Lines predictions
PREVIEW_ROWS = 10  # predictions shown under the Batch tab's download


@dataclass
class DemoModels:
    """A bundle's ONNX models (and the PyTorch checkpoint, when given), loaded once and shared by all requests."""

    bundle: Path
    manifest: BundleManifest
    models: dict  # display name -> classifier with `predict(texts, text_pairs)`
    default: str

    @classmethod
    def load(cls, bundle: str | Path, checkpoint: str | Path | None = None, threads: int | None = None) -> "DemoModels":
        manifest = BundleManifest.load(bundle, tasks.CLASSIFICATION)
        # the plan: what serve would serve on this CPU
        planned = Predictor.from_bundle(bundle, "auto", threads, manifest=manifest)
        models = {f"ONNX plan ({planned.plan.label})": planned}
        for precision in ("fp32", "int8"):  # each of onnxruntime's models on its own, to compare with
            if precision in manifest.models:
                verdict = planned.plan.candidates.get(f"onnxruntime-{precision}", {})
                with _plan_warnings_muted():  # nobody asked for it: "as asked, though ..." would be untrue here
                    models[f"ONNX {precision}"] = Predictor.from_bundle(bundle, precision, threads,
                                                                           runtime="onnxruntime", manifest=manifest)
                if verdict and not verdict.get("passed"):
                    logger.info(f"Compare: ONNX {precision} is shown for comparison; the plan does not serve it here "
                                f"({verdict.get('reason')})")
        if checkpoint:
            models["PyTorch fp32"] = tasks.get(tasks.CLASSIFICATION).stage("trainer").from_checkpoint(checkpoint)
        return cls(Path(bundle), manifest, models, next(iter(models)))

    @property
    def settings(self) -> Settings:
        return self.models[self.default].settings

    @property
    def is_pair(self) -> bool:
        return self.settings.columns.is_pair

    def examples(self) -> list[list[str]]:
        return self.manifest.examples(self.bundle, self.settings.input_columns)


@contextlib.contextmanager
def _plan_warnings_muted():
    """The serving plan's warnings left out while the demo loads a model of its own accord (for Compare)."""
    plan_logger = logging.getLogger("tuneship.serving.plan")
    level = plan_logger.level
    plan_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        plan_logger.setLevel(level)


def _invalid_message(**boxes: str | None) -> str | None:
    """A note naming the box whose text is not valid Unicode (a lone surrogate, which the tokenizer cannot take)."""
    for name, text in boxes.items():
        try:
            check_text(text or "", name)
        except DataError:
            return f"The text in **{name}** is not valid Unicode (it holds a lone surrogate); fix or retype it."
    return None


def _empty_message(models: DemoModels, text: str | None, pair: str | None) -> str | None:
    """A friendly note when an input box is empty or holds text the tokenizer cannot take, else None."""
    columns = models.settings.columns
    if not (text or "").strip():
        return f"Type some text in **{columns.text}** first."
    if models.is_pair and not (pair or "").strip():
        return f"This model reads pairs: type some text in **{columns.text_pair}** too."
    return _invalid_message(**{columns.text: text, **({columns.text_pair: pair} if models.is_pair else {})})


def card_text(bundle: Path) -> str | None:
    """The body of the bundle's model card (`README.md`, its YAML metadata left out), or None without one."""
    path = bundle / "README.md"
    if not path.is_file():
        return None
    from huggingface_hub import ModelCard  # a dependency of gradio's

    return IMAGE.sub(lambda found: _inline_image(bundle, found), ModelCard.load(path).text)


IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")  # ![alt](file) in Markdown


def _inline_image(bundle: Path, found: re.Match) -> str:
    """A card's image as a data URI (the page serves no file of the bundle), or nothing when the bundle lacks it."""
    alt, target = found.groups()
    if "://" in target:
        return found.group(0)
    path = bundle / target
    if not (path.is_file() and path.suffix.lower() == ".png"):
        return ""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


def card_section(bundle: Path, as_tab: bool = False) -> None:
    """The model card, in the page (a Space or a shared link has no other way to it): a tab or a closed accordion."""
    text = card_text(bundle)
    if text:
        with gr.Tab("Model card") if as_tab else gr.Accordion("Model card", open=False):
            gr.Markdown(text, elem_id="model-card")


def _timed_predict(model, text: str, pair: str | None) -> tuple[dict, float]:
    started = time.perf_counter()
    prediction = model.predict([text], None if pair is None else [pair])[0]
    return prediction, 1000 * (time.perf_counter() - started)


def _benchmark_rows(models: DemoModels, batch_size: int, seconds: float) -> list[list]:
    """Median latency and throughput of each model on a batch of the bundle's examples, taking turns."""
    examples = models.examples() or [["benchmark input", "benchmark input"]]
    batch = [examples[i % len(examples)] for i in range(batch_size)]
    texts = [row[0] for row in batch]
    pairs = [row[1] for row in batch] if models.is_pair else None
    times: dict[str, list[float]] = {name: [] for name in models.models}
    for model in models.models.values():
        model.predict(texts, pairs)  # warm-up
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or min(len(t) for t in times.values()) < 3:
        for name, model in models.models.items():
            started = time.perf_counter()
            model.predict(texts, pairs)
            times[name].append(time.perf_counter() - started)
    rows = []
    for name, values in times.items():
        median = sorted(values)[len(values) // 2]
        rows.append([name, round(1000 * median, 2), round(batch_size / median, 1)])
    return rows


def build_demo(models: DemoModels) -> gr.Blocks:
    """The app's layout and events; `launch()` is left to the caller (tests, `main`, a Space)."""
    import pandas as pd

    manifest, columns, labels = models.manifest, models.settings.columns, models.settings.labels
    default = models.models[models.default]

    def read_inputs(text_box: gr.Textbox, pair_box: gr.Textbox | None) -> list:
        return [text_box] if pair_box is None else [text_box, pair_box]

    def input_boxes() -> tuple[gr.Textbox, gr.Textbox | None]:
        with gr.Row():
            text_box = gr.Textbox(label=columns.text, lines=4, placeholder=f"{columns.text} ...")
            pair_box = (gr.Textbox(label=columns.text_pair, lines=4, placeholder=f"{columns.text_pair} ...")
                        if models.is_pair else None)
        return text_box, pair_box

    def classify(text: str, pair: str | None = None):
        message = _empty_message(models, text, pair)
        if message:
            return None, message
        prediction, ms = _timed_predict(default, text, pair)
        note = f"{models.default} · {ms:.1f} ms" + (" · input truncated" if prediction["truncated"] else "")
        return prediction["probabilities"], note

    def compare(text: str, pair: str | None = None):
        message = _empty_message(models, text, pair)
        if message:
            return None, message
        rows = []
        for name, model in models.models.items():
            prediction, ms = _timed_predict(model, text, pair)
            rows.append([name, prediction["label"], round(prediction["score"], 4), round(ms, 2)])
        return pd.DataFrame(rows, columns=["model", "label", "score", "latency (ms)"]), ""

    def benchmark(batch_size: float):
        rows = _benchmark_rows(models, int(batch_size), seconds=2.0)
        table = pd.DataFrame(rows, columns=["model", "latency per batch (ms)", "inputs/s"])
        top = float(table["inputs/s"].max()) * 1.1 if len(table) else 1.0
        return gr.BarPlot(value=table, y_lim=[0, top]), table  # the axis from 0: bar heights compare as ratios

    def predict_upload(path: str | None):
        if not path:
            return None, "Upload a CSV, TSV, JSON Lines, JSON or Parquet file first.", None
        source = Path(path)
        output = Path(tempfile.mkdtemp(prefix="tuneship-")) / (
            f"{source.stem}-predictions{OUTPUT_SUFFIXES.get(source.suffix.lower(), '.jsonl')}")
        try:
            written = predict_file(default, source, output)
        except TuneshipError as error:  # one line in the note, naming the file and row (the upload folder left out)
            return None, f"**Could not predict {source.name}:** {str(error).replace(str(source.parent) + os.sep, '')}", \
                None
        # read back as every input is read (a label "0" stays the text "0"), the first rows only
        preview = pd.DataFrame([record.values for record in islice(RecordReader(written), PREVIEW_ROWS)])
        answers = [c for c in preview.columns if c.startswith(("predicted_", "score"))]  # in view before long texts
        preview = preview[answers + [c for c in preview.columns if c not in answers]]
        return str(written), f"Predicted every row of **{source.name}** with {models.default}; the first " \
            f"{min(len(preview), PREVIEW_ROWS)} below.", preview

    with gr.Blocks(title=f"tuneship: {models.bundle.name}") as demo:
        gr.Markdown(f"# {models.bundle.name}\n{manifest.task} · labels: {', '.join(labels)} · "
                    f"served by {models.default}, exported with tuneship")
        with gr.Tab("Classify"):
            text_box, pair_box = input_boxes()
            button = gr.Button("Classify", variant="primary")
            label = gr.Label(num_top_classes=len(labels), label="Prediction")
            note = gr.Markdown(elem_id="latency")
            gr.Markdown("Each score is the model's probability for that label (the softmax of its outputs): a ranking "
                        "of the labels for this input, not a calibrated chance of being right." +
                        (" The **Model card** tab has the model's validation figures and limits."
                         if card_text(models.bundle) else ""))
            button.click(classify, read_inputs(text_box, pair_box), [label, note],
                         api_name=tasks.get(tasks.CLASSIFICATION).demo.api_name)
            examples = models.manifest.examples(models.bundle, [*models.settings.input_columns, "expected"])
            if examples and all(row[-1] for row in examples):  # each with the validation file's label
                expected = gr.Textbox(label="Expected label (the validation file's)", interactive=False)
                gr.Examples(examples, [*read_inputs(text_box, pair_box), expected])
            elif models.examples():
                gr.Examples(models.examples(), read_inputs(text_box, pair_box))
        with gr.Tab("Compare"):
            compare_text, compare_pair = input_boxes()
            compare_button = gr.Button("Run every model", variant="primary")
            compare_table = gr.Dataframe(label="Same input, every model")
            compare_note = gr.Markdown()
            compare_button.click(compare, read_inputs(compare_text, compare_pair), [compare_table, compare_note],
                                 api_name="compare")
            gr.Markdown("A short benchmark: a batch of the bundle's examples through each model, taking turns for 2 s.")
            batch_size = gr.Slider(1, 64, value=8, step=1, label="batch size")
            bench_button = gr.Button("Benchmark")
            bench_plot = gr.BarPlot(x="model", y="inputs/s", title="Throughput (inputs/s, higher is better)")
            bench_table = gr.Dataframe(label="Benchmark")
            bench_button.click(benchmark, [batch_size], [bench_plot, bench_table], api_name="benchmark")
        with gr.Tab("Batch"):
            upload = gr.File(label="A file to classify (CSV, TSV, JSON Lines, JSON or Parquet)",
                             file_types=[".csv", ".tsv", ".jsonl", ".json", ".parquet"], type="filepath",
                             elem_id="batch-upload")
            batch_button = gr.Button("Predict the file", variant="primary")
            download = gr.File(label="Predictions")
            batch_note = gr.Markdown()
            batch_preview = gr.Dataframe(label="First predictions", elem_id="batch-preview")
            batch_button.click(predict_upload, [upload], [download, batch_note, batch_preview],
                               api_name="predict_file")
        card_section(models.bundle, as_tab=True)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return demo


def build_qa_demo(answerer, bundle: Path) -> gr.Blocks:
    """The app for an extractive QA bundle: question and context in, the answer highlighted in its context."""
    examples = answerer.manifest.examples(bundle, [answerer.settings["question_column"], answerer.settings["context_column"]])

    def answer(question: str, context: str):
        if not (question or "").strip() or not (context or "").strip():
            return None, "Type a **question** and a **context** first."
        invalid = _invalid_message(question=question, context=context)
        if invalid:
            return None, invalid
        started = time.perf_counter()
        best = answerer.answer([question], [context])[0]
        ms = 1000 * (time.perf_counter() - started)
        spans = [(context[: best.start], None), (best.text, "answer"), (context[best.end :], None)]
        return spans, f"**{best.text}** · score {best.score:.2f} · {answerer.precision} · {ms:.1f} ms"

    with gr.Blocks(title=f"tuneship: {bundle.name}") as demo:
        gr.Markdown(f"# {bundle.name}\nextractive question answering · served by {answerer.precision} (ONNX), "
                    "exported with tuneship")
        question = gr.Textbox(label="Question", placeholder="Question ...")
        context = gr.Textbox(label="Context", lines=8, placeholder="The text the answer is taken from ...")
        button = gr.Button("Answer", variant="primary")
        highlighted = gr.HighlightedText(label="Answer in its context", combine_adjacent=False)
        note = gr.Markdown(elem_id="latency")
        button.click(answer, [question, context], [highlighted, note],
                     api_name=tasks.get(tasks.QUESTION_ANSWERING).demo.api_name)
        if examples:
            gr.Examples(examples, [question, context])
        card_section(bundle)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return demo


def build_summary_demo(summarizer, bundle: Path) -> gr.Blocks:
    """The app for a summarization bundle: a document in, its summary out, greedy or with beams."""
    examples = summarizer.manifest.examples(bundle, [summarizer.document_column])
    settings = summarizer.settings

    def summarize(document: str, num_beams: float):
        if not (document or "").strip():
            return "", "Paste a **document** first."
        invalid = _invalid_message(document=document)
        if invalid:
            return "", invalid
        started = time.perf_counter()
        result = summarizer.summarize([document], num_beams=int(num_beams))[0]
        ms = 1000 * (time.perf_counter() - started)
        cut = f" · document cut to {summarizer.manifest.max_length} tokens" if result["truncated"] else ""
        return result["summary"], (f"{result['tokens']} tokens · {int(num_beams)} beam(s) · ONNX {summarizer.precision} "
                                   f"· {ms:.0f} ms{cut}")

    with gr.Blocks(title=f"tuneship: {bundle.name}") as demo:
        gr.Markdown(f"# {bundle.name}\nsummarization · served by onnxruntime (ONNX {summarizer.precision}, "
                    "encoder and decoder with a KV cache), exported with tuneship")
        document = gr.Textbox(label="Document", lines=10, placeholder="The text to summarize ...")
        beams = gr.Slider(1, 8, value=settings.num_beams, step=1, label="Beams (1: greedy)")
        button = gr.Button("Summarize", variant="primary")
        summary = gr.Textbox(label="Summary", lines=3, elem_id="summary")
        note = gr.Markdown(elem_id="latency")
        button.click(summarize, [document, beams], [summary, note],
                     api_name=tasks.get(tasks.SUMMARIZATION).demo.api_name)
        if examples:
            gr.Examples(examples, [document])
        card_section(bundle)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return demo


def build_classification_demo(bundle: Path, checkpoint: str | None = None, threads: int | None = None) -> gr.Blocks:
    return build_demo(DemoModels.load(bundle, checkpoint, threads))


def build_question_answering_demo(bundle: Path, checkpoint: str | None = None, threads: int | None = None) -> gr.Blocks:
    from tuneship.serving.question_answering import QuestionAnswerer

    return build_qa_demo(QuestionAnswerer.from_bundle(bundle, threads=threads), Path(bundle))


def build_summarization_demo(bundle: Path, checkpoint: str | None = None, threads: int | None = None) -> gr.Blocks:
    from tuneship.serving.summarization import Summarizer

    return build_summary_demo(Summarizer.from_bundle(bundle, threads=threads), Path(bundle))


def build_app(bundle: Path, checkpoint: str | None = None, threads: int | None = None) -> gr.Blocks:
    """The demo for whatever task the bundle holds: `build_<task module>_demo` (see `tuneship.tasks`)."""
    task = tasks.get(BundleManifest.load(bundle).task)
    task.check("demo")
    return globals()[f"build_{task.module}_demo"](Path(bundle), checkpoint, threads)


def find_bundle(given: str | None) -> Path:
    """--bundle, else $TUNESHIP_BUNDLE, else `bundle/` beside this file."""
    for candidate in (given, os.environ.get(BUNDLE_VARIABLE), Path(__file__).resolve().parent / BUNDLE_FOLDER):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise TuneshipError(f"no bundle: pass --bundle DIR, set {BUNDLE_VARIABLE}, or put the bundle in "
                        f"{Path(__file__).resolve().parent / BUNDLE_FOLDER}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A Gradio demo of a tuneship bundle.")
    parser.add_argument("--bundle", help=f"bundle folder (default: ${BUNDLE_VARIABLE} or ./{BUNDLE_FOLDER})")
    parser.add_argument("--model", dest="checkpoint", help="PyTorch checkpoint to compare with (needs tuneship[train])")
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--threads", type=int, help="onnxruntime threads per model (default: the cores available)")
    args = parser.parse_args(renamed_flags(sys.argv[1:] if argv is None else argv, RENAMED_FLAGS["bench"], "gradio_app.py"))
    try:
        demo = build_app(find_bundle(args.bundle), args.checkpoint, args.threads)
    except TuneshipError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    demo.launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
