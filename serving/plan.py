"""The serving plan: which runtime and model serve which input lengths on this CPU (`precision="auto"`).

int8 and bf16 gains depend on the CPU, and no runtime wins every shape: OpenVINO's int8 (the bundle's NNCF
model) is fastest on long inputs and full batches of most CPUs, onnxruntime's on short single inputs. So the
plan is made where the bundle is served, on load:

1. **Candidates**: onnxruntime fp32 (the reference) and int8; OpenVINO int8 (NNCF), fp32, and bf16 where the
   CPU has bf16 instructions, if OpenVINO is installed and the bundle has the model. A model that failed the
   export's gate is not a candidate.
2. **Golden check**: each candidate runs the export's golden inputs (`golden.json`, each input alone) against
   the fp32 outputs stored there. A model the export gated on hundreds of labelled rows may differ on
   `allowed_slips` of them (one in sixteen at the default 98.5% agreement); an ungated one (bf16, OpenVINO fp32)
   on none; an input whose answer changes while its outputs move by at most 0.01 is a near tie on the decision
   boundary, not a slip. onnxruntime fp32 is checked first: when it does not reproduce the file, the file is to blame, and
   the others are compared with fp32's outputs here instead.
3. **Timing**: the passing candidates take turns on each length bucket (32, 64, 128, ... tokens up to the
   bundle's max length) at one input and at the caller's full batch (at most 4096 tokens of it), model only
   (tokenization is the same for all), in short blocks that each open with an untimed run; the fastest run counts.
   Where the full batch was cut and two candidates are close, those are timed again at up to 8192 tokens of it.
4. **Plan**: each bucket gets the candidate with the lowest mean time relative to the fastest at those two
   shapes. The batcher never mixes buckets in a run, so an input's candidate, and therefore its answer, depends on
   that input's length alone, never on its batch mates.

A plan is cached next to the bundle (`PLAN_FILE`), keyed by the CPU, the runtimes' versions, the bundle's
digest, the threads and batch sizes; a cache that does not parse or has another key is ignored and rewritten.
A cached plan's candidates are still golden-checked on load (cheap); timing is what the cache saves.
`precision` (fp32, int8, bf16) and `runtime` (onnxruntime, openvino) narrow the candidates; both together force one.
"""

from __future__ import annotations

import bisect
import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..bundle import MANIFEST_FILE, NNCF_MODEL, BundleManifest
from ..errors import TuneshipError
from ..files import files_digest
from ..log import get_logger
from .engines import RUNTIMES, OpenVINOSession, open_session, openvino_has_bf16, openvino_missing, runtime_versions
from .session import available_cores, check_inputs, create_session

logger = get_logger(__name__)

GOLDEN_FILE = "golden.json"
PLAN_FILE = ".tuneship-plan.json"
PLAN_VERSION = 4
PRECISIONS = ("fp32", "int8", "bf16")
GOLDEN_TOLERANCE = 0.1  # largest |probability difference| from the stored fp32 outputs on an agreeing golden input
TIE_TOLERANCE = 0.01  # a changed answer with outputs this close to fp32's is a near tie, not a slip (`golden_check`)
FP32_TOLERANCE = 1e-3  # onnxruntime fp32 reproducing its own stored outputs (another CPU moves them ~1e-6)
DEFAULT_MIN_AGREEMENT = 0.985
BUCKET_EDGES = (32, 64, 128, 256, 512, 1024)
TIMING_ROUNDS = 4  # timed runs per candidate and shape (in two blocks, each after an untimed run); the fastest counts
TIMED_TOKENS = 4096  # the full batch timed at load holds at most this many tokens (rows x length) ...
TIMED_MIN_BATCH = 8  # ... and at least this many rows
SHRINK_TOKENS = 4096  # a run of this many padded tokens or more gives its memory back ... (`IdleRelease`)
RELEASE_IDLE_S = 0.5  # ... once its session has run nothing that large for this many seconds
PRUNE_RATIO = 1.5  # a candidate this much slower than the best at one input is not timed at that bucket's full batch
CLOSE_RATIO = 1.2  # candidates whose scores are within this factor of the best are a close call ...
SETTLE_TOKENS = 8192  # ... timed again at a full batch of up to this many tokens, where TIMED_TOKENS cut it ...
SETTLE_ROUNDS = 2  # ... this many runs each (long runs: their fastest is steady)
PAD_GRANULE = 16  # a fixed-width candidate pads each input to the next multiple of this many tokens


