"""The Gradio demo on a real server (loopback port), driven by gradio_client and by a real Chromium."""

from __future__ import annotations

import contextlib
import csv
import shutil
import time
from pathlib import Path

import pytest

from gradio_app import DemoModels, build_demo, find_bundle
from tests.conftest import free_port, pair_rows, write_csv
from tuneship.errors import TuneshipError

CHROMIUM = "/usr/bin/chromium"
PAIR = ("the cat sat on mat 3", "a cat was on the mat 3")


def launch(models: DemoModels):
    demo = build_demo(models)
    return demo, serve(demo)


def serve(demo) -> str:
    """Launch `demo` on a free loopback port; return its URL."""
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return f"http://127.0.0.1:{port}/"


@contextlib.contextmanager
def bundle_client(bundle):
    """`gradio_app.build_app(bundle)` on a loopback port, and a `gradio_client.Client` on it."""
    from gradio_client import Client

    from gradio_app import build_app

    demo = build_app(bundle, threads=1)
    try:
        yield Client(serve(demo), verbose=False)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def pair_app(pair_bundle, pair_checkpoint):
    models = DemoModels.load(pair_bundle, pair_checkpoint, threads=1)
    demo, url = launch(models)
    yield models, url
    demo.close()


@pytest.fixture(scope="module")
def client(pair_app):
    from gradio_client import Client

    return Client(pair_app[1], verbose=False)


def confidences(label: dict) -> dict[str, float]:
    return {item["label"]: item["confidence"] for item in label["confidences"]}


def test_classify_a_pair_through_gradio_client(pair_app, client):
    models, _ = pair_app
    label, note = client.predict(*PAIR, api_name="/classify")
    expected = models.models[models.default].predict([PAIR[0]], [PAIR[1]])[0]
    assert label["label"] == expected["label"]
    assert confidences(label) == pytest.approx(expected["probabilities"], abs=1e-6)
    assert note.startswith(f"{models.default} · ") and note.endswith(" ms")


def test_empty_input_gets_a_friendly_message(client):
    label, note = client.predict("", "a comment", api_name="/classify")
    assert not label and note == "Type some text in **sentence1** first."
    label, note = client.predict("an article", "   ", api_name="/classify")
    assert not label and "type some text in **sentence2** too" in note


def test_text_that_is_not_valid_unicode_gets_a_message_not_an_error(pair_app):
    """A lone surrogate (sent as the JSON escape a browser or script can send; gradio_client refuses to encode it)."""
    import httpx

    url = pair_app[1].rstrip("/")
    body = b'{"data": ["bad \\ud800 text", "a comment"]}'
    response = httpx.post(f"{url}/gradio_api/call/classify", content=body, headers={"content-type": "application/json"},
                          timeout=30)
    assert response.status_code == 200, response.text
    event = response.json()["event_id"]
    stream = httpx.get(f"{url}/gradio_api/call/classify/{event}", timeout=60).text
    assert "event: complete" in stream and "sentence1** is not valid Unicode" in stream, stream


def test_compare_runs_every_model_on_the_same_input(client):
    table, _ = client.predict(*PAIR, api_name="/compare")
    rows = {row[0]: row for row in table["data"]}
    planned = next(name for name in rows if name.startswith("ONNX plan ("))
    assert set(rows) == {planned, "ONNX fp32", "ONNX int8", "PyTorch fp32"}, "the plan as served, and each model alone"
    assert rows["ONNX fp32"][1] == rows["PyTorch fp32"][1]
    assert rows["ONNX fp32"][2] == pytest.approx(rows["PyTorch fp32"][2], abs=1e-4)
    assert all(row[3] > 0 for row in rows.values())


def test_benchmark_button_times_every_model(client):
    _, table = client.predict(4, api_name="/benchmark")
    rows = {row[0]: row for row in table["data"]}
    assert {"ONNX fp32", "ONNX int8", "PyTorch fp32"} < set(rows) and any(n.startswith("ONNX plan (") for n in rows)
    assert all(row[1] > 0 and row[2] > 0 for row in rows.values())


