"""The fuzz targets of cinerec's boundaries, shared by the CI suite (`test_fuzz.py`) and
the long run (`benchmarks/fuzz.py`).

A target is a hypothesis strategy and a function of one example that may raise only
*declared* errors (a `CinerecError` subclass: a clear message, exit code 2 at the CLI).
Anything else escaping is a bug. `TARGETS` lists every target by name; the data-layer
targets come from `fuzz_data.DATA_TARGETS` when that module is present.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from cinerec import artifacts, experiment
from cinerec.data.splits import make_split
from cinerec.errors import CinerecError
from cinerec.models.query import History, Query
from cinerec.models.registry import create_model
from cinerec.testing.data import make_ratings_dataset

DECLARED: tuple[type[BaseException], ...] = (CinerecError,)


@dataclass(frozen=True)
class Target:
    strategy: st.SearchStrategy[Any]
    run: Callable[[Any], Any]
    declared: tuple[type[BaseException], ...] = DECLARED


# ---- fixtures built once per process ------------------------------------------------------
@functools.cache
def _dataset():
    return make_ratings_dataset(n_users=30, n_items=20, density=0.3, seed=11)


@functools.cache
def _model():
    return create_model("svd", {"n_factors": 4, "epochs": 2}).fit(_dataset(), options={"progress": False})


@functools.cache
def _artifact() -> Path:
    root = Path(tempfile.mkdtemp(prefix="cinerec-fuzz-"))
    return artifacts.save_model(_model(), root / "model")


def _damaged_copy(name: str, content: bytes) -> Path:
    """A fresh copy of the saved artifact with file ``name`` replaced by ``content``."""
    dst = Path(tempfile.mkdtemp(prefix="cinerec-fuzz-"))
    shutil.copytree(_artifact(), dst / "m")
    (dst / "m" / name).write_bytes(content)
    return dst / "m"


def _load_damaged(name: str, content: bytes) -> None:
    """Load the artifact with ``name`` damaged. The manifest's checksum of the damaged file
    is brought up to date first, so the damage reaches the parsers and the consistency
    checks instead of stopping at the checksum (which `test_artifacts` covers)."""
    path = _damaged_copy(name, content)
    try:
        if name != "manifest.json":
            manifest = json.loads((path / "manifest.json").read_text())
            manifest["files"][name] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
            (path / "manifest.json").write_text(json.dumps(manifest))
        model = artifacts.load_model(path)
        # What loads must serve: finite scores or a declared error, never garbage.
        rec = model.recommend(0, k=5)
        assert np.isfinite(rec.scores).all()
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


# ---- strategies ---------------------------------------------------------------------------
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _mutated_json(original: Callable[[], dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """The original JSON document with some keys replaced, removed or added; or garbage."""

    def mutate(d: dict[str, Any], edits: list[tuple[str, Any, bool]]) -> bytes:
        d = json.loads(json.dumps(d))
        keys = list(d) or ["x"]
        for key, value, drop in edits:
            target = keys[hash(key) % len(keys)] if key else key
            if drop:
                d.pop(target, None)
            else:
                d[target] = value
        return json.dumps(d).encode()

    edits = st.lists(st.tuples(st.text(max_size=8), _json_values, st.booleans()), min_size=1, max_size=4)
    return st.one_of(
        st.builds(lambda e: mutate(original(), e), edits),
        st.binary(max_size=200),
        _json_values.map(lambda v: json.dumps(v).encode()),
    )


def _read(name: str) -> Callable[[], dict[str, Any]]:
    return lambda: json.loads((_artifact() / name).read_text())


def _mutated_bytes(name: str) -> st.SearchStrategy[bytes]:
    """The file's bytes with a few bytes overwritten, truncated or extended."""

    def mutate(edits: list[tuple[int, int]], cut: int | None, tail: bytes) -> bytes:
        b = bytearray((_artifact() / name).read_bytes())
        for pos, val in edits:
            b[pos % len(b)] = val
        if cut is not None:
            b = b[: cut % (len(b) + 1)]
        return bytes(b) + tail

    return st.builds(
        mutate,
        st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6),
        st.none() | st.integers(0, 1 << 20),
        st.binary(max_size=16),
    )


_ints = st.integers(-(2**65), 2**65) | st.integers(-3, 40)
_floats = st.floats(allow_nan=True, allow_infinity=True) | st.floats(-1, 6)