@dataclass(frozen=True)
class Candidate:
    """One way to run the bundle: a runtime, one of the manifest's models, and what it computes in."""

    name: str
    runtime: str
    model: str  # a key of the manifest's `models`
    precision: str
    gate: str | None = None  # the manifest's gate that checked this model on labelled rows at export
    fixed_width: bool = False  # answers move with the padded width unless each bucket pads to one width

    @property
    def gated(self) -> bool:
        return self.gate is not None


CANDIDATES = (
    Candidate("onnxruntime-fp32", "onnxruntime", "fp32", "fp32"),
    Candidate("onnxruntime-int8", "onnxruntime", "int8", "int8", gate="int8"),
    Candidate("openvino-int8", "openvino", NNCF_MODEL, "int8", gate=NNCF_MODEL, fixed_width=True),
    Candidate("openvino-bf16", "openvino", "fp32", "bf16", fixed_width=True),
    Candidate("openvino-fp32", "openvino", "fp32", "fp32"),
)
REFERENCE = CANDIDATES[0]
NAMES = {candidate.name: candidate for candidate in CANDIDATES}


def cpu_facts() -> dict:
    """The CPU's model name and the instruction sets that decide int8 and bf16 speed (Linux; elsewhere the machine)."""
    import platform

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine(), "flags": []}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = fields.get("flags", fields.get("Features", "")).split()
    known = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "asimddp")
    return {"model": fields.get("model name", platform.machine()), "flags": [f for f in known if f in flags]}


def bucket_of(bounds: list[int], length: int) -> int:
    """The index of the first of the ascending `bounds` that `length` fits under (the last one for longer inputs)."""
    return min(bisect.bisect_left(bounds, length), len(bounds) - 1)


def buckets_for(max_length: int) -> list[int]:
    """The length buckets' upper bounds (tokens): powers of two from 32, and the bundle's max length."""
    return sorted({edge for edge in BUCKET_EDGES if edge < max_length} | {max_length})


def allowed_slips(count: int, min_agreement: float) -> int:
    """Golden inputs a gated model may answer differently: one, plus what its gate's agreement allows on `count`."""
    return 1 + math.floor(count * (1 - min_agreement) + 1e-9)


def read_golden(folder: Path) -> tuple[dict | None, str]:
    """The golden inputs and stored fp32 outputs, or None and why not."""
    path = folder / GOLDEN_FILE
    if not path.is_file():
        return None, f"no {GOLDEN_FILE} in the bundle"
    try:
        golden = json.loads(path.read_text(encoding="utf-8"))
        if not golden["inputs"] or len(golden["inputs"]) != len(golden["fp32"]):
            raise ValueError("inputs and fp32 outputs differ in number")
        np.asarray(golden["fp32"], dtype=np.float64)
        return golden, ""
    except (OSError, ValueError, KeyError, TypeError) as error:
        return None, f"{path} is not a valid golden file ({error})"


@dataclass
class Plan:
    """What serves which lengths, and why: `serving` maps each bucket's upper bound to a candidate's name,
    `candidates` holds each candidate's verdict (`passed`, `reason`, the golden check, timings in ms)."""

    serving: dict[int, str]
    candidates: dict[str, dict]
    requested: dict
    cpu: dict = field(default_factory=cpu_facts)
    seconds: float = 0.0
    cached: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def buckets(self) -> list[int]:
        return sorted(self.serving)

    def candidate_for(self, length: int) -> str:
        """The candidate that serves inputs of `length` tokens."""
        buckets = self.buckets
        return self.serving[buckets[bucket_of(buckets, length)]]

    @property
    def label(self) -> str:
        """The candidates in use, shortest bucket first (`onnxruntime-int8+openvino-int8`)."""
        return "+".join(dict.fromkeys(self.serving[b] for b in self.buckets))

    @property
    def precision(self) -> str:
        """The precisions computed in, joined (`int8`, or `fp32+int8`)."""
        found = [self.candidates[name]["precision"] for name in dict.fromkeys(self.serving.values())]
        return "+".join(dict.fromkeys(found))

    def ranges(self) -> list[tuple[str, str]]:
        """(`1-32 tokens`, candidate) per run of buckets served by one candidate."""
        out, low = [], 1
        buckets = self.buckets
        for i, bucket in enumerate(buckets):
            if i + 1 < len(buckets) and self.serving[buckets[i + 1]] == self.serving[bucket]:
                continue
            out.append((f"{low}-{bucket} tokens", self.serving[bucket]))
            low = bucket + 1
        return out

    @property
    def reason(self) -> str:
        """One line: what serves which lengths."""
        made = "from the plan cache" if self.cached else f"planned in {self.seconds:.1f} s"
        return f"{', '.join(f'{r}: {c}' for r, c in self.ranges())} ({made})"

    def describe(self) -> list[str]:
        """The start-up report: the plan, then each candidate not serving and why."""
        lines = [f"plan on {self.cpu['model']}: {self.reason}"]
        used = set(self.serving.values())
        lines += [f"  {name}: {info['reason']}" for name, info in self.candidates.items() if name not in used]
        return lines + [f"  note: {note}" for note in self.notes]

    def to_dict(self) -> dict:
        values = asdict(self)
        values["serving"] = {str(b): c for b, c in sorted(self.serving.items())}
        values["ranges"] = [{"lengths": r, "candidate": c} for r, c in self.ranges()]
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "Plan":
        values = dict(values)
        values.pop("ranges", None)
        values["serving"] = {int(b): c for b, c in values["serving"].items()}
        return cls(**values)


