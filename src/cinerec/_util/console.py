"""The one console and progress style of cinerec (rich), silenced by ``--quiet``.

* `console()`: stdout console; piped output (not a terminal) gets 160 columns, not 80,
  so wide tables are not squeezed into ellipses. ``console(stderr=True)`` for messages.
* `progress(enabled, unit=...)`: a transient progress bar on stderr (``unit="bytes"``
  shows size and speed for downloads); a disabled one costs nothing and prints nothing.
* `status(enabled, text)`: a spinner for work without a known length (parsing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

PIPED_WIDTH = 160


def console(stderr: bool = False) -> Console:
    c = Console(stderr=stderr)
    return c if c.is_terminal else Console(stderr=stderr, width=PIPED_WIDTH)


def progress(
    enabled: bool = True,
    unit: Literal["steps", "bytes", "epochs"] = "steps",
    transient: bool = True,
) -> Progress:
    """A rich `Progress` (use as a context manager; ``add_task`` / ``advance``)."""
    if unit == "bytes":
        columns = (
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(),
        )  # fmt: skip
    elif unit == "epochs":
        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    else:
        columns = (
            TextColumn("[progress.description]{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeRemainingColumn(),
        )  # fmt: skip
    return Progress(*columns, console=Console(stderr=True), transient=transient, disable=not enabled)


@contextlib.contextmanager
def status(enabled: bool, text: str) -> Iterator[None]:
    """A spinner on stderr while the block runs (nothing when disabled)."""
    if not enabled:
        yield
        return
    with Console(stderr=True).status(text):
        yield
