"""The feedback store against real databases: SQLite files and a throwaway PostgreSQL
server (tests/serving/pgserver.py), the same cases on both."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cinerec.errors import CinerecError, StoreError
from cinerec.serving import store as store_mod
from cinerec.serving.store import FeedbackStore, Rating


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty store: a new SQLite file, or a new database on the PG server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedback.db'}"
    return request.getfixturevalue("pg_database")


@pytest.fixture
def store(store_url: str):
    with FeedbackStore(store_url) as s:
        yield s


def _rows(user: int, n: int, start: int = 0) -> list[Rating]:
    return [Rating(user, 1000 + i, 0.5 + (i % 10) / 2, 1_600_000_000 + i) for i in range(start, n)]


# ---- writes -------------------------------------------------------------------------------
def test_add_counts_only_new_rows(store: FeedbackStore) -> None:
    first = _rows(1, 5)
    assert store.add(first) == 5
    assert store.add(first) == 0  # re-sent: nothing new
    again = [first[0], Rating(1, 1000, 4.0, 1_700_000_000), first[0]]  # dup inside the batch
    assert store.add(again) == 1
    # numpy scalars are integers too
    assert store.add([Rating(np.int64(2), np.int32(7), np.float32(3.5), np.int64(9))]) == 1
    assert store.add([]) == 0
    assert store.count() == 7


def test_same_key_keeps_first_rating(store: FeedbackStore) -> None:
    store.add([Rating(1, 10, 2.0, 100)])
    assert store.add([Rating(1, 10, 5.0, 100)]) == 0  # same (user, movie, timestamp)
    _, ratings, _ = store.history(1)
    assert ratings.tolist() == [2.0]


@pytest.mark.parametrize(
    "bad, field",
    [
        (Rating(1, 2, float("nan"), 3), "rating"),
        (Rating(1, 2, float("inf"), 3), "rating"),
        (Rating(1, 2, "4", 3), "rating"),  # type: ignore[arg-type]
        (Rating(1.5, 2, 4.0, 3), "user_id"),  # type: ignore[arg-type]
        (Rating(1, 2.0, 4.0, 3), "movie_id"),  # type: ignore[arg-type]
        (Rating(True, 2, 4.0, 3), "user_id"),
        (Rating(1, 2, 4.0, "3"), "timestamp"),  # type: ignore[arg-type]
        (Rating(2**63, 2, 4.0, 3), "user_id"),
    ],
)
def test_refuses_rows_it_cannot_store(store: FeedbackStore, bad: Rating, field: str) -> None:
    good = _rows(1, 3)
    with pytest.raises(StoreError, match=rf"row 2: {field}"):
        store.add([*good[:2], bad, good[2]])
    assert store.count() == 0  # the whole batch is refused, not half of it


def test_int64_extremes_round_trip(store: FeedbackStore) -> None:
    big = 2**63 - 1
    store.add([Rating(big, -(2**63), 1.0, big)])
    movies, _, stamps = store.history(big)
    assert movies.tolist() == [-(2**63)] and stamps.tolist() == [big]
    assert store.users_with_feedback().tolist() == [big]


# ---- reads --------------------------------------------------------------------------------
def test_history_orders_by_timestamp_then_insertion(store: FeedbackStore) -> None:
    store.add([Rating(5, 30, 3.0, 300), Rating(5, 10, 1.0, 100), Rating(9, 99, 5.0, 50)])
    store.add([Rating(5, 22, 2.5, 200), Rating(5, 21, 2.0, 200)])  # tie: insertion order
    store.add([Rating(5, 10, 4.5, 400)])  # movie 10 again, later
    movies, ratings, stamps = store.history(5)
    assert movies.dtype == np.int64 and ratings.dtype == np.float32 and stamps.dtype == np.int64
    assert movies.tolist() == [10, 22, 21, 30, 10]
    assert ratings.tolist() == [1.0, 2.5, 2.0, 3.0, 4.5]
    assert stamps.tolist() == [100, 200, 200, 300, 400]
    empty = store.history(12345)
    assert [a.size for a in empty] == [0, 0, 0]
    assert [a.dtype for a in empty] == [np.int64, np.float32, np.int64]


def test_users_with_feedback_and_count(store: FeedbackStore) -> None:
    assert store.users_with_feedback().tolist() == [] and store.count() == 0
    store.add(_rows(7, 3) + _rows(3, 2) + _rows(7, 4, start=3))
    users = store.users_with_feedback()
    assert users.dtype == np.int64 and users.tolist() == [3, 7]
    assert store.count() == 6


# ---- concurrency ----------------------------------------------------------------------------
def test_threads_writing_at_once_lose_nothing(store_url: str) -> None:
    # Two stores on the same database (two pools, like two processes), 8 threads, one
    # transaction per row; every thread also re-sends rows another thread owns.
    threads_n, per = 8, 50
    stores = [FeedbackStore(store_url), FeedbackStore(store_url)]
    new_counts = [0] * threads_n
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def work(t: int) -> None:
        try:
            s = stores[t % 2]
            mine = _rows(100 + t, per)
            theirs = _rows(100 + (t + 1) % threads_n, 5)
            barrier.wait()
            for i, row in enumerate(mine):
                new_counts[t] += s.add([row])
                if i < len(theirs):
                    new_counts[t] += s.add([theirs[i]])
        except BaseException as e:  # surfaced below; a thread's traceback is lost otherwise
            errors.append(e)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        assert not errors, errors
        assert stores[0].count() == threads_n * per
        assert sum(new_counts) == threads_n * per  # each row counted new exactly once
        for t in range(threads_n):
            movies, _, _ = stores[1].history(100 + t)
            assert movies.tolist() == [r.movie_id for r in _rows(100 + t, per)]
    finally:
        for s in stores:
            s.close()


_WRITER = textwrap.dedent(
    """
    import sys
    from cinerec.serving.store import FeedbackStore, Rating
    store = FeedbackStore(sys.argv[1])
    print("ready", flush=True)
    i = 0
    while True:
        store.add([Rating(1, i, 4.0, 1_600_000_000 + i)])
        print(i, flush=True)  # only after add returned: the row is acknowledged
        i += 1
    """
)


def test_acknowledged_rows_survive_kill_9(store_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, store_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        for line in proc.stdout:
            acked.append(int(line))
            if len(acked) == 150:
                break
        os.kill(proc.pid, signal.SIGKILL)  # mid-way: the writer is in its next add
        # read through the same text wrapper: lines it buffered ahead of the loop are
        # acknowledged too (communicate() would read the pipe's fd and skip them)
        out = proc.stdout.read()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    acked += [int(x) for x in out.split()]  # printed before the kill, read after it
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 150
    with FeedbackStore(store_url) as s:
        movies, _, _ = s.history(1)
        stored = set(movies.tolist())
        assert set(acked) <= stored
        # at most the one transaction in flight may have committed without its print
        assert len(acked) <= s.count() <= len(acked) + 1


# ---- export, reopen -------------------------------------------------------------------------
def test_export_csv_round_trip(
    store: FeedbackStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "EXPORT_CHUNK", 4)  # several chunks from 11 rows
    rows = _rows(20, 4) + _rows(3, 5) + [Rating(3, 5, 2.5, 10), Rating(20, 1000, 1.0, 5)]
    store.add(rows)
    out = tmp_path / "export" / "ratings.csv"
    assert store.export_csv(out) == len(rows)
    assert out.read_text().splitlines()[0] == "userId,movieId,rating,timestamp"
    df = pl.read_csv(out)
    assert df.columns == ["userId", "movieId", "rating", "timestamp"]
    assert df.height == len(rows)
    assert df.sort(["userId", "timestamp"]).equals(df)  # already in that order
    expected = pl.DataFrame(
        [(r.user_id, r.movie_id, r.rating, r.timestamp) for r in rows],
        schema=["userId", "movieId", "rating", "timestamp"],
        orient="row",
    ).sort(["userId", "timestamp"])
    assert df.equals(expected)
    assert sorted(p.name for p in out.parent.iterdir()) == ["ratings.csv"]  # no temporaries


def test_export_empty_store_writes_header(store: FeedbackStore, tmp_path: Path) -> None:
    out = tmp_path / "ratings.csv"
    assert store.export_csv(out) == 0
    assert out.read_text() == "userId,movieId,rating,timestamp\n"


def test_export_to_a_folder_is_refused(store: FeedbackStore, tmp_path: Path) -> None:
    store.add(_rows(1, 2))
    with pytest.raises(CinerecError, match="folder"):
        store.export_csv(tmp_path)


def test_reopen_keeps_rows(store_url: str) -> None:
    with FeedbackStore(store_url) as s:
        s.add(_rows(4, 6))
    with FeedbackStore(store_url) as s:
        assert s.count() == 6
        assert s.add(_rows(4, 6)) == 0  # the key survives reopening too
        assert s.history(4)[0].tolist() == [r.movie_id for r in _rows(4, 6)]


def test_closed_store_refuses_calls(store_url: str) -> None:
    s = FeedbackStore(store_url)
    with s:
        s.add(_rows(1, 1))
    s.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        s.count()
    with pytest.raises(StoreError, match="closed"):
        s.add(_rows(1, 1))


# ---- URLs and SQLite settings ------------------------------------------------------------
def test_open_bare_path_is_sqlite(tmp_path: Path) -> None:
    odd = tmp_path / "odd?name%1.db"  # URL-special characters stay part of the path
    for target in (odd, str(tmp_path / "plain.db")):
        with FeedbackStore.open(target) as s:
            s.add(_rows(1, 2))
            assert s.url.startswith("sqlite:///")
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["odd?name%1.db", "plain.db"]
    with FeedbackStore.open(odd) as s:
        assert s.count() == 2


def test_sqlite_is_wal_and_synchronous_full(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    with FeedbackStore.open(db) as s:
        s.add(_rows(1, 1))
        with s._engine.connect() as conn:  # a pooled connection as every call gets it
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # stored in the file
        assert raw.execute("SELECT count(*) FROM ratings").fetchone()[0] == 1
    finally:
        raw.close()


@pytest.mark.parametrize(
    "url, words",
    [
        ("not a url", "not a database URL"),
        ("mysql://u:pw@localhost/db", "uses 'mysql'"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:////no/such/folder/feedback.db", "does not exist"),
    ],
)
def test_bad_urls_are_store_errors(url: str, words: str) -> None:
    with pytest.raises(StoreError, match=words) as info:
        FeedbackStore(url)
    assert "pw" not in str(info.value)


def test_unopenable_sqlite_file_names_the_url(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    with pytest.raises(StoreError, match="a-folder.db"):
        FeedbackStore.open(folder)


def test_unreachable_postgres_masks_the_password() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://alice:s3cret-pw@127.0.0.1:{port}/db"
    with pytest.raises(StoreError) as info:
        FeedbackStore(url)
    msg = str(info.value)
    assert "s3cret-pw" not in msg
    assert f"postgresql+psycopg://alice:***@127.0.0.1:{port}/db" in msg


def test_postgres_url_uses_psycopg(pg_database: str) -> None:
    assert pg_database.startswith("postgresql://")
    with FeedbackStore(pg_database) as s:
        assert s.url.startswith("postgresql+psycopg://")
    with FeedbackStore(pg_database.replace("postgresql://", "postgresql+psycopg://")) as s:
        assert s.count() == 0
