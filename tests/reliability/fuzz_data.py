"""Fuzz targets of the data layer: each loader on hypothesis-made input.

``DATA_TARGETS = {name: (strategy, fn)}``: ``fn(example)`` may raise only the declared
errors (`DATA_DECLARED`: `CinerecError` subclasses, in practice `DataFormatError`).
Whatever loads must keep the Dataset invariants; a broken one is an ``AssertionError``,
which is a finding like any other undeclared error. ``fuzz_targets.TARGETS`` (CI) and
``benchmarks/fuzz.py`` (long run) pick these up.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from cinerec.data import cache, check_invariants
from cinerec.data.dataset import Dataset
from cinerec.data.movielens import build_dataset, load_movielens
from cinerec.errors import CinerecError, DataFormatError

DATA_DECLARED: tuple[type[BaseException], ...] = (CinerecError,)

_RATINGS_HEADER = "userId,movieId,rating,timestamp\n"
_MOVIES = "movieId,title,genres\n1,Toy Story (1995),Animation|Comedy\n3,\"Heat, The (1995)\",Action\n"


def _sound(ds: Dataset) -> None:
    try:
        check_invariants(ds, "fuzz")
    except DataFormatError as e:  # a loader returned what it promises never to return
        raise AssertionError(f"loaded data breaks an invariant: {e}") from e


def _in_temp(fn: Callable[[Path], Any]) -> Any:
    d = Path(tempfile.mkdtemp(prefix="cinerec-fuzz-data-"))
    try:
        return fn(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- strategies --------------------------------------------------------------------------
_num = st.one_of(
    st.integers(-3, 12).map(str),
    st.integers(-(2**65), 2**65).map(str),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "4.5", "0.5", "5", "5.0", "-1", "1e400", "", " 3", "0x1"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=6),
)
_line = st.one_of(
    st.lists(_num, min_size=4, max_size=4).map(",".join),
    st.lists(_num, min_size=0, max_size=6).map(",".join),
    st.text(max_size=30),
)
_policy = st.tuples(st.sampled_from(["error", "skip"]), st.sampled_from(["latest", "mean", "error"]))


def _mutations(max_pos: int) -> st.SearchStrategy[tuple[list[tuple[int, int]], int | None, bytes]]:
    return st.tuples(
        st.lists(st.tuples(st.integers(0, max_pos), st.integers(0, 255)), max_size=8),
        st.none() | st.integers(0, max_pos),
        st.binary(max_size=16),
    )


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None, tail: bytes) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    if cut is not None:
        b = b[: cut % (len(b) + 1)]
    return bytes(b) + tail


# ---- targets -----------------------------------------------------------------------------
def _ratings_csv(example: tuple[list[str], tuple[str, str]]) -> None:
    lines, (bad, dup) = example

    def run(d: Path) -> None:
        (d / "ratings.csv").write_text(_RATINGS_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
        _sound(load_movielens(d, on_bad_lines=bad, duplicates=dup))  # type: ignore[arg-type]

    _in_temp(run)


def _ratings_dat(example: tuple[list[str], bytes, tuple[str, str]]) -> None:
    lines, junk, (bad, dup) = example

    def run(d: Path) -> None:
        body = "\n".join(line.replace(",", "::") for line in lines).encode("utf-8") + junk
        (d / "ratings.dat").write_bytes(body)
        (d / "users.dat").write_text("1::F::1::10::48067\n")  # makes it ml-1m (latin-1, 1-5)
        _sound(load_movielens(d, on_bad_lines=bad, duplicates=dup))  # type: ignore[arg-type]

    _in_temp(run)


def _movies_csv(example: tuple[list[bytes], str]) -> None:
    rows, bad = example

    def run(d: Path) -> None:
        (d / "ratings.csv").write_text(_RATINGS_HEADER + "1,1,4.0,964982703\n2,3,0.5,964981247\n")
        (d / "movies.csv").write_bytes(_MOVIES.encode() + b"\n".join(rows))
        ds = load_movielens(d, on_bad_lines=bad)  # type: ignore[arg-type]
        _sound(ds)
        assert ds.items_meta is not None and ds.items_meta.height == ds.n_items

    _in_temp(run)


@functools.cache
def _pristine_release() -> Path:
    d = Path(tempfile.mkdtemp(prefix="cinerec-fuzz-data-")) / "ml-fuzz"
    d.mkdir()
    (d / "ratings.csv").write_text(
        _RATINGS_HEADER + "1,1,4.0,964982703\n1,3,4.5,964981247\n5,1,0.5,847434962\n9,3,5.0,1106635946\n"
    )
    (d / "movies.csv").write_text(_MOVIES)
    (d / "tags.csv").write_text('userId,movieId,tag,timestamp\n1,3,"dry, funny",1445714994\n')
    (d / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n3,0113277,949\n")
    return d


@functools.cache
def _pristine_zip() -> bytes:
    src = _pristine_release()
    z = src.parent / "ml-fuzz.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.iterdir()):
            zf.write(p, f"ml-fuzz/{p.name}")
    return z.read_bytes()


@functools.cache
def _pristine_entry() -> Path:
    ds = load_movielens(_pristine_release())
    return cache.save(ds, _pristine_release().parent / "entry")


_ENTRY_FILES = (
    "users.npy", "items.npy", "ratings.npy", "timestamps.npy", "user_ids.npy", "item_ids.npy",
    "item_genres.npy", "meta.json", "manifest.json", "items_meta.parquet", "tags.parquet",
)  # fmt: skip


def _cache_entry(example: tuple[str, tuple[list[tuple[int, int]], int | None, bytes], bool]) -> None:
    """A cache entry with one file damaged; with ``refresh`` the manifest vouches for the
    damage, so it reaches the dtype, shape, meta and invariant checks."""
    name, (edits, cut, tail), refresh = example

    def run(d: Path) -> None:
        entry = d / "entry"
        shutil.copytree(_pristine_entry(), entry)
        target = entry / name
        target.write_bytes(_mutate(target.read_bytes(), edits, cut, tail))
        if refresh and name != "manifest.json":
            man = json.loads((entry / "manifest.json").read_text())
            man["files"][name] = {"bytes": target.stat().st_size, "crc32": cache.crc32_file(target)}
            (entry / "manifest.json").write_text(json.dumps(man))
        ds = cache.load(entry)  # None (rebuild) or a sound Dataset; never an exception
        if ds is not None:
            _sound(ds)

    _in_temp(run)


def _zip_file(example: tuple[list[tuple[int, int]], int | None, bytes] | bytes) -> None:
    def run(d: Path) -> None:
        z = d / "ml-fuzz.zip"
        data = example if isinstance(example, bytes) else _mutate(_pristine_zip(), *example)
        z.write_bytes(data)
        _sound(load_movielens(z))

    _in_temp(run)


def _build(example: tuple[list[tuple[int, int, float, int]], str]) -> None:
    """`build_dataset` (ids, duplicate merging) on arbitrary parsed rows."""
    import polars as pl

    rows, dup = example
    frame = pl.DataFrame(
        rows, schema={"userId": pl.Int64, "movieId": pl.Int64, "rating": pl.Float32, "timestamp": pl.Int64},
        orient="row",
    )  # fmt: skip
    _sound(build_dataset("fuzz", frame, duplicates=dup))  # type: ignore[arg-type]


DATA_TARGETS: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], None]]] = {
    "ratings-csv": (st.tuples(st.lists(_line, max_size=25), _policy), _ratings_csv),
    "ratings-dat": (st.tuples(st.lists(_line, max_size=25), st.binary(max_size=24), _policy), _ratings_dat),
    "movies-csv": (
        st.tuples(st.lists(st.binary(max_size=40), max_size=12), st.sampled_from(["error", "skip"])),
        _movies_csv,
    ),
    "cache-entry": (st.tuples(st.sampled_from(_ENTRY_FILES), _mutations(4096), st.booleans()), _cache_entry),
    "zip": (st.one_of(_mutations(4096), st.binary(max_size=300)), _zip_file),
    "build-dataset": (
        st.tuples(
            st.lists(
                st.tuples(st.integers(0, 6), st.integers(0, 6), st.sampled_from([0.5, 1.0, 3.5, 5.0]),
                          st.integers(0, 3)),
                max_size=30,
            ),
            st.sampled_from(["latest", "mean"]),
        ),
        _build,
    ),
}