def test_batch_upload_returns_a_predictions_file(client, pair_app, tmp_path):
    from gradio_client import handle_file

    rows = pair_rows(12)
    path, note, preview = client.predict(handle_file(str(write_csv(tmp_path / "pairs.csv", rows))),
                                         api_name="/predict_file")
    with open(path, newline="", encoding="utf-8") as handle:
        predicted = list(csv.DictReader(handle))
    assert Path(path).name == "pairs-predictions.csv" and len(predicted) == 12 and "pairs.csv" in note
    expected = pair_app[0].models[pair_app[0].default].predict([r["sentence1"] for r in rows], [r["sentence2"] for r in rows])
    assert [r["predicted_label"] for r in predicted] == [e["label"] for e in expected]
    shown = preview["headers"].index("predicted_label")
    assert [row[shown] for row in preview["data"]] == [e["label"] for e in expected][:10], "a preview of the first rows"

    bad = write_csv(tmp_path / "bad.csv", [{"title": "x", "body": "y"}])
    path, note, preview = client.predict(handle_file(str(bad)), api_name="/predict_file")  # no error toast: one line
    assert path is None and note.startswith("**Could not predict bad.csv:**") and "sentence1" in note
    assert "\n" not in note and str(tmp_path) not in note


def test_one_text_model_has_one_box(text_bundle):
    from gradio_client import Client

    models = DemoModels.load(text_bundle, threads=1)
    demo, url = launch(models)
    try:
        label, note = Client(url, verbose=False).predict("the app crashes and shows an error", api_name="/classify")
        assert set(confidences(label)) == {"bug", "feature_request", "general_inquiry"} and "ms" in note
    finally:
        demo.close()


def test_bundle_from_the_environment_or_beside_the_app(pair_bundle, monkeypatch):
    monkeypatch.setenv("TUNESHIP_BUNDLE", str(pair_bundle))
    assert find_bundle(None) == pair_bundle
    monkeypatch.delenv("TUNESHIP_BUNDLE")
    with pytest.raises(TuneshipError, match="no bundle: pass --bundle DIR"):
        find_bundle(None)


def type_until_it_sticks(page, boxes, texts, settle_ms: int = 1000, timeout_s: float = 30) -> None:
    """Fill text boxes and wait until the text stays put.

    Gradio's front end sets the components' initial (empty) values once more while it finishes loading, up to about
    2 s after the page's load event on a busy machine; text typed before that is wiped (CI saw it). A person cannot
    type that fast; a test can, so it refills until the values survive `settle_ms`.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for box, text in zip(boxes, texts):
            if box.input_value() != text:
                box.fill(text)
        page.wait_for_timeout(settle_ms)
        if all(box.input_value() == text for box, text in zip(boxes, texts)):
            return
    raise AssertionError(f"the text boxes kept losing their text for {timeout_s} s")


def chromium(playwright):
    """Debian's Chromium, headless, as the browser tests drive it."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: `make test` installs Debian's chromium")
def test_a_real_browser_types_clicks_and_reads_the_label(pair_app, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    models, url = pair_app
    expected = models.models[models.default].predict([PAIR[0]], [PAIR[1]])[0]["label"]
    with sync_playwright() as playwright:
        browser = chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            boxes = [page.get_by_label("sentence1").first, page.get_by_label("sentence2").first]
            type_until_it_sticks(page, boxes, PAIR)
            page.get_by_role("button", name="Classify", exact=True).click()
            shown = page.get_by_test_id("label-output-value").first
            try:
                shown.wait_for(timeout=30_000)
            except PlaywrightTimeout:
                note = page.locator("#latency").inner_text()
                raise AssertionError(f"no label after 30 s; the note says {note!r}; boxes hold "
                                     f"{[box.input_value() for box in boxes]}") from None
            page.wait_for_function("() => document.querySelector('#latency')?.innerText.includes('ms')", timeout=30_000)
            assert shown.inner_text().strip() == expected
            # the examples table carries the validation file's label of each example
            assert page.get_by_text("Expected label (the validation file's)").count() >= 1
            screenshot = tmp_path / "classify.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    saved = Path(__file__).resolve().parents[1] / "runs" / "screenshots"
    saved.mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot, saved / "gradio-classify.png")  # kept for a look after the run (runs/ is not committed)


def test_question_answering_bundle_gets_the_qa_view(qa_bundle):
    with bundle_client(qa_bundle) as client:
        context = "The museum was built in 1904 by the city."
        spans, note = client.predict("When was the museum built?", context, api_name="/answer")
        answer = [s["token"] for s in spans if s["class_or_confidence"] == "answer"]
        assert len(answer) == 1 and answer[0] in context and "".join(s["token"] for s in spans) == context
        assert note.startswith(f"**{answer[0]}**") and note.endswith(" ms")
        spans, note = client.predict("", context, api_name="/answer")
        assert not spans and "Type a **question**" in note


def test_summarization_bundle_gets_the_summary_view(summary_bundle):
    from tuneship.serving.summarization import Summarizer

    with bundle_client(summary_bundle) as client:
        document = "The bridge was built in 1932 by the city. It cost 3 million to build."
        summarizer = Summarizer.from_bundle(summary_bundle)
        for beams in (1, 3):
            summary, note = client.predict(document, beams, api_name="/summarize")
            assert summary == summarizer.summaries([document], num_beams=beams)[0]
            assert f"{beams} beam(s)" in note and note.endswith(" ms")
        summary, note = client.predict("  ", 3, api_name="/summarize")
        assert summary == "" and "Paste a **document**" in note


