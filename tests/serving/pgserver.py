"""A throwaway PostgreSQL server for tests: initdb into a temporary folder, start it on a
free 127.0.0.1 port, hand out fresh databases, stop and delete it at the end.

`find_bindir` looks for ``initdb`` and ``pg_ctl`` on ``PATH``, then in
``/usr/lib/postgresql/*/bin`` (newest first). PostgreSQL refuses to run as root, so when
the tests run as root the server runs as an unprivileged user: ``$CINEREC_PG_USER``, else
``postgres`` when it exists, else ``nobody`` (through ``runuser -u USER --``, or ``su``).
The server trusts every local connection (``-A trust``) and runs with ``fsync=off``: it
holds only test data and dies with the test session.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "cinerec"  # the database superuser initdb creates


def _version(bindir: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in bindir.parent.name.split(".") if x.isdigit())


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is missing."""
    initdb = shutil.which("initdb")
    if initdb:
        folder = Path(initdb).resolve().parent
        if (folder / "pg_ctl").exists():
            return folder
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _run_as() -> str | None:
    """The unprivileged user to run the server as (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("CINEREC_PG_USER"), "postgres", "nobody"):
        if not name:
            continue
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) exists")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """``with PgServer() as pg: pg.url`` (a server database URL; see `new_database`)."""

    def __init__(self, bindir: Path | None = None):
        found = bindir or find_bindir()
        if found is None:
            raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found")
        self.bindir = found
        self.user = _run_as()
        self.root: Path | None = None
        self.port = 0

    # ---- running commands ---------------------------------------------------------------
    def _cmd(self, *args: str) -> list[str]:
        if self.user is None:
            return list(args)
        if shutil.which("runuser"):
            return ["runuser", "-u", self.user, "--", *args]
        # su: one shell command line; our arguments contain no quotes.
        return ["su", "-s", "/bin/sh", self.user, "-c", " ".join(f"'{a}'" for a in args)]

    def _run(self, *args: str, timeout: float = 60) -> None:
        assert self.root is not None
        proc = subprocess.run(
            self._cmd(*args),
            cwd=self.root,  # the server user may not be allowed into our working folder
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{tail}"
            )

    # ---- lifetime -----------------------------------------------------------------------
    def start(self) -> PgServer:
        # Not pytest's tmp_path: its parent is root-only (0700), closed to the server user.
        self.root = Path(tempfile.mkdtemp(prefix="cinerec-pg-"))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        data = self.root / "data"
        self._run(
            str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", USER,
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        last: Exception | None = None
        for _ in range(3):  # the free port may be taken between our probe and the bind
            self.port = _free_port()
            opts = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} "
                f"-c unix_socket_directories={self.root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run(
                    str(self.bindir / "pg_ctl"), "-D", str(data), "-l",
                    str(self.root / "server.log"), "-w", "-t", "60", "-o", opts, "start",
                )  # fmt: skip
                return self
            except RuntimeError as e:
                last = e
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    def stop(self) -> None:
        if self.root is None:
            return
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                          "-w", "stop")  # fmt: skip
            except (RuntimeError, subprocess.TimeoutExpired):
                pass  # still delete the folder; a stray server dies with its socket gone
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- databases ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """URL of the ``postgres`` maintenance database (plain ``postgresql://``)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"


def new_database(server_url: str) -> str:
    """Create an empty database on the server at ``server_url``; return its URL."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name
