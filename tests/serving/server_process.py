"""Start `cinerec serve` as a real subprocess on a free loopback port, for the tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.net import free_port


@contextlib.contextmanager
def serving(args: list[str], *, port: int | None = None, env: dict[str, str] | None = None,
            log: Path | None = None, timeout: float = 60.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of ``cinerec serve ARGS --port P``, ready (``/readyz`` 200);
    killed at the end whatever happens."""
    port = port or free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "cinerec", "serve", *args, "--port", str(port)],
        stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, timeout)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if log:
            out.close()  # type: ignore[union-attr]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cinerec serve exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"cinerec serve was not ready at {url} within {timeout:.0f} s")