def _query(example: dict[str, Any]) -> None:
    model = _model()
    history = None
    if example["items"] is not None:
        n = len(example["items"])
        ratings = (example["ratings"] + [3.0] * n)[:n]
        history = History(np.asarray(example["items"]), np.asarray(ratings))
    q = Query(
        user=example["user"], history=history,
        candidates=None if example["candidates"] is None else np.asarray(example["candidates"]),
        exclude=None if example["exclude"] is None else np.asarray(example["exclude"]),
        risk_aversion=example["risk"],
    )  # fmt: skip
    out = model.recommend_batch([q], k=example["k"])[0]
    assert len(set(out.items.tolist())) == len(out.items)


_query_examples = st.fixed_dictionaries({
    "user": st.none() | _ints,
    "items": st.none() | st.lists(_ints, max_size=6),
    "ratings": st.lists(_floats, max_size=6),
    "candidates": st.none() | st.lists(_ints, max_size=6),
    "exclude": st.none() | st.lists(_ints, max_size=6),
    "risk": _floats,
    "k": _ints,
})  # fmt: skip

_spec_text = st.one_of(
    st.text(max_size=30),
    st.builds(lambda kind, a, b: f"{kind}:{a}" + (f":{b}" if b is not None else ""),
              st.sampled_from(["random", "temporal", "user-temporal", "user-last", "loo", "kfold", "x"]),
              st.one_of(st.floats(), st.integers(-5, 50), st.text(max_size=5)),
              st.none() | st.one_of(st.floats(), st.integers(-5, 50), st.text(max_size=5))),
)  # fmt: skip


def _split(example: tuple[str, int]) -> None:
    spec, seed = example
    split = make_split(_dataset(), spec, seed=seed)
    assert split.train.n_ratings + split.test.n_ratings + (split.valid.n_ratings if split.valid else 0) == _dataset().n_ratings


def _set_pairs(pairs: list[str]) -> None:
    overrides = experiment.parse_overrides(pairs)
    create_model("svd", overrides)


def _history(text: str) -> None:
    catalogue = _model().catalogue
    history = experiment.parse_history(catalogue, text)
    _model().recommend(Query(history=history), k=5)


_pair_text = st.one_of(
    st.text(max_size=30),
    st.builds(lambda k, v: f"{k}={v}",
              st.sampled_from(["lr", "n_factors", "epochs", "reg", "seed", "init_std", "nope", "lr_bu"]),
              st.one_of(st.text(max_size=8), st.floats().map(repr), st.integers(-(2**70), 2**70).map(str),
                        _json_values.map(json.dumps))),
)  # fmt: skip
_raw_movie = st.one_of(_ints, st.integers(0, 19).map(lambda i: 7 + 10 * i))  # the tiny catalogue's raw ids
_history_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.builds(lambda m, r: f"{m}:{r}", _raw_movie,
                       st.one_of(_floats.map(repr), st.sampled_from(["0.5", "3", "4.5", "5"]), st.text(max_size=4))),
             max_size=5).map(",".join),
)  # fmt: skip

TARGETS: dict[str, Target] = {
    "split-spec": Target(st.tuples(_spec_text, st.integers(-(2**40), 2**40)), _split),
    "set-parser": Target(st.lists(_pair_text, max_size=4), _set_pairs),
    "history-parser": Target(_history_text, _history),
    "query": Target(_query_examples, _query),
    "artifact-config": Target(_mutated_json(_read("config.json")), lambda b: _load_damaged("config.json", b)),
    "artifact-manifest": Target(_mutated_json(_read("manifest.json")), lambda b: _load_damaged("manifest.json", b)),
    "artifact-weights": Target(_mutated_bytes("model.safetensors"), lambda b: _load_damaged("model.safetensors", b)),
    "artifact-ids": Target(_mutated_bytes("ids.safetensors"), lambda b: _load_damaged("ids.safetensors", b)),
}

try:  # the data layer's own targets (readers, cache, archives)
    from tests.reliability.fuzz_data import DATA_TARGETS
except ImportError:  # pragma: no cover - until that module exists
    DATA_TARGETS = {}
for _name, (_strategy, _run) in DATA_TARGETS.items():
    TARGETS[f"data-{_name}"] = Target(_strategy, _run)
