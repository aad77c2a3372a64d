"""The serving plan (`serving/plan.py`): the chooser on injected timings, the golden rule, the plan cache, and faults
(a damaged NNCF file or golden file, OpenVINO missing); plans made on a real tiny bundle on both runtimes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tuneship.errors import TuneshipError
from tuneship.serving import BundleManifest, Predictor
from tuneship.serving import plan as plans
from tuneship.serving.classification import golden_agreement
from tuneship.serving.engines import openvino_missing
from tuneship.serving.plan import CANDIDATES, PLAN_FILE, Plan, PlannedSession, allowed_slips, choose, golden_check

from tests.serving.test_trust import LONG, texts

NAMES = {c.name: c for c in CANDIDATES}
needs_openvino = pytest.mark.skipif(openvino_missing() is not None, reason=str(openvino_missing()))


def copy_of(bundle, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(bundle, target, ignore=shutil.ignore_patterns(PLAN_FILE))
    return target


# --------------------------------------------------------------------------- the chooser and the rule


def test_the_fastest_candidate_wins_each_bucket_on_injected_timings():
    timings = {
        "onnxruntime-fp32": {"32x1": 2.0, "32x8": 9.0, "128x1": 8.0, "128x8": 60.0},
        "onnxruntime-int8": {"32x1": 1.0, "32x8": 6.0, "128x1": 5.0, "128x8": 40.0},
        "openvino-int8": {"32x1": 1.6, "32x8": 5.0, "128x1": 4.0, "128x8": 20.0},
    }
    assert choose(timings, [32, 128]) == {32: "onnxruntime-int8", 128: "openvino-int8"}
    # a candidate not timed at a bucket's full batch (pruned: far slower at one input) cannot win that bucket
    pruned = {name: {k: v for k, v in t.items() if name != "onnxruntime-int8" or k != "32x8"} for name, t in timings.items()}
    assert choose(pruned, [32, 128])[32] == "openvino-int8"
    tie = {"onnxruntime-fp32": {"32x1": 1.0}, "onnxruntime-int8": {"32x1": 1.0}}
    assert choose(tie, [32]) == {32: "onnxruntime-fp32"}, "a tie goes to the reference"


def test_the_full_batch_timed_is_the_callers_within_a_token_budget():
    assert plans.timed_batch(32, 64) == 64 and plans.timed_batch(128, 64) == 32 and plans.timed_batch(256, 64) == 16
    assert plans.timed_batch(1024, 64) == 8 and plans.timed_batch(32, 1) == 1


def test_timing_prunes_a_candidate_far_slower_at_one_input():
    import time as clock

    class Sleeper:
        def __init__(self, seconds):
            self.seconds = seconds

        def run(self, output_names, feed):
            clock.sleep(self.seconds * feed["input_ids"].shape[0])

    timings = plans.time_candidates({"fast": Sleeper(0.001), "slow": Sleeper(0.004)}, ["input_ids"], [32], 4, rounds=2)
    assert set(timings["fast"]) == {"32x1", "32x4"} and set(timings["slow"]) == {"32x1"}
    assert timings["slow"]["32x1"] > 2 * timings["fast"]["32x1"]


def test_a_close_call_at_a_cut_full_batch_is_timed_again_at_the_batch_the_caller_forms():
    import time as clock

    class Rows:
        """Sleeps per row: `small` for each of the first 16 rows, `large` for each row past them."""

        def __init__(self, small, large):
            self.small, self.large = small, large

        def run(self, output_names, feed):
            rows = feed["input_ids"].shape[0]
            clock.sleep(0.0005 + self.small * min(rows, 16) + self.large * max(0, rows - 16))

    # at 256 tokens the first pass times 16 rows (the 4096-token cut): "a" leads there, "b" wins at 32 rows
    sessions = {"a": Rows(0.0008, 0.004), "b": Rows(0.0009, 0.0009), "far": Rows(0.004, 0.004)}
    timings = plans.time_candidates(sessions, ["input_ids"], [256], 32, rounds=2)
    assert choose(timings, [256]) == {256: "a"}
    assert plans.settle_close(sessions, ["input_ids"], [256], 32, timings) == [256]
    assert set(timings["a"]) == set(timings["b"]) == {"256x1", "256x32"}, "the cut shape is replaced"
    assert set(timings["far"]) == {"256x1"}, "a candidate not in the close call is not timed again"
    assert choose(timings, [256]) == {256: "b"}
    # nothing was cut (the caller's 16 rows were timed) or nobody is close: no second timing
    assert plans.settle_close(sessions, ["input_ids"], [256], 16, plans.time_candidates(sessions, ["input_ids"], [256], 16, rounds=2)) == []
    apart = {"a": {"256x1": 1.0, "256x16": 10.0}, "b": {"256x1": 2.0, "256x16": 20.0}}
    assert plans.settle_close(sessions, ["input_ids"], [256], 32, apart) == [] and "256x16" in apart["a"]


def test_one_slip_in_sixteen_keeps_a_gated_model_but_not_an_ungated_one():
    assert allowed_slips(16, 0.985) == 1 and allowed_slips(200, 0.985) == 4
    expected = np.tile([[0.9, 0.1]], (16, 1))
    one_slip = expected.copy()
    one_slip[3] = [0.4, 0.6]
    assert golden_check(NAMES["onnxruntime-int8"], one_slip, expected, golden_agreement, 0.985)["passed"]
    assert golden_check(NAMES["openvino-int8"], one_slip, expected, golden_agreement, 0.985)["passed"]
    bf16 = golden_check(NAMES["openvino-bf16"], one_slip, expected, golden_agreement, 0.985)
    assert not bf16["passed"] and "1 of 16" in bf16["reason"]
    two_slips = one_slip.copy()
    two_slips[5] = [0.3, 0.7]
    assert not golden_check(NAMES["onnxruntime-int8"], two_slips, expected, golden_agreement, 0.985)["passed"]
    tie = expected.copy()
    tie[7] = [0.497, 0.503]  # fp32's near tie on the boundary ...
    near = tie.copy()
    near[7] = [0.503, 0.497]  # ... flipped by a move of 0.006: not a slip, even for an ungated model
    verdict = golden_check(NAMES["openvino-bf16"], near, tie, golden_agreement, 0.985)
    assert verdict["passed"] and verdict["near_ties"] == 1 and "1 more a near tie" in verdict["reason"]
    assert not golden_check(NAMES["openvino-bf16"], one_slip, tie, golden_agreement, 0.985)["passed"]
    everywhere = np.tile([[0.499, 0.501]], (16, 1))  # an untrained model: every input a near tie ...
    flipped = everywhere[:, ::-1].copy()  # ... and a model that answers the opposite on all of them
    verdict = golden_check(NAMES["onnxruntime-int8"], flipped, everywhere, golden_agreement, 0.985)
    assert not verdict["passed"] and "near ties are forgiven a few at a time" in verdict["reason"]
    drifted = expected + np.array([[-0.2, 0.2]])  # same labels, probabilities far off
    assert "differs by up to 0.2" in golden_check(NAMES["onnxruntime-int8"], drifted, expected, golden_agreement,
                                                 0.985)["reason"]


def test_candidates_follow_the_bundle_the_cpu_and_what_was_asked(pair_bundle):
    manifest = BundleManifest.load(pair_bundle)
    allowed, dropped = plans.candidates_for(manifest, "auto", "auto", bf16=False, openvino=None)
    names = [c.name for c in allowed]
    assert names[0] == "onnxruntime-fp32" and "openvino-bf16" not in names
    assert dropped["openvino-bf16"]["reason"] == "this CPU has no bf16 instructions"
    allowed, dropped = plans.candidates_for(manifest, "auto", "auto", bf16=True, openvino="OpenVINO is not installed")
    assert {c.runtime for c in allowed} == {"onnxruntime"}
    assert all(dropped[n]["reason"] == "OpenVINO is not installed" for n in dropped if n.startswith("openvino"))
    allowed, _ = plans.candidates_for(manifest, "int8", "onnxruntime", bf16=True, openvino=None)
    assert [c.name for c in allowed] == ["onnxruntime-int8"]
    failed = BundleManifest.load(pair_bundle)
    failed.gates["int8"] = {**failed.gates["int8"], "passed": False}
    allowed, dropped = plans.candidates_for(failed, "auto", "auto", bf16=False, openvino=None)
    assert "onnxruntime-int8" not in [c.name for c in allowed]
    assert "did not pass the export's gate" in dropped["onnxruntime-int8"]["reason"]


# --------------------------------------------------------------------------- answers depend on the input alone


def test_each_bucket_runs_its_own_candidate_and_batch_mates_never_move_an_answer(pair_bundle):
    fp32 = Predictor.from_bundle(pair_bundle, "fp32", runtime="onnxruntime")
    int8 = Predictor.from_bundle(pair_bundle, "int8", runtime="onnxruntime")
    plan = Plan({12: "onnxruntime-int8", 32: "onnxruntime-fp32"}, {}, {})
    mixed = Predictor(PlannedSession(plan, {"onnxruntime-int8": int8.session.sessions["onnxruntime-int8"],
                                            "onnxruntime-fp32": fp32.session.sessions["onnxruntime-fp32"]}),
                      fp32.encoder, fp32.manifest, plan.label)
    firsts, seconds = texts(16)
    firsts = [*firsts, "short", "tiny one"]
    seconds = [*seconds, "pair", "again"]
    alone = np.concatenate([mixed.logits([a], [b])[0] for a, b in zip(firsts, seconds)])
    batched = mixed.logits([LONG, *firsts], [LONG, *seconds], batch_size=8)[0][1:]
    assert np.abs(alone - batched).max() <= 1e-3
    lengths = [len(e.ids) for e in fp32.encoder.encode(firsts, seconds)]
    for i, length in enumerate(lengths):  # short inputs ran on int8, the others on fp32, alone as in a batch
        reference = (int8 if length <= 12 else fp32).logits([firsts[i]], [seconds[i]])[0][0]
        assert np.abs(alone[i] - reference).max() <= 1e-5, (i, length)
    assert {length <= 12 for length in lengths} == {True, False}, "the inputs span both buckets"


class Echo:
    """A session that answers with its name and the width it was fed."""

    def __init__(self, name: str):
        self.name = name

    def get_inputs(self):
        return []

    def get_outputs(self):
        return []

    def run(self, output_names, feed):
        ids = feed["input_ids"]
        assert (feed["attention_mask"][:, ids.shape[1] - 1] == 0).all() or ids[:, -1].all(), "padding is masked"
        return [self.name, ids.shape[1]]


def test_fixed_width_candidates_pad_each_input_to_the_next_step_of_16_tokens():
    assert plans.fixed_widths(0, 32) == [16, 32] and plans.fixed_widths(128, 200) == [144, 160, 176, 192, 200]
    assert plans.fixed_widths(0, 128, None) == [128]
    plan = Plan({32: "onnxruntime-int8", 128: "openvino-int8"}, {}, {})
    session = PlannedSession(plan, {"onnxruntime-int8": Echo("ort"), "openvino-int8": Echo("ov")})
    assert session.buckets == [32, 48, 64, 80, 96, 112, 128], "batches never span a padding step"

    def feed(width):
        return {"input_ids": np.ones((2, width), dtype=np.int64), "attention_mask": np.ones((2, width), dtype=np.int64)}

    assert session.run(None, feed(20)) == ["ort", 20], "onnxruntime's answers do not move with padding: none added"
    assert session.run(None, feed(33)) == ["ov", 48] and session.run(None, feed(48)) == ["ov", 48]
    assert session.run(None, feed(127)) == ["ov", 128]


@needs_openvino
def test_a_large_run_gives_its_memory_back_once_idle_on_both_runtimes_with_the_same_answers(pair_bundle, monkeypatch):
    import time

    from tuneship.serving.engines import open_session

    manifest = BundleManifest.load(pair_bundle)
    model = pair_bundle / manifest.model_file("fp32")
    sessions = {"openvino-fp32": open_session("openvino", model), "onnxruntime-fp32": open_session("onnxruntime", model)}
    released, real = [], plans.release_memory
    monkeypatch.setattr(plans, "release_memory", lambda session: released.append(session) or real(session))
    names = [i.name for i in sessions["openvino-fp32"].get_inputs()]
    big = plans.SHRINK_TOKENS // 64

    def feed(rows: int) -> dict:
        return {n: np.full((rows, 64), {"input_ids": 5, "token_type_ids": 0}.get(n, 1), dtype=np.int64) for n in names}

    for name, session in sessions.items():
        planned = PlannedSession(Plan({64: name}, {}, {}), {name: session}, release_after=0.3)
        for rows in (2, big, big, 2):
            assert np.allclose(planned.run(None, feed(rows))[0], session.run(None, feed(rows))[0], atol=1e-5)
        assert session not in released, "a burst of large runs keeps its memory until the session is idle"
        deadline = time.monotonic() + 10
        while session not in released and time.monotonic() < deadline:
            time.sleep(0.05)
        assert released.count(session) == 1, "released once, after the last large run"
        assert np.allclose(planned.run(None, feed(big))[0], session.run(None, feed(big))[0], atol=1e-5), \
            "runs on after the release"
    time.sleep(0.5)
    assert len(released) == 4, "each session released once more after its last large run"


# --------------------------------------------------------------------------- the cache


def test_a_plan_is_cached_and_a_stale_or_bad_cache_is_ignored_and_rewritten(pair_bundle, tmp_path):
    bundle = copy_of(pair_bundle, tmp_path)
    first = Predictor.from_bundle(bundle)
    assert not first.plan.cached and (bundle / PLAN_FILE).is_file()
    again = Predictor.from_bundle(bundle)
    assert again.plan.cached and again.plan.serving == first.plan.serving
    cache = json.loads((bundle / PLAN_FILE).read_text())
    cache["key"]["cpu"]["model"] = "Another CPU"
    cache["plan"]["serving"] = {"32": "onnxruntime-fp32"}
    (bundle / PLAN_FILE).write_text(json.dumps(cache))
    other = Predictor.from_bundle(bundle)
    assert not other.plan.cached and any("another cpu" in note for note in other.plan.notes), other.plan.notes
    assert json.loads((bundle / PLAN_FILE).read_text())["key"]["cpu"]["model"] != "Another CPU", "rewritten"
    (bundle / PLAN_FILE).write_text("{not json")
    bad = Predictor.from_bundle(bundle)
    assert not bad.plan.cached and any("not a valid plan cache" in note for note in bad.plan.notes)
    assert Predictor.from_bundle(bundle).plan.cached
    assert Predictor.from_bundle(bundle, plan_cache=False).plan.cached is False


def test_a_cache_for_another_bundle_is_ignored(pair_bundle, text_bundle, tmp_path):
    bundle = copy_of(pair_bundle, tmp_path)
    Predictor.from_bundle(bundle)
    other = copy_of(text_bundle, tmp_path, "other")
    shutil.copy(bundle / PLAN_FILE, other / PLAN_FILE)
    planned = Predictor.from_bundle(other)
    assert not planned.plan.cached and any("another bundle" in note for note in planned.plan.notes)


# --------------------------------------------------------------------------- faults


@needs_openvino
def test_a_damaged_nncf_file_is_dropped_with_its_reason(pair_bundle, tmp_path):
    if "nncf-int8" not in BundleManifest.load(pair_bundle).models:
        pytest.skip("the tiny bundle's NNCF model did not pass its gate")
    bundle = copy_of(pair_bundle, tmp_path)
    path = bundle / BundleManifest.load(bundle).model_file("nncf-int8")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    planned = Predictor.from_bundle(bundle)
    verdict = planned.plan.candidates["openvino-int8"]
    assert not verdict["passed"] and "OpenVINO could not load" in verdict["reason"]
    assert "openvino-int8" not in planned.plan.serving.values()
    assert planned.predict(["a"], ["b"])[0]["label"] in ("0", "1")


def test_a_missing_nncf_file_is_dropped_with_its_reason(pair_bundle, tmp_path):
    if "nncf-int8" not in BundleManifest.load(pair_bundle).models:
        pytest.skip("the tiny bundle's NNCF model did not pass its gate")
    bundle = copy_of(pair_bundle, tmp_path)
    (bundle / BundleManifest.load(bundle).model_file("nncf-int8")).unlink()
    planned = Predictor.from_bundle(bundle)
    assert "model_nncf_int8.onnx) is missing" in planned.plan.candidates["openvino-int8"]["reason"]
    assert "openvino-int8" not in planned.plan.serving.values()


def test_forced_fp32_loads_without_touching_a_truncated_int8_file_and_predict_says_what_served(pair_bundle, tmp_path):
    bundle = copy_of(pair_bundle, tmp_path)
    int8 = bundle / BundleManifest.load(bundle).model_file("int8")
    int8.write_bytes(int8.read_bytes()[: int8.stat().st_size // 3])
    forced = Predictor.from_bundle(bundle, "fp32", runtime="onnxruntime")
    assert set(forced.plan.serving.values()) == {"onnxruntime-fp32"}
    assert forced.predict(["a"], ["b"])[0]["label"] in ("0", "1")
    done = subprocess.run([sys.executable, "-m", "tuneship.cli", "predict", "--bundle", str(bundle), "--precision", "fp32",
                           "--runtime", "onnxruntime", "--text", "a cat", "--text-pair", "the cat"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "onnxruntime-fp32" in done.stderr.splitlines()[0]  # the plan's first line: what serves
    assert json.loads(done.stdout)["label"] in ("0", "1")
    planned = Predictor.from_bundle(bundle)  # auto: the damaged int8 file is named and dropped, fp32 serves on
    assert not planned.plan.candidates["onnxruntime-int8"]["passed"]
    assert int8.name in planned.plan.candidates["onnxruntime-int8"]["reason"]


def test_a_damaged_golden_file_is_blamed_not_the_models(pair_bundle, tmp_path):
    bundle = copy_of(pair_bundle, tmp_path)
    golden = json.loads((bundle / "golden.json").read_text())
    golden["fp32"] = [list(reversed(row)) for row in golden["fp32"]]
    (bundle / "golden.json").write_text(json.dumps(golden))
    planned = Predictor.from_bundle(bundle)
    assert any("golden.json does not match onnxruntime fp32" in note for note in planned.plan.notes)
    assert planned.plan.candidates["onnxruntime-int8"]["passed"], "int8 is compared with fp32's outputs here"


def test_without_openvino_the_plan_uses_onnxruntime_and_says_so_once(pair_bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(plans, "openvino_missing", lambda: "OpenVINO is not installed (pip install 'tuneship[openvino]')")
    planned = Predictor.from_bundle(copy_of(pair_bundle, tmp_path))
    assert set(planned.plan.serving.values()) <= {"onnxruntime-fp32", "onnxruntime-int8"}
    described = "\n".join(planned.plan.describe())
    assert described.count("note: OpenVINO not used: OpenVINO is not installed") == 1
    with pytest.raises(TuneshipError, match="nothing can serve precision auto on runtime openvino"):
        Predictor.from_bundle(pair_bundle, runtime="openvino")


# --------------------------------------------------------------------------- both runtimes


@needs_openvino
def test_both_runtimes_give_the_same_labels(pair_bundle):
    firsts, seconds = texts(20)
    on = {runtime: Predictor.from_bundle(pair_bundle, "fp32", runtime=runtime) for runtime in ("onnxruntime", "openvino")}
    ort, ov = (on[r].logits(firsts, seconds)[0] for r in ("onnxruntime", "openvino"))
    assert (ort.argmax(-1) == ov.argmax(-1)).all() and np.abs(ort - ov).max() < 1e-3
    if "nncf-int8" in BundleManifest.load(pair_bundle).models:
        nncf = Predictor.from_bundle(pair_bundle, "int8", runtime="openvino")
        assert nncf.plan.serving == {32: "openvino-int8"}
        found = nncf.logits(firsts, seconds)[0]
        assert np.mean(found.argmax(-1) == ort.argmax(-1)) >= 0.9


def test_onnxruntime_spins_within_a_run_only_beside_openvino(pair_bundle):
    from tuneship.serving.session import create_session

    ort = [c for c in CANDIDATES if c.runtime == "onnxruntime"]
    assert plans.spinning_beside(True, CANDIDATES) == "run", "full spinning would hold OpenVINO's cores"
    assert plans.spinning_beside(True, ort) is True and plans.spinning_beside(False, CANDIDATES) is False
    assert plans.spinning_beside("run", ort) == "run"
    model_file = pair_bundle / BundleManifest.load(pair_bundle).model_file("fp32")
    assert create_session(model_file, 1, "run").get_inputs()
    with pytest.raises(TuneshipError, match="spinning must be True, False or 'run', not 'sometimes'"):
        create_session(model_file, 1, "sometimes")
