"""Dynamic micro-batching: concurrent requests merged into one onnxruntime run, budgeted in tokens.

Modelled on Hugging Face's text-embeddings-inference: requests wait in a bounded queue; one worker
thread takes an anchor input and the queued inputs closest to it in length, up to a token budget
(inputs x longest input, i.e. padded tokens) and a batch size, and runs them together. Anchors go round
the waiting requests in arrival order (the oldest input of the request after the last one anchored), so a
request of many long inputs cannot hold a short one back by more than one batch. Under
concurrent load the worker waits up to `max_wait_ms` for a batch to fill; a lone request on an idle
server runs at once, so batching costs no latency when there is nothing to batch.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import TuneshipError

# How far down the queue the worker looks for inputs of similar length to the oldest one.
LOOKAHEAD_BATCHES = 4


class Overloaded(TuneshipError):
    """The queue is full; `retry_after` is a fair guess, in whole seconds, of when it will have room."""

    def __init__(self, queued: int, retry_after: int):
        super().__init__(f"the server is overloaded ({queued} inputs queued); retry in {retry_after} s")
        self.retry_after = retry_after


class ShuttingDown(TuneshipError):
    """The batcher was closed before the input ran."""


@dataclass(frozen=True)
class BatchStats:
    """What one onnxruntime run did, for monitoring."""

    size: int
    padded_tokens: int
    seconds: float


class _Job:
    """One `submit` call: its inputs may run in several batches; the future resolves when all have."""

    __slots__ = ("count", "logits", "remaining", "future", "loop", "number")
    _numbers = itertools.count()

    def __init__(self, count: int, future: asyncio.Future, loop: asyncio.AbstractEventLoop):
        self.number = next(self._numbers)  # arrival order, for taking turns
        self.count = count
        self.logits: np.ndarray | None = None
        self.remaining = count
        self.future = future
        self.loop = loop


class _Item:
    __slots__ = ("job", "row", "encoding", "length", "arrival")

    def __init__(self, job: _Job, row: int, encoding, arrival: float):
        self.job, self.row, self.encoding, self.arrival = job, row, encoding, arrival
        self.length = max(1, len(encoding.ids))


def _settle(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    if future.done():  # the client went away and its handler was cancelled
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class DynamicBatcher:
    """Merge tokenized inputs from concurrent callers into batched runs of `run` on one worker thread.

    `run(encodings)` must return one row of logits per encoding, in order (e.g. `Predictor.run`). With `buckets`
    (a serving plan's length bounds), a batch holds inputs of one bucket only, so each runs on its bucket's candidate.
    """

    def __init__(
        self,
        run: Callable[[Sequence], np.ndarray],
        *,
        max_batch_tokens: int,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        on_batch: Callable[[BatchStats], None] | None = None,
        buckets: Sequence[int] | None = None,
    ):
        self._run = run
        self._buckets = np.asarray(buckets if buckets else [], dtype=np.int64)
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._condition = threading.Condition()
        self._closed = False
        self._expect_company = False
        self._last_anchor = -1  # the number of the job whose input anchored the last batch
        self._inputs_per_second = 0.0
        self._thread = threading.Thread(target=self._work, name="tuneship-batcher", daemon=True)

    # ------------------------------------------------------------------ callers (event loop thread)

    def start(self) -> "DynamicBatcher":
        self._thread.start()
        return self

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def submit(self, encodings: Sequence) -> asyncio.Future:
        """Queue `encodings`; the returned future gives their logits (inputs x labels), in order.

        Raises `Overloaded` when they do not fit in the queue, `ShuttingDown` after `close`.
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        job = _Job(len(encodings), future, loop)
        now = time.monotonic()
        with self._condition:
            if self._closed:
                raise ShuttingDown("the server is shutting down")
            if len(self._queue) + len(encodings) > self.max_queue:
                raise Overloaded(len(self._queue), self._retry_after())
            self._queue.extend(_Item(job, row, encoding, now) for row, encoding in enumerate(encodings))
            self._condition.notify()
        if not encodings:
            future.set_result(None)
        future.add_done_callback(lambda done: self._forget(job) if done.cancelled() else None)
        return future

    def _forget(self, job: "_Job") -> None:
        """A caller went away (its future cancelled): its queued inputs leave the queue now, so that they neither
        run nor count against the next caller's admission."""
        with self._condition:
            if any(item.job is job for item in self._queue):
                self._queue = deque(item for item in self._queue if item.job is not job)

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking inputs, finish the batch in flight, and fail whatever is still queued."""
        with self._condition:
            self._closed = True
            left = list(self._queue)
            self._queue.clear()
            self._condition.notify_all()
        for item in left:
            item.job.loop.call_soon_threadsafe(_settle, item.job.future, None, ShuttingDown("the server is shutting down"))
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _retry_after(self) -> int:
        rate = self._inputs_per_second
        return 1 if rate <= 0 else max(1, math.ceil(len(self._queue) / rate))

    # ------------------------------------------------------------------ worker thread

    def _full(self) -> bool:
        """Whether the oldest queued inputs already make a whole batch."""
        if len(self._queue) >= self.max_batch_size:
            return True
        longest = max(item.length for item in self._queue)
        return longest * len(self._queue) >= self.max_batch_tokens

    def _window(self) -> list[_Item]:
        """The queue seen from this batch's anchor: the oldest input of the first job after the one that anchored the
        last batch (jobs take turns), the inputs after it, then the older ones; as far as the look-ahead goes."""
        start = next((i for i, item in enumerate(self._queue) if item.job.number > self._last_anchor), 0)
        size = min(len(self._queue), self.max_batch_size * LOOKAHEAD_BATCHES)
        queue = list(self._queue)
        return [queue[(start + i) % len(queue)] for i in range(size)]

    def _take(self) -> list[_Item]:
        """An anchor input and the queued inputs nearest to it in length, within both budgets. Inputs whose caller went
        away (its future cancelled) are dropped, not run."""
        if any(item.job.future.done() for item in self._queue):
            self._queue = deque(item for item in self._queue if not item.job.future.done())
            if not self._queue:
                return []
        window = self._window()
        anchor = window[0]
        self._last_anchor = anchor.job.number
        if len(self._buckets):
            bucket = np.searchsorted(self._buckets, anchor.length)
            window = [item for item in window if np.searchsorted(self._buckets, item.length) == bucket]
        window.sort(key=lambda item: abs(item.length - anchor.length))  # stable: the anchor first, ties in turn order
        chosen, longest = [], 0
        for item in window:
            width = max(longest, item.length)
            if chosen and (len(chosen) >= self.max_batch_size or width * (len(chosen) + 1) > self.max_batch_tokens):
                continue
            chosen.append(item)
            longest = width
            if len(chosen) >= self.max_batch_size:
                break
        taken = set(map(id, chosen))
        self._queue = deque(item for item in self._queue if id(item) not in taken)
        return chosen

    def _next_batch(self) -> list[_Item] | None:
        with self._condition:
            while not self._queue and not self._closed:
                self._condition.wait()
            if self._closed:
                return None
            if self._expect_company and self.max_wait > 0:
                deadline = self._queue[0].arrival + self.max_wait
                while not self._closed and not self._full():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._condition.wait(left)
                if self._closed:
                    return None
            return self._take()

    def _work(self) -> None:
        while True:
            items = self._next_batch()
            if items is None:
                return
            if not items:  # every queued input's caller had gone away
                continue
            started = time.perf_counter()
            try:
                logits = self._run([item.encoding for item in items])
            except Exception as error:  # noqa: BLE001 - the callers get the error; the worker lives on
                for item in items:
                    item.job.loop.call_soon_threadsafe(_settle, item.job.future, None, error)
                continue
            seconds = time.perf_counter() - started
            self._deliver(items, logits)
            self._expect_company = len(items) > 1 or bool(self._queue)
            rate = len(items) / max(seconds, 1e-6)
            self._inputs_per_second = rate if self._inputs_per_second == 0 else 0.8 * self._inputs_per_second + 0.2 * rate
            if self._on_batch is not None:
                self._on_batch(BatchStats(len(items), len(items) * max(item.length for item in items), seconds))

    @staticmethod
    def _deliver(items: list[_Item], logits: np.ndarray) -> None:
        for item, row in zip(items, logits):
            job = item.job
            if job.logits is None:
                job.logits = np.empty((job.count, logits.shape[1]), dtype=logits.dtype)
            job.logits[item.row] = row
            job.remaining -= 1
            if job.remaining == 0:
                job.loop.call_soon_threadsafe(_settle, job.future, job.logits)
