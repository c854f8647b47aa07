"""The feedback store: ratings users send to the service, kept in SQLite or PostgreSQL.

One table, ``ratings(user_id, movie_id, rating, timestamp, created_at)`` with primary key
``(user_id, movie_id, timestamp)``, so a re-sent row is recognised and not stored twice
(``INSERT ... ON CONFLICT DO NOTHING``). Every `FeedbackStore.add` is one transaction,
durable when it returns: SQLite runs in WAL mode with ``synchronous=FULL`` (the commit
fsyncs the log), PostgreSQL with its default ``synchronous_commit``.

SQLite (the default, a file next to the artifacts) is shared safely by the threads of one
process and by several processes: each thread checks a connection out of the pool, writers
take the write lock up front (``BEGIN IMMEDIATE``) and wait for it up to the busy timeout.

Validation of what a rating means (known movie, rating scale) belongs to the caller; the
store only refuses what it cannot store faithfully: non-integer or out-of-range ids and
timestamps, non-finite ratings.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Engine,
    Identity,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    inspect,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from cinerec._util import fs
from cinerec.errors import StoreError

__all__ = ["FeedbackStore", "Rating"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: How long a SQLite writer waits for another writer's lock before giving up.
BUSY_TIMEOUT_MS = 30_000
#: Rows fetched per round trip when exporting (bounds the memory of `export_csv`).
EXPORT_CHUNK = 50_000
_CSV_HEADER = b"userId,movieId,rating,timestamp\n"
_WRITE = "cinerec_write"  # execution option: this transaction writes (SQLite: IMMEDIATE)


@dataclass(frozen=True)
class Rating:
    """One feedback row, in raw MovieLens ids."""

    user_id: int
    movie_id: int
    rating: float
    timestamp: int  # unix seconds


def _table(metadata: MetaData, dialect: str) -> Table:
    cols = [
        Column("user_id", BigInteger, primary_key=True, autoincrement=False),
        Column("movie_id", BigInteger, primary_key=True, autoincrement=False),
        Column("timestamp", BigInteger, primary_key=True, autoincrement=False),
        Column("rating", Double, nullable=False),
        Column("created_at", BigInteger, nullable=False),  # unix ms when the store got it
    ]
    if dialect == "postgresql":
        # PostgreSQL has no stable row order of its own; SQLite orders by its rowid.
        cols.append(Column("seq", BigInteger, Identity(), nullable=False))
    return Table("ratings", metadata, *cols)


def _mask(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _parse(url: str | URL) -> URL:
    try:
        u = make_url(url)
    except ArgumentError:
        shown = re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", str(url))  # mask a password
        raise StoreError(
            f"feedback store URL {shown!r} is not a database URL; use sqlite:///PATH/feedback.db "
            "or postgresql://USER:PASSWORD@HOST:PORT/DB"
        ) from None
    backend, _, driver = u.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return u.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if not u.database or u.database == ":memory:" or u.database.startswith("file:"):
            raise StoreError(
                f"feedback store URL {_mask(u)!r} is an in-memory SQLite database, which "
                "would lose every rating; give a file: sqlite:///PATH/feedback.db"
            )
        return u
    raise StoreError(
        f"feedback store URL {_mask(u)!r} uses {u.drivername!r}; cinerec stores feedback in "
        "SQLite (sqlite:///PATH) or PostgreSQL (postgresql://... with the psycopg driver)"
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own transaction handling is turned off so that `_sqlite_begin`
    # decides how a transaction starts (pysqlite would issue a deferred BEGIN itself).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    # FULL, not WAL's usual NORMAL: NORMAL may lose the last commits on power loss.
    cur.execute("PRAGMA synchronous = FULL")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # A writer takes the write lock at BEGIN, where the busy timeout applies; a deferred
    # transaction upgrading later can fail at once with SQLITE_BUSY instead of waiting.
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _int64(name: str, value: Any, i: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise StoreError(f"row {i}: {name} must be an integer, got {value!r}")
    v = int(value)
    if not INT64_MIN <= v <= INT64_MAX:
        raise StoreError(f"row {i}: {name} {v} does not fit in a 64-bit integer")
    return v


def _finite(name: str, value: Any, i: int) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StoreError(f"row {i}: {name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise StoreError(f"row {i}: {name} must be finite, got {value!r}")
    return v


class FeedbackStore:
    """Stored user feedback (ratings) in SQLite or PostgreSQL; see the module doc.

    ``url`` is ``sqlite:///PATH`` or ``postgresql://USER:PASSWORD@HOST:PORT/DB``
    (``postgresql+psycopg://`` alike). The table is created when missing. Any failure
    is a `StoreError` naming the URL with its password masked.
    """

    def __init__(self, url: str | URL):
        parsed = _parse(url)
        self.url: str = _mask(parsed)
        self._password = parsed.password
        self._dialect = parsed.get_backend_name()
        self._closed = False
        if self._dialect == "sqlite":
            folder = Path(parsed.database).parent
            if not folder.is_dir():
                raise StoreError(
                    f"cannot open the feedback store {self.url}: folder {folder} does not "
                    "exist; create it or choose another path"
                )
        try:
            self._engine = self._make_engine(parsed)
        except (ImportError, NoSuchModuleError) as e:
            raise StoreError(
                f"cannot open the feedback store {self.url}: {e}; install the service "
                "extras (pip install 'cinerec[serve]')"
            ) from None
        self._table = _table(MetaData(), self._dialect)
        self._insert = (sqlite.insert if self._dialect == "sqlite" else postgresql.insert)(
            self._table
        )
        # Ties in timestamp keep insertion order: SQLite's rowid, PostgreSQL's identity.
        self._order = (
            literal_column("ratings.rowid") if self._dialect == "sqlite" else self._table.c.seq
        )
        try:
            self._create()
        except SQLAlchemyError as e:
            self._engine.dispose()
            raise self._error("cannot open", e) from None

    @classmethod
    def open(cls, url_or_path: str | Path) -> FeedbackStore:
        """A store from a URL, or SQLite at ``url_or_path`` when it is a plain path."""
        text = os.fspath(url_or_path)
        if isinstance(url_or_path, Path) or "://" not in text:
            # A URL object, not a string: a path with "?" or "%" stays a path.
            return cls(URL.create("sqlite", database=text))
        return cls(text)

    # ---- helpers ------------------------------------------------------------------------
    def _make_engine(self, url: URL) -> Engine:
        if self._dialect == "sqlite":
            # Each thread checks out its own connection from the pool, so no connection
            # is ever used by two threads at once; the flag only lets the pool hand a
            # connection to a thread other than the one that opened it.
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
        return create_engine(url, connect_args=args, pool_pre_ping=True)

    def _create(self) -> None:
        try:
            with self._engine.connect().execution_options(**{_WRITE: True}) as conn:
                with conn.begin():
                    self._table.create(conn, checkfirst=True)
        except SQLAlchemyError:
            # Another process may have created it between the check and CREATE (SQLite
            # serialises the two behind BEGIN IMMEDIATE; PostgreSQL does not).
            with self._engine.connect() as conn:
                if not inspect(conn).has_table("ratings"):
                    raise

    def _error(self, what: str, e: BaseException) -> StoreError:
        detail = str(getattr(e, "orig", None) or e).strip().splitlines()
        text = detail[0] if detail else type(e).__name__
        if self._password:
            text = text.replace(self._password, "***")
        hint = (
            "check that the file is writable and not on a network share"
            if self._dialect == "sqlite"
            else "check that the server runs, the URL is right and the user may create tables"
        )
        return StoreError(f"{what} the feedback store {self.url}: {text}; {hint}")

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the feedback store {self.url} is closed; open it again")

    # ---- writes -------------------------------------------------------------------------
    def add(self, rows: Sequence[Rating]) -> int:
        """Store ``rows`` in one durable transaction; rows already stored (same user,
        movie and timestamp) are skipped. Returns how many rows were new."""
        self._check_open()
        now = time.time_ns() // 1_000_000
        params = [
            {
                "user_id": _int64("user_id", r.user_id, i),
                "movie_id": _int64("movie_id", r.movie_id, i),
                "timestamp": _int64("timestamp", r.timestamp, i),
                "rating": _finite("rating", r.rating, i),
                "created_at": now,
            }
            for i, r in enumerate(rows)
        ]
        if not params:
            return 0
        # RETURNING lists only the rows actually inserted, on both backends alike
        # (rowcount of an executemany is not reliable across drivers).
        stmt = self._insert.on_conflict_do_nothing().returning(self._table.c.user_id)
        try:
            with self._engine.connect().execution_options(**{_WRITE: True}) as conn:
                with conn.begin():
                    result = conn.execute(stmt, params)
                    new = len(result.all())
        except SQLAlchemyError as e:
            raise self._error("cannot write to", e) from None
        return new

    # ---- reads --------------------------------------------------------------------------
    def history(self, user_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(movie_ids int64, ratings float32, timestamps int64)`` of one user, ordered by
        timestamp then insertion; a movie rated several times appears each time."""
        self._check_open()
        uid = _int64("user_id", user_id, 0)
        t = self._table
        stmt = (
            select(t.c.movie_id, t.c.rating, t.c.timestamp)
            .where(t.c.user_id == uid)
            .order_by(t.c.timestamp, self._order)
        )
        rows = self._read(lambda conn: conn.execute(stmt).all())
        if not rows:
            return np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64)
        movies, ratings, stamps = zip(*rows, strict=True)
        return (
            np.asarray(movies, dtype=np.int64),
            np.asarray(ratings, dtype=np.float32),
            np.asarray(stamps, dtype=np.int64),
        )

    def users_with_feedback(self) -> np.ndarray:
        """Distinct user ids with at least one stored rating, ascending (int64)."""
        self._check_open()
        stmt = select(self._table.c.user_id).distinct().order_by(self._table.c.user_id)
        return np.asarray(self._read(lambda conn: conn.execute(stmt).scalars().all()), np.int64)

    def count(self) -> int:
        """Number of stored rows."""
        self._check_open()
        stmt = select(func.count()).select_from(self._table)
        return int(self._read(lambda conn: conn.execute(stmt).scalar_one()))

    def _read(self, fn: Any) -> Any:
        try:
            with self._engine.connect() as conn:
                return fn(conn)
        except SQLAlchemyError as e:
            raise self._error("cannot read from", e) from None

    def export_csv(self, path: str | Path) -> int:
        """Write every row as MovieLens ``ratings.csv`` (``userId,movieId,rating,timestamp``,
        ordered by user then timestamp), atomically; returns the number of rows."""
        self._check_open()
        t = self._table
        stmt = select(t.c.user_id, t.c.movie_id, t.c.rating, t.c.timestamp).order_by(
            t.c.user_id, t.c.timestamp, self._order
        )
        schema = {"userId": pl.Int64, "movieId": pl.Int64, "rating": pl.Float64,
                  "timestamp": pl.Int64}  # fmt: skip
        written = 0
        try:
            with fs.atomic_file(path) as tmp, open(tmp, "wb") as out:
                out.write(_CSV_HEADER)
                # One statement in one read transaction: a consistent snapshot, fetched
                # in chunks (psycopg: a server-side cursor) so memory stays bounded.
                with self._engine.connect() as conn, conn.begin():
                    result = conn.execution_options(
                        stream_results=True, yield_per=EXPORT_CHUNK
                    ).execute(stmt)
                    for chunk in result.partitions():
                        frame = pl.DataFrame(chunk, schema=schema, orient="row")
                        frame.write_csv(out, include_header=False)
                        written += frame.height
                out.flush()
                os.fsync(out.fileno())  # the rename must not publish an unwritten file
        except SQLAlchemyError as e:
            raise self._error("cannot export from", e) from None
        except OSError as e:
            raise StoreError(
                f"cannot write the export of {self.url} to {path}: {e.strerror or e}; "
                "choose a writable path"
            ) from None
        return written

    # ---- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Release every connection; later calls raise `StoreError`."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeedbackStore({self.url!r})"
