"""Timing helper shared by the benchmark scripts (run from benchmarks/, so importable)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Minimum wall-clock seconds of ``repeats`` calls and the last result (noise on a
    shared machine only ever adds time)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result
