"""DynamicBatcher with a recording stand-in for onnxruntime: merging, budgets, grouping, overload, shutdown."""

import asyncio
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from tuneship.serving.batching import DynamicBatcher, Overloaded, ShuttingDown


def encoding(length: int, tag: int = 0):
    return SimpleNamespace(ids=[tag] * length)


class Recorder:
    """Returns logits [tag, length] per input and remembers each run's lengths; `gate` can hold runs back."""

    def __init__(self):
        self.runs: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, encodings):
        self.started.set()
        self.gate.wait(10)
        self.runs.append([len(e.ids) for e in encodings])
        return np.array([[e.ids[0], len(e.ids)] for e in encodings], dtype=np.float32)


async def hold_worker(b: DynamicBatcher, recorder: Recorder, length: int):
    """Submit one input and return its future once the worker holds it at `recorder.gate` (which must be closed)."""
    first = b.submit([encoding(length)])
    await asyncio.to_thread(recorder.started.wait, 5)
    return first


def batcher(recorder, **options) -> DynamicBatcher:
    settings = dict(max_batch_tokens=10_000, max_batch_size=64, max_wait_ms=5.0, max_queue=1000)
    return DynamicBatcher(recorder, **{**settings, **options}).start()


def test_results_come_back_in_order_for_each_caller():
    recorder = Recorder()
    b = batcher(recorder)

    async def main():
        futures = [b.submit([encoding(3 + i, tag=10 * k + i) for i in range(3)]) for k in range(5)]
        return await asyncio.gather(*futures)

    results = asyncio.run(main())
    b.close()
    for k, logits in enumerate(results):
        assert logits[:, 0].tolist() == [10 * k, 10 * k + 1, 10 * k + 2]
        assert logits[:, 1].tolist() == [3, 4, 5]


def test_concurrent_requests_are_merged_into_one_run():
    recorder = Recorder()
    recorder.gate.clear()
    b = batcher(recorder)

    async def main():
        first = await hold_worker(b, recorder, 5)  # the worker is busy with the first request...
        rest = [b.submit([encoding(5, tag=i)]) for i in range(20)]  # ...while 20 more arrive
        recorder.gate.set()
        await asyncio.gather(first, *rest)

    asyncio.run(main())
    b.close()
    assert [len(run) for run in recorder.runs] == [1, 20]


def test_batches_respect_the_size_and_token_budgets():
    recorder = Recorder()
    recorder.gate.clear()
    b = batcher(recorder, max_batch_size=8, max_batch_tokens=100)

    async def main():
        first = await hold_worker(b, recorder, 1)
        short = b.submit([encoding(10) for _ in range(20)])  # 8 per run by size
        long = b.submit([encoding(40) for _ in range(5)])  # 2 per run by tokens (3 x 40 > 100)
        recorder.gate.set()
        await asyncio.gather(first, short, long)

    asyncio.run(main())
    b.close()
    for run in recorder.runs:
        assert len(run) <= 8 and len(run) * max(run) <= 100
    assert sum(map(len, recorder.runs)) == 26


def test_inputs_of_similar_length_run_together():
    recorder = Recorder()
    recorder.gate.clear()
    b = batcher(recorder, max_batch_size=4)

    async def main():
        first = await hold_worker(b, recorder, 1)
        mixed = b.submit([encoding(n) for n in (10, 200, 11, 201, 12, 202, 13, 203)])
        recorder.gate.set()
        await asyncio.gather(first, mixed)

    asyncio.run(main())
    b.close()
    assert sorted(map(sorted, recorder.runs[1:])) == [[10, 11, 12, 13], [200, 201, 202, 203]]


def test_a_request_of_many_long_inputs_holds_a_later_short_one_back_by_one_batch_at_most():
    recorder = Recorder()
    recorder.gate.clear()
    b = batcher(recorder, max_batch_size=4, max_batch_tokens=400)

    async def main():
        first = await hold_worker(b, recorder, 1)
        long = b.submit([encoding(100, tag=1) for _ in range(40)])  # ten runs of four
        short = b.submit([encoding(5, tag=2)])
        later = b.submit([encoding(6, tag=3), encoding(7, tag=3)])
        recorder.gate.set()
        await asyncio.gather(first, long, short, later)

    asyncio.run(main())
    b.close()
    runs = recorder.runs[1:]
    assert sum(map(len, runs)) == 43
    # Jobs take turns anchoring a batch: the long job's first batch, then the short job's, whose batch mates are the
    # nearest in length (the third job's two inputs, then one long input the budget still holds); the rest are long.
    assert runs[0] == [100] * 4
    assert sorted(runs[1]) == [5, 6, 7, 100]
    assert all(set(run) == {100} for run in runs[2:])


def test_a_lone_request_on_an_idle_server_does_not_wait():
    recorder = Recorder()
    b = batcher(recorder, max_wait_ms=2000)

    async def main():
        loop = asyncio.get_running_loop()
        started = loop.time()
        await b.submit([encoding(4)])
        return loop.time() - started

    assert asyncio.run(main()) < 1.0
    b.close()


def test_a_full_queue_is_refused_with_a_retry_time():
    recorder = Recorder()
    recorder.gate.clear()
    b = batcher(recorder, max_queue=10)

    async def main():
        first = await hold_worker(b, recorder, 2)
        queued = b.submit([encoding(2) for _ in range(10)])
        with pytest.raises(Overloaded) as refused:
            b.submit([encoding(2)])
        assert refused.value.retry_after >= 1 and b.queue_depth == 10
        recorder.gate.set()
        await asyncio.gather(first, queued)
        assert b.queue_depth == 0
        await b.submit([encoding(2)])  # room again

    asyncio.run(main())
    b.close()


def test_close_fails_what_is_still_queued_and_refuses_more():
    recorder = Recorder()
    recorder.gate.clear()
    b = batcher(recorder)

    async def main():
        first = await hold_worker(b, recorder, 2)
        waiting = b.submit([encoding(2)])
        threading.Timer(0.2, recorder.gate.set).start()
        await asyncio.to_thread(b.close)
        await first
        with pytest.raises(ShuttingDown):
            await waiting
        with pytest.raises(ShuttingDown):
            b.submit([encoding(2)])

    asyncio.run(main())


def test_an_error_in_the_model_reaches_the_callers_and_the_worker_lives_on():
    calls = []

    def flaky(encodings):
        calls.append(len(encodings))
        if len(calls) == 1:
            raise RuntimeError("onnxruntime failed")
        return np.zeros((len(encodings), 2), dtype=np.float32)

    b = DynamicBatcher(flaky, max_batch_tokens=1000, max_batch_size=8, max_wait_ms=0, max_queue=100).start()

    async def main():
        with pytest.raises(RuntimeError, match="onnxruntime failed"):
            await b.submit([encoding(3)])
        assert (await b.submit([encoding(3)])).shape == (1, 2)

    asyncio.run(main())
    b.close()
