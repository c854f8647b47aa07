"""The coalescer: concurrent single requests batched, each answered on its own."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cinerec.serving.coalesce import Coalescer
from cinerec.serving.service import RecommendationService, RecommendRequest, ServiceConfig
from tests.serving.artifacts import save_models


class _Recorder:
    """A batch function that squares numbers, refuses negatives, and remembers batches."""

    def __init__(self, delay: float = 0.0):
        self.batches: list[list[int]] = []
        self.delay = delay
        self.started = threading.Event()

    def __call__(self, xs):
        self.batches.append(list(xs))
        self.started.set()
        time.sleep(self.delay)
        if any(x < 0 for x in xs):
            raise ValueError(f"negative in {list(xs)}")
        return [x * x for x in xs]


def test_requests_waiting_during_a_batch_become_the_next_batch() -> None:
    fn = _Recorder(delay=0.3)
    c = Coalescer(fn, max_batch=64)
    with ThreadPoolExecutor(12) as pool:
        first = pool.submit(c.submit, 1)
        assert fn.started.wait(5)  # the worker is busy with [1] ...
        rest = [pool.submit(c.submit, x) for x in range(2, 12)]  # ... so these queue up
        assert first.result(5) == 1
        assert [f.result(5) for f in rest] == [x * x for x in range(2, 12)]
    c.close()
    assert fn.batches[0] == [1]
    assert sorted(x for b in fn.batches[1:] for x in b) == list(range(2, 12))
    assert len(fn.batches) <= 3  # the ten waiting ones went together (timing allows a split)
    assert c.requests == 11 and c.batches == len(fn.batches)


def test_a_bad_request_fails_alone() -> None:
    fn = _Recorder(delay=0.2)
    c = Coalescer(fn)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(c.submit, 0)
        assert fn.started.wait(5)
        futures = {x: pool.submit(c.submit, x) for x in (3, -1, 4)}
        first.result(5)
        assert futures[3].result(5) == 9 and futures[4].result(5) == 16
        with pytest.raises(ValueError, match="negative"):
            futures[-1].result(5)
    c.close()


def test_max_batch_bounds_a_batch_and_close_stops_the_worker() -> None:
    fn = _Recorder(delay=0.1)
    c = Coalescer(fn, max_batch=3)
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(c.submit, range(10)))
    assert results == [x * x for x in range(10)]
    assert max(len(b) for b in fn.batches) <= 3
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        c.submit(1)
    with pytest.raises(ValueError):
        Coalescer(fn, max_batch=0)


def test_finish_runs_on_the_worker_and_its_errors_reach_the_caller() -> None:
    c = Coalescer(_Recorder())
    names: list[str] = []

    def finish(v):
        names.append(threading.current_thread().name)
        if v == 4:
            raise KeyError("cannot encode")
        return str(v)

    assert c.submit_future(3, finish).result(5) == "9"
    with pytest.raises(KeyError):
        c.submit_future(2, finish).result(5)
    assert names == ["cinerec-coalescer"] * 2
    c.close()


def test_the_service_answers_concurrent_requests_as_it_answers_them_one_by_one(tmp_path) -> None:
    service = RecommendationService(ServiceConfig(save_models(tmp_path)))
    reqs = [RecommendRequest(user=u, k=5, model=m) for u in (1, 2, 3, 4, 5, 424242) for m in ("svd", "ease")]
    alone = [service.recommend_many([r])[0] for r in reqs]
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(service.recommend, reqs * 3))
    for a, b in zip(alone * 3, together, strict=True):
        assert [x["movieId"] for x in a["items"]] == [x["movieId"] for x in b["items"]]
        assert a["basis"] == b["basis"]
    assert service.coalescer.requests >= len(reqs) * 3
    service.close()
