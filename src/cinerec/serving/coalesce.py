"""Request coalescing: concurrent single requests answered by one batched call.

Scoring one user reads the whole item table (a matrix-vector product, bound by memory
bandwidth); scoring sixteen reads it once (a matrix product), and the per-call Python
work (validation, top-k, masks) is vectorised over the batch. `Coalescer` hands every
request to one worker thread, which takes *all* the requests waiting when it becomes
free as its next batch, so:

- an idle server adds no delay (a lone request is computed at once, alone);
- under load the batch grows by itself to the number of requests waiting (at most
  ``max_batch``): no timer, no tuning knob;
- each caller gets its own answer or its own exception: when a batch fails, its
  requests are answered one by one, so one bad request never fails the others;
- one thread computes, whatever the number of connections: the event loop (REST) or
  the gRPC threads only wait on futures, instead of dozens of threads fighting over
  the interpreter lock.

``submit`` blocks (gRPC's thread pool); ``submit_future`` returns a
`concurrent.futures.Future` that an asyncio route awaits with `asyncio.wrap_future`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Coalescer(Generic[In, Out]):
    """``submit(x)`` returns ``batch_fn([.., x, ..])[i]``, batching concurrent callers."""

    def __init__(self, batch_fn: Callable[[Sequence[In]], Sequence[Out]], max_batch: int = 64,
                 name: str = "cinerec-coalescer"):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._fn = batch_fn
        self.max_batch = max_batch
        self._name = name
        self._cond = threading.Condition()
        self._pending: list[tuple[In, Future, Callable[[Out], Any] | None]] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Batches computed and requests answered (for /metrics and the benchmark).
        self.batches = 0
        self.requests = 0

    def submit(self, request: In) -> Out:
        return self.submit_future(request).result()

    def submit_future(self, request: In, finish: Callable[[Out], Any] | None = None) -> Future:
        """A future of ``batch_fn``'s answer to ``request``, passed through ``finish``
        on the worker thread when given (e.g. encoding it, off the event loop)."""
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the coalescer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._thread.start()
            self._pending.append((request, fut, finish))
            self._cond.notify()
        return fut

    def close(self) -> None:
        """Answer what is queued, then stop the worker thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
            self._compute(batch)
            self.batches += 1
            self.requests += len(batch)

    def _compute(self, batch: list[tuple[In, Future, Callable[[Out], Any] | None]]) -> None:
        live = [(r, f, fin) for r, f, fin in batch if f.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = self._fn([r for r, _, _ in live])
        except BaseException as e:  # noqa: BLE001 - handed back to its caller(s)
            if len(live) == 1:
                live[0][1].set_exception(e)
                return
            for r, f, fin in live:  # one bad request must not fail the rest: answer each alone
                try:
                    out = self._fn([r])[0]
                except BaseException as e1:  # noqa: BLE001
                    f.set_exception(e1)
                else:
                    _finish(f, fin, out)
            return
        for (_, f, fin), out in zip(live, results, strict=True):
            _finish(f, fin, out)


def _finish(fut: Future, finish: Callable[[Any], Any] | None, out: Any) -> None:
    try:
        fut.set_result(out if finish is None else finish(out))
    except BaseException as e:  # noqa: BLE001
        fut.set_exception(e)
