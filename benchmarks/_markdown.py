"""Markdown helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cinerec._util import fs


def fmt(v: Any, nd: int = 4) -> str:
    """A table cell: floats to ``nd`` decimals, None as "-"."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A markdown table as lines."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(fmt(c) for c in r) + " |" for r in rows
    ]


def save_section(store: Path, section: str, rows: Any, stamp: str) -> None:
    """Keep one section's results (``<store>/<section>.json``) so sections can be re-run alone."""
    fs.write_text(store / f"{section}.json", json.dumps({"rows": rows, "stamp": stamp}, default=float))


def load_sections(store: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Every kept section: (rows by section, stamp by section)."""
    rows, stamps = {}, {}
    for f in sorted(store.glob("*.json")):
        got = json.loads(f.read_text())
        rows[f.stem], stamps[f.stem] = got["rows"], got["stamp"]
    return rows, stamps


def stamp(script: str, args: str, t0: float) -> str:
    """The line under a section: its time, the command that re-runs it, when."""
    return (f"section time {time.perf_counter() - t0:.0f} s; `python benchmarks/{script} {args}`, "
            f"{time.strftime('%Y-%m-%d %H:%M')}")


def write_results(store: Path, out: Path, render: Callable[[dict[str, Any], dict[str, str]], str]) -> Path:
    """Render every kept section of ``store`` into the results file ``out``."""
    rows, stamps = load_sections(store)
    fs.write_text(out, render(rows, stamps))
    return out