def test_the_demo_loading_a_compare_model_of_its_own_accord_does_not_say_as_asked(capsys):
    import gradio_app

    from tuneship.log import get_logger

    plan_logger = get_logger("tuneship.serving.plan")
    with gradio_app._plan_warnings_muted():
        plan_logger.warning("serving onnxruntime-int8 as asked, though its check speaks against it")
    plan_logger.info("after: shown")
    printed = capsys.readouterr().out
    assert "as asked" not in printed and "after: shown" in printed


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: `make test` installs Debian's chromium")
def test_a_real_browser_reads_the_precision_line_runs_the_compare_benchmark_previews_a_batch_and_shows_the_card(pair_app, tmp_path):
    from playwright.sync_api import sync_playwright

    models, url = pair_app
    saved = Path(__file__).resolve().parents[1] / "runs" / "screenshots"
    saved.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(url)
            # the page says which precision serves: the plan as loaded
            page.get_by_text(f"served by {models.default}").first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "classify.png"), full_page=True)

            page.get_by_role("tab", name="Compare").click()
            page.get_by_role("button", name="Benchmark").click()
            page.get_by_text("inputs/s").first.wait_for(timeout=60_000)
            page.wait_for_timeout(1000)
            # the throughput chart's y axis starts at zero (Vega's own description of the drawn axis)
            axes = [a.get_attribute("aria-label") or "" for a in page.locator("g.role-axis").all()]
            y_axis = next(a for a in axes if a.startswith("Y-axis titled 'inputs/s'"))
            assert "values from 0 to" in y_axis, y_axis
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

            # the Batch tab: a file chosen as a user chooses it, its predictions previewed, answers first
            rows = [{"sentence1": f"the cat sat on mat {i}", "sentence2": f"a dog ran in the park {i}"} for i in range(3)]
            write_csv(tmp_path / "batch.csv", rows)
            page.get_by_role("tab", name="Batch").click()
            upload = page.locator("#batch-upload")
            with page.expect_file_chooser() as chooser:
                upload.get_by_text("Drop File Here").click()
            chooser.value.set_files(str(tmp_path / "batch.csv"))
            upload.get_by_text("batch.csv").wait_for(timeout=30_000)  # uploaded: the file component lists it
            page.get_by_role("button", name="Predict the file").click()
            page.get_by_text("Predicted every row of").first.wait_for(timeout=60_000)
            preview = page.locator("#batch-preview")
            header = [cell.get_attribute("title") for cell in preview.locator("th[title]").all()]
            assert header[:2] == ["predicted_label", "score"], header
            cells = [cell.inner_text().strip() for cell in preview.locator('[data-row][data-col="0"]').all()]
            expected = [p["label"] for p in models.models[models.default].predict(
                [r["sentence1"] for r in rows], [r["sentence2"] for r in rows])]
            assert cells == expected, (cells, expected)
            page.screenshot(path=str(tmp_path / "batch.png"), full_page=True)

            # the model card, in the page
            page.get_by_role("tab", name="Model card").click()
            card = page.locator("#model-card")
            card.get_by_text("How to use").first.wait_for(timeout=30_000)
            broken = card.locator("img").evaluate_all("images => images.filter(i => !i.naturalWidth).map(i => i.alt)")
            assert broken == [], f"images the page cannot show: {broken}"
            page.screenshot(path=str(tmp_path / "card.png"), full_page=True)
        finally:
            browser.close()
    for name in ("classify.png", "compare.png", "batch.png", "card.png"):
        assert (tmp_path / name).stat().st_size > 10_000
        shutil.copy(tmp_path / name, saved / f"gradio-{name}")  # kept for a look after the run


def test_the_cards_images_are_inlined_or_left_out_since_the_page_serves_no_bundle_file(tmp_path):
    from gradio_app import card_text

    (tmp_path / "README.md").write_text("---\nlicense: apache-2.0\n---\n# m\n![curve](training_curve.png)\n"
                                        "![matrix](confusion_matrix.png)\n![logo](https://example.com/x.png)\n")
    (tmp_path / "training_curve.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    text = card_text(tmp_path)
    assert "license" not in text and "![curve](data:image/png;base64,iVBORw0KGgpmYWtl)" in text
    assert "confusion_matrix" not in text and "![logo](https://example.com/x.png)" in text
    assert card_text(tmp_path / "nothing") is None