class PlannedSession:
    """The sessions of a plan behind one session's interface: `run` picks the session of the batch's bucket by its
    padded length. `buckets` are the bounds no batch may span (`Predictor.run` and the batcher keep to them): the
    plan's buckets, and within a bucket served by a fixed-width candidate (OpenVINO's int8 and bf16 kernels give
    answers that move with the padded width, by up to 7e-3 in a probability) steps of `granule` tokens, to which
    each batch is padded, so that an input's answer depends on its own length alone. A session that ran a batch
    of `SHRINK_TOKENS` padded tokens or more gives that run's memory back once it has been idle for
    `release_after` seconds (`IdleRelease`)."""

    def __init__(self, plan: Plan, sessions: dict[str, object], granule: int | None = PAD_GRANULE,
                 release_after: float = RELEASE_IDLE_S):
        self.plan, self.sessions = plan, sessions
        self.buckets, self._runs, low = [], [], 0
        releases = {name: IdleRelease(session, release_after) for name, session in sessions.items()}
        for bucket in plan.buckets:
            name = plan.serving[bucket]
            fixed = NAMES[name].fixed_width if name in NAMES else False
            bounds = fixed_widths(low, bucket, granule) if fixed else [bucket]
            self.buckets += bounds
            self._runs += [(sessions[name], fixed, releases[name])] * len(bounds)
            low = bucket
        self._first = sessions[plan.serving[plan.buckets[0]]]

    def get_inputs(self) -> list:
        return self._first.get_inputs()

    def get_outputs(self) -> list:
        return self._first.get_outputs()

    def run(self, output_names, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows, width = next(iter(feed.values())).shape
        index = bucket_of(self.buckets, width)
        session, fixed, release = self._runs[index]
        if fixed and width < self.buckets[index]:
            feed = pad_feed(feed, self.buckets[index])
        if rows * width < SHRINK_TOKENS:
            return session.run(output_names, feed)
        release.hold()
        try:
            return session.run(output_names, feed)
        finally:
            release.later()


class IdleRelease:
    """Gives back the memory of a session's large runs once it has run none for `delay` seconds: both runtimes keep
    their largest run's buffers for good (onnxruntime's arena, OpenVINO's compiled model), and giving them back after
    every large run cost 10-15% of each run of a burst (32 x 128 and 32 x 256 tokens, Intel Xeon with AMX,
    2026-12-07), since the next run allocates them again. `hold` before a large run, `later` after it; the release
    runs on a timer thread (`release_memory`)."""

    def __init__(self, session, delay: float = RELEASE_IDLE_S):
        self.session, self.delay = session, delay
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._running = 0

    def hold(self) -> None:
        """A large run starts: no release until it ends."""
        with self._lock:
            self._running += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def later(self) -> None:
        """A large run ended: release in `delay` seconds unless another starts first."""
        with self._lock:
            self._running -= 1
            if self._running == 0:
                self._timer = threading.Timer(self.delay, self._fire)
                self._timer.daemon = True
                self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._running or threading.current_thread() is not self._timer:
                return  # a large run started meanwhile: it schedules the next release
            self._timer = None
        release_memory(self.session)


def release_memory(session) -> None:
    """Give back what `session`'s runs left allocated: OpenVINO's compiled model's buffers and the C heap's free
    pages (`OpenVINOSession.release_memory`), onnxruntime's arena regions no run holds (a one-token run with the
    arena shrink option, `shrinking_run`)."""
    if isinstance(session, OpenVINOSession):
        session.release_memory()
        return
    names = [i.name for i in session.get_inputs()]
    session.run(None, synthetic_feed(names, 1, 1), shrinking_run())


def shrinking_run():
    """onnxruntime run options that give the CPU arena's free regions back when the run ends: its arena otherwise
    keeps the largest batch's memory for good (an MRPC int8 session: 89 MB fresh, 998 MB after 64 x 256 tokens, 89
    MB with this)."""
    global _SHRINKING
    if _SHRINKING is None:
        import onnxruntime as ort

        _SHRINKING = ort.RunOptions()
        _SHRINKING.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return _SHRINKING


_SHRINKING = None


def served_alone(name: str, session, buckets: list[int], granule: int | None = PAD_GRANULE) -> PlannedSession:
    """`session` as candidate `name` serves every bucket (padded to its fixed widths where it needs them): how the
    golden check, the timing and the export's gate run a candidate, the way the plan will serve it."""
    return PlannedSession(Plan({bucket: name for bucket in buckets}, {}, {}), {name: session}, granule)


def fixed_widths(low: int, high: int, granule: int | None = PAD_GRANULE) -> list[int]:
    """The widths a fixed-width candidate pads inputs of (low, high] tokens to: steps of `granule`, then `high`
    (`granule` None: `high` alone, for tasks whose batches cannot keep to finer bounds)."""
    if not granule:
        return [high]
    return [width for width in range(low + granule, high, granule)] + [high]


def pad_feed(feed: dict[str, np.ndarray], width: int) -> dict[str, np.ndarray]:
    """`feed` padded with masked columns (id 0, mask 0, type 0) to `width` tokens."""
    extra = width - next(iter(feed.values())).shape[-1]
    return {name: np.pad(array, ((0, 0), (0, extra))) for name, array in feed.items()}


def check_request(precision: str, runtime: str) -> None:
    """`precision` and `runtime` must be auto or one this plan knows (`ServeConfig` checks with this too)."""
    if precision not in ("auto", *PRECISIONS):
        raise TuneshipError(f"precision must be auto or one of {', '.join(PRECISIONS)}, not {precision!r}")
    if runtime not in ("auto", *RUNTIMES):
        raise TuneshipError(f"runtime must be auto or one of {', '.join(RUNTIMES)}, not {runtime!r}")


def candidates_for(manifest: BundleManifest, precision: str, runtime: str, bf16: bool | None = None,
                   openvino: str | None = "", folder: Path | None = None) -> tuple[list[Candidate], dict[str, dict]]:
    """The candidates `precision` and `runtime` allow for this bundle on this machine, and the ones left out with why.
    `bf16` and `openvino` (why OpenVINO cannot run, None when it can) default to this machine's facts; with `folder`
    (the bundle's), a model whose file is missing there is left out too."""
    openvino = openvino_missing() if openvino == "" else openvino
    bf16 = (openvino is None and openvino_has_bf16()) if bf16 is None else bf16
    chosen, dropped = [], {}
    for candidate in CANDIDATES:
        if precision not in ("auto", candidate.precision) or runtime not in ("auto", candidate.runtime):
            continue
        why = None
        if candidate.model not in manifest.models:
            why = _missing_model_reason(manifest, candidate)
        elif folder is not None and not all((folder / f).is_file() for f in manifest.models[candidate.model]["files"]):
            why = f"the bundle's {candidate.model} file ({', '.join(manifest.models[candidate.model]['files'])}) is missing"
        elif candidate.gated and not manifest.gates.get(candidate.gate, {}).get("passed", False):
            why = f"the {candidate.model} model did not pass the export's gate"
            usable = openvino is None or candidate.runtime != "openvino"
            dropped[candidate.name] = {"passed": False, "reason": why, "precision": candidate.precision,
                                       "usable": usable}  # usable: served when asked for explicitly
            continue
        elif candidate.runtime == "openvino" and openvino is not None:
            why = openvino
        elif candidate.precision == "bf16" and not bf16:
            why = "this CPU has no bf16 instructions"
        elif candidate.name == "openvino-fp32" and bf16 and precision == "auto":
            why = "this CPU computes bf16 natively: OpenVINO's bf16 on the same model is the candidate (faster, and checked)"
        if why:
            dropped[candidate.name] = {"passed": False, "reason": why, "precision": candidate.precision}
        else:
            chosen.append(candidate)
    return chosen, dropped


def _missing_model_reason(manifest: BundleManifest, candidate: Candidate) -> str:
    gate = manifest.gates.get(candidate.gate or "", {})
    if gate.get("reason"):
        return f"the bundle has no {candidate.model} model: {gate['reason']}"
    return f"the bundle has no {candidate.model} model"


def golden_check(candidate: Candidate, found: np.ndarray, expected: np.ndarray, agree, min_agreement: float) -> dict:
    """The verdict of `candidate`'s outputs on the golden inputs (`found`) against `expected` (see the module
    docstring for the rule); `agree(expected, found)` gives the share of matching answers and the largest difference.
    An input whose answer changes while its outputs move by at most `TIE_TOLERANCE` sat on the decision boundary in
    fp32 (a near tie, e.g. 0.498 against 0.502): it is not a slip, and its difference counts as an agreeing one's;
    but only `allowed_slips` of them are forgiven beyond the slips allowed (a model that flips every near-0.5 input,
    such as a negated one on an untrained model, fails)."""
    count = len(expected)
    per_input = [agree(expected[i : i + 1], found[i : i + 1]) for i in range(count)]
    tolerance = FP32_TOLERANCE if candidate == REFERENCE else GOLDEN_TOLERANCE
    ties = sum(share < 1.0 and difference <= min(TIE_TOLERANCE, tolerance) for share, difference in per_input)
    agreeing = [difference for share, difference in per_input if share == 1.0 or difference <= min(TIE_TOLERANCE, tolerance)]
    slips = count - len(agreeing)
    difference = max(agreeing, default=0.0)
    allowed = allowed_slips(count, min_agreement) if candidate.gated else 0
    tie_allowance = allowed_slips(count, min_agreement)  # a handful: a model that flips many "ties" is not tied
    passed = slips <= allowed and slips + ties <= allowed + tie_allowance and difference <= tolerance
    checked = {"golden_inputs": count, "disagreeing": slips, "near_ties": ties, "allowed": allowed,
               "max_difference": difference}
    tied = f", {ties} more a near tie within {TIE_TOLERANCE:g}" if ties else ""
    if passed:
        return {**checked, "passed": True, "reason": f"agrees on {count - slips - ties} of {count} golden inputs{tied}"}
    if slips > allowed:
        why = f"disagrees on {slips} of {count} golden inputs ({allowed} allowed{tied})"
    elif slips + ties > allowed + tie_allowance:
        why = (f"disagrees on {slips + ties} of {count} golden inputs, {ties} of them near ties (at most "
               f"{allowed + tie_allowance} allowed: near ties are forgiven a few at a time, not wholesale)")
    else:
        why = f"differs by up to {difference:.3g} on agreeing golden inputs ({tolerance:g} allowed)"
    return {**checked, "passed": False, "reason": why}


def synthetic_feed(input_names: list[str], batch: int, length: int) -> dict[str, np.ndarray]:
    """A padded-free batch of `batch` x `length` tokens for timing (speed does not depend on the token ids)."""
    arrays = {"input_ids": np.ones((batch, length), dtype=np.int64), "attention_mask": np.ones((batch, length), dtype=np.int64),
              "token_type_ids": np.zeros((batch, length), dtype=np.int64)}
    return {name: arrays[name] for name in input_names}


def timed_batch(length: int, batch_size: int) -> int:
    """The full batch timed at `length` tokens: the caller's batch size, but no more rows than make `TIMED_TOKENS`
    (at least `TIMED_MIN_BATCH`): OpenVINO's lead grows with rows x tokens, and start-up time with it too."""
    return max(1, min(batch_size, max(TIMED_MIN_BATCH, TIMED_TOKENS // length)))


def time_candidates(sessions: dict[str, object], input_names: list[str], buckets: list[int], batch_size: int,
                    rounds: int = TIMING_ROUNDS) -> dict[str, dict[str, float]]:
    """The fastest of `rounds` runs (ms) of each session at each bucket's `<length>x1` and `<length>x<timed_batch>`
    shapes (see `time_shape`). A candidate more than `PRUNE_RATIO` times slower than the best at one input is not
    timed at the full batch of that bucket (it cannot win it)."""
    timings: dict[str, dict[str, float]] = {name: {} for name in sessions}
    for length in buckets:
        names = list(sessions)
        for batch in dict.fromkeys((1, timed_batch(length, batch_size))):
            found = time_shape(sessions, names, input_names, length, batch, rounds)
            best = min(found.values())
            for name, ms in found.items():
                timings[name][f"{length}x{batch}"] = ms
            names = [name for name in names if found[name] <= PRUNE_RATIO * best]
    return timings


def time_shape(sessions: dict[str, object], names: list[str], input_names: list[str], length: int, batch: int,
               rounds: int) -> dict[str, float]:
    """The fastest of `rounds` runs (ms) of each named session at `length` x `batch`. They take turns in two blocks,
    forth then back: one untimed run opens each block, since a runtime's first run after another's pays for the
    other's threads still holding the cores (and, at a new shape, for allocation and compilation)."""
    feed, times = synthetic_feed(input_names, batch, length), {name: [] for name in names}
    for turn in range(2):
        for name in names if turn == 0 else reversed(names):
            sessions[name].run(None, feed)
            for _ in range(max(1, rounds // 2 + (turn == 0 and rounds % 2))):
                started = time.perf_counter()
                sessions[name].run(None, feed)
                times[name].append(1000 * (time.perf_counter() - started))
    return {name: float(np.min(t)) for name, t in times.items()}


def settle_close(sessions: dict[str, object], input_names: list[str], buckets: list[int], batch_size: int,
                 timings: dict[str, dict[str, float]], rounds: int = SETTLE_ROUNDS) -> list[int]:
    """Close calls timed again at the batch the caller forms: at a bucket whose full batch `time_candidates` cut to
    `TIMED_TOKENS`, the candidates within `CLOSE_RATIO` of the best score are timed at up to `SETTLE_TOKENS`
    (rows x length), and that shape replaces the cut one (the others, not close, keep no full-batch time there and
    cannot win). Two candidates can trade places between 16 and 32 rows of 256 tokens. Changes `timings`; returns
    the buckets timed again."""
    settled = []
    for length in buckets:
        cut, batch = timed_batch(length, batch_size), min(batch_size, max(TIMED_MIN_BATCH, SETTLE_TOKENS // length))
        scores = bucket_scores(timings, length)
        best = min(scores.values())
        close = [name for name in timings if scores[name] <= CLOSE_RATIO * best]
        if batch <= cut or len(close) < 2:
            continue
        found = time_shape(sessions, close, input_names, length, batch, rounds)
        for name, shapes in timings.items():
            shapes.pop(f"{length}x{cut}", None)
            if name in found:
                shapes[f"{length}x{batch}"] = found[name]
        settled.append(length)
    return settled


def bucket_scores(timings: dict[str, dict[str, float]], length: int) -> dict[str, float]:
    """Each candidate's mean time relative to the fastest at each shape timed at bucket `length` (infinite for a
    candidate not timed at one of them)."""
    shapes = sorted({shape for t in timings.values() for shape in t if shape.split("x")[0] == str(length)})
    best = {shape: min(t[shape] for t in timings.values() if shape in t) for shape in shapes}
    return {name: float(np.mean([t.get(shape, math.inf) / best[shape] for shape in shapes]))
            for name, t in timings.items()}


def choose(timings: dict[str, dict[str, float]], buckets: list[int]) -> dict[int, str]:
    """Per bucket, the candidate with the lowest mean time relative to the fastest at each shape timed there (a
    candidate not timed at a shape cannot win the bucket). Ties go to the candidate listed first (the reference,
    onnxruntime fp32, comes first)."""
    serving = {}
    for length in buckets:
        scores = bucket_scores(timings, length)
        serving[length] = min(scores, key=lambda name: (scores[name], list(timings).index(name)))
    return serving


def bundle_digest(folder: Path, manifest: BundleManifest) -> str:
    """sha256 of the manifest, the golden file and every model file (a re-export makes a new plan)."""
    return files_digest(folder, [MANIFEST_FILE, GOLDEN_FILE,
                                 *sorted({f for info in manifest.models.values() for f in info["files"]})])


def plan_key(folder: Path, manifest: BundleManifest, threads: int, batch_size: int, requested: dict) -> dict:
    return {"version": PLAN_VERSION, "cpu": cpu_facts(), "runtimes": runtime_versions(),
            "bundle": bundle_digest(folder, manifest), "threads": threads, "batch_size": batch_size,
            "requested": requested}


def read_cached(folder: Path, key: dict) -> tuple[Plan | None, str]:
    """The cached plan for `key`, or None and why it is not used."""
    path = folder / PLAN_FILE
    if not path.is_file():
        return None, ""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        if values.get("key") != key:
            changed = [k for k in key if values.get("key", {}).get(k) != key[k]]
            return None, f"{path} was made for another {', '.join(changed) or 'key'}; planning again"
        plan = Plan.from_dict(values["plan"])
        plan.cached = True
        return plan, ""
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return None, f"{path} is not a valid plan cache ({type(error).__name__}: {error}); planning again"


def write_cached(folder: Path, key: dict, plan: Plan) -> None:
    """Save the plan atomically next to the bundle; a read-only bundle folder keeps no cache."""
    from ..files import write_json

    try:
        write_json(folder / PLAN_FILE, {"key": key, "plan": plan.to_dict()})
    except OSError as error:
        logger.debug(f"{folder}: plan not cached ({error})")


def spinning_beside(spinning: bool | str, candidates) -> bool | str:
    """onnxruntime's spinning (`create_session`) in a process that also runs OpenVINO: idle threads that spin hold
    the cores OpenVINO's threads need, so `True` becomes "run" (spin within a run, stop when it returns). On the
    AMD EPYC (benchmarks/spinning.py, 2026-12-03), OpenVINO int8 at 32 tokens x 1 taking turns with onnxruntime int8:
    5.67 ms after spinning runs, 3.63 ms after "run", 4.10 ms without spinning; onnxruntime int8 alone at 128 x 1:
    7.96 ms spinning, 7.68 ms "run", 9.18 ms without."""
    if spinning is True and any(c.runtime == "openvino" for c in candidates):
        return "run"
    return spinning


def make_plan(folder: Path, manifest: BundleManifest, precision: str | None = "auto", runtime: str | None = "auto",
              threads: int | None = None, spinning: bool | str = True, build: Callable[[object, str], object] | None = None,
              outputs=None, agree=None, batch_sizes: list[int] | None = None, buckets: list[int] | None = None,
              cache: bool = True, granule: int | None = PAD_GRANULE):
    """The bundle's model served by its plan on this CPU: `build(session, name)` makes the task's model on a session,
    `outputs(model, rows)` its outputs on golden rows, `agree(expected, found)` the share of matching answers and
    the largest difference; `granule` the step of a fixed-width candidate's widths (None: the bucket's bound). Returns
    the model with `plan` set (its session a `PlannedSession`)."""
    started = time.perf_counter()
    precision, runtime = precision or "auto", runtime or "auto"
    check_request(precision, runtime)
    threads = threads or available_cores()
    buckets = buckets or buckets_for(manifest.max_length)
    batch_size = max(batch_sizes or [32])
    requested = {"precision": precision, "runtime": runtime}
    allowed, dropped = candidates_for(manifest, precision, runtime, folder=folder)
    explicit = precision != "auto" or runtime != "auto"
    if not allowed and explicit:  # only a model that failed its export gate fits: obey, with a warning
        allowed = [c for c in CANDIDATES if dropped.get(c.name, {}).get("usable")][:1]
        if allowed:
            logger.warning(f"serving {allowed[0].name} as asked, though {dropped.pop(allowed[0].name)['reason']}")
    if not allowed:
        reasons = "; ".join(f"{name}: {info['reason']}" for name, info in dropped.items()) or "no candidate fits"
        raise TuneshipError(f"nothing can serve precision {precision} on runtime {runtime} here ({reasons})")
    notes = [f"OpenVINO not used: {openvino_missing()}"] if openvino_missing() and runtime == "auto" else []

    loaded: dict[str, object] = {}  # candidate -> the task's model on it, served alone (see `served_alone`)
    raw: dict[str, object] = {}  # candidate -> its runtime's session
    spin = spinning_beside(spinning, allowed)  # a plan served by onnxruntime alone gets `spinning` back (`_finish`)

    def load(candidate: Candidate):
        if candidate.name not in loaded:
            session = open_session(candidate.runtime, folder / manifest.model_file(candidate.model), threads, spin,
                                   candidate.precision)
            check_inputs(session, manifest, folder)
            raw[candidate.name] = session
            loaded[candidate.name] = build(served_alone(candidate.name, session, buckets, granule), candidate.name)
        return loaded[candidate.name]

    golden, golden_missing = read_golden(folder)
    cache = cache and not explicit  # a forced candidate is not timed: nothing to save, and the auto plan stays
    key = plan_key(folder, manifest, threads, batch_size, requested) if cache else None
    plan = None
    if cache:
        plan, why = read_cached(folder, key)
        if why:
            notes.append(why)
    verdicts = dict(dropped)
    by_name = {c.name: c for c in allowed}

    def check(candidates: list[Candidate], reference: np.ndarray | None) -> dict[str, dict]:
        found = {}
        for candidate in candidates:
            try:
                model = load(candidate)
            except TuneshipError as error:  # a damaged or unreadable file: this candidate only is dropped
                found[candidate.name] = {"passed": False, "reason": str(error), "unloadable": True}
            else:
                if reference is None:
                    found[candidate.name] = {"passed": True, "reason": f"not checked: {golden_missing}"}
                    continue
                output = np.concatenate([outputs(model, [row]) for row in golden["inputs"]])
                found[candidate.name] = golden_check(candidate, output, reference, agree, min_agreement(manifest, candidate))
            found[candidate.name]["precision"] = candidate.precision
        return found

    expected = None if golden is None else np.asarray(golden["fp32"])
    if plan is not None:  # a cached plan: check what it serves with against the stored outputs, or plan again
        serving = [by_name.get(name) for name in dict.fromkeys(plan.serving.values())]
        if None not in serving:
            spin = spinning_beside(spinning, serving)  # opened as they will serve
            found = check(serving, expected)
            if all(v["passed"] for v in found.values()):
                plan.notes, plan.seconds = notes, time.perf_counter() - started
                return _finish(folder, manifest, plan, loaded, raw, load, by_name, granule, threads, respin=False)
            loaded.clear()  # planning again: every candidate opened alike
            raw.clear()
            spin = spinning_beside(spinning, allowed)
        notes.append("the cached plan's candidates do not all pass their checks here; planning again")
        plan = None

    if golden is not None and REFERENCE.name in by_name:  # the reference first: it blames the file, or not
        reference = check([REFERENCE], expected)[REFERENCE.name]
        if not reference["passed"] and not reference.get("unloadable"):
            notes.append(f"{GOLDEN_FILE} does not match onnxruntime fp32 here ({reference['reason']}): the file is "
                         "damaged or not this bundle's; the other candidates are compared with fp32's outputs here")
            expected = np.concatenate([outputs(load(REFERENCE), [row]) for row in golden["inputs"]])
            reference = {"passed": True, "precision": "fp32",
                         "reason": f"the reference (its outputs replace the {GOLDEN_FILE} that it does not reproduce)"}
        verdicts[REFERENCE.name] = reference

    verdicts.update(check([c for c in allowed if c.name not in verdicts], expected))
    passing = [c for c in allowed if verdicts[c.name]["passed"]]
    if not passing:  # everything asked for fails its check: obey an explicit request, with a warning
        if not explicit:
            raise TuneshipError("no candidate passes its check on this CPU: " +
                                "; ".join(f"{n}: {v['reason']}" for n, v in verdicts.items()))
        forced = allowed[0]
        logger.warning(f"serving {forced.name} as asked, though its check speaks against it: "
                       f"{verdicts[forced.name]['reason']}")
        passing = [forced]
    sessions = {c.name: load(c).session for c in passing}
    if len(passing) > 1:
        timings = time_candidates(sessions, list(manifest.input_names), buckets, batch_size)
        settle_close(sessions, list(manifest.input_names), buckets, batch_size, timings)
        serving = choose(timings, buckets)
        for name, shapes in timings.items():
            verdicts[name]["ms"] = shapes
    else:
        serving = {b: passing[0].name for b in buckets}
    for candidate in passing:
        used = candidate.name in serving.values()
        verdict = verdicts[candidate.name]
        if not used:
            verdict["reason"] = f"passes its check ({verdict['reason']}) but is slower here at every length"
        elif len(passing) == 1 and explicit:
            verdict["reason"] = f"as asked; {verdict['reason']}"
    plan = Plan(serving, verdicts, requested, notes=notes, seconds=time.perf_counter() - started)
    if cache:
        write_cached(folder, key, plan)
    return _finish(folder, manifest, plan, loaded, raw, load, by_name, granule, threads,
                   respin=spin != spinning)


def min_agreement(manifest: BundleManifest, candidate: Candidate) -> float:
    return float(manifest.gates.get(candidate.gate or "", {}).get("min_agreement", DEFAULT_MIN_AGREEMENT))


def _finish(folder: Path, manifest: BundleManifest, plan: Plan, loaded: dict, raw: dict, load, by_name: dict,
            granule: int | None, threads: int, respin: bool = False):
    """The model of the plan's first bucket, its session replaced by the plan's sessions; unused models released.
    `respin`: the sessions were opened spinning within a run only, beside OpenVINO's, though full spinning was asked
    for; a plan served by onnxruntime alone gets them back with it."""
    names = list(dict.fromkeys(plan.serving[b] for b in plan.buckets))
    models = {name: load(by_name[name]) for name in names}
    for name in list(loaded):
        if name not in models:
            del loaded[name], raw[name]
    if respin and all(by_name[name].runtime == "onnxruntime" for name in names):
        for name in names:
            raw[name] = create_session(folder / manifest.model_file(by_name[name].model), threads, spinning=True)
    model = models[names[0]]
    model.session = PlannedSession(plan, {name: raw[name] for name in names}, granule)
    model.plan = plan
    model.precision = plan.label
    model.model_files = sorted({f for name in names for f in manifest.model_files(by_name[name].model)})
    for line in plan.describe():
        logger.debug(f"{folder}: {line}")
    return model


def fixed_plan(manifest: BundleManifest, candidate: Candidate, reason: str, precision: str | None = "auto",
               runtime: str | None = "auto") -> Plan:
    """The plan of a bundle with one way to run it (summarization's fp32 graphs on onnxruntime); asking for
    another precision or runtime is an error that says why."""
    for asked, offered, what in ((precision or "auto", candidate.precision, "precision"),
                                 (runtime or "auto", candidate.runtime, "runtime")):
        if asked not in ("auto", offered):
            raise TuneshipError(f"{what} {asked} is not available for this {manifest.task} bundle: {reason}")
    verdict = {"passed": True, "precision": candidate.precision, "reason": reason}
    return Plan({manifest.max_length: candidate.name}, {candidate.name: verdict},
                {"precision": precision or "auto", "runtime": runtime or "auto"})
