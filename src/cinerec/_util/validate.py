"""Validation of numeric options in one place: finite, in range, the right type.

Every public entry point that takes a number from a user (CLI options, `recommend`'s
``k`` and ``risk_aversion``, seeds, raw ids) checks it here, so NaN, infinities,
1e308 or 2**70 give one clear `ConfigError` naming the option instead of an empty
result or a traceback deep inside numpy.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from cinerec.errors import ConfigError

#: Largest seed numpy's generators and torch accept alike.
MAX_SEED = 2**32 - 1
#: risk_aversion multiplies a sigma <= 2.25 on MovieLens scales; beyond this it only
#: ranks by sigma and overflows nothing, but a larger value is almost surely a typo.
MAX_RISK_AVERSION = 1000.0
INT64_MAX = 2**63 - 1


def number(
    name: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """``value`` as a finite float within [lo, hi] (open ends when asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
    v = float(value)
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(f"{name} must be {'>' if lo_open else '>='} {lo:g}, got {value!r}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ConfigError(f"{name} must be {'<' if hi_open else '<='} {hi:g}, got {value!r}")
    return v


def integer(name: str, value: Any, *, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int within [lo, hi]; floats must be whole."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        v = int(value)  # exact (through float, ids beyond 2**53 would round)
    else:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        v = int(f)
    if lo is not None and v < lo:
        raise ConfigError(f"{name} must be >= {lo}, got {value!r}")
    if hi is not None and v > hi:
        raise ConfigError(f"{name} must be <= {hi}, got {value!r}")
    return v


def seed(value: Any, name: str = "seed") -> int:
    return integer(name, value, lo=0, hi=MAX_SEED)


def k(value: Any, name: str = "k") -> int:
    return integer(name, value, lo=1, hi=INT64_MAX)


def risk_aversion(value: Any) -> float:
    return number("risk_aversion", value, lo=0.0, hi=MAX_RISK_AVERSION)


def index_array(name: str, values: Any) -> np.ndarray:
    """``values`` (a sequence or array of whole numbers) as a 1-d int64 array; anything
    that is not (floats with fractions, strings, ids beyond int64) is a `ConfigError`."""
    try:
        arr = np.asarray(values)
        if arr.dtype == object or arr.dtype.kind in "fc":
            as_float = arr.astype(np.float64)
            if not np.isfinite(as_float).all() or (as_float != np.round(as_float)).any():
                raise ValueError("not whole numbers")
            if arr.size and (np.abs(as_float).max() >= 2**63):
                raise OverflowError
        elif arr.dtype.kind not in "iub":
            raise ValueError(f"dtype {arr.dtype}")
        return arr.astype(np.int64).ravel()
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} must be whole-number indices (int64), got {_short(values)}") from None


def float_array(name: str, values: Any) -> np.ndarray:
    """``values`` as a 1-d array of finite float64 numbers, else a `ConfigError`."""
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} must be numbers, got {_short(values)}") from None
    if not np.isfinite(arr).all():
        raise ConfigError(f"{name} must be finite numbers (no NaN or infinity)")
    return arr


def _short(values: Any) -> str:
    text = repr(values)
    return text if len(text) <= 60 else text[:57] + "..."
