"""The Query API's speed: `recommend_batch` against one `recommend` call per query.

For each model (default ease and svd, fitted on ml-latest-small random:0.9, seed 42):
1,000 known users (drawn with replacement from the 610, seeded), top-10 each, as
1,000 single `recommend` calls and as one `recommend_batch` call, with and without
explanations; and 200 new visitors (each a user's training ratings given as a
history) folded in one by one and as one batch. Wall-clock, best of 3. The lists are
checked to be identical between the two forms.

Usage: python benchmarks/query.py [--models ease,svd] [--users 1000] [--repeats 3]
Writes benchmarks/results/query.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
from _timing import best_of
from rich.console import Console
from rich.table import Table

from cinerec import experiment
from cinerec._util import fs
from cinerec.models.query import Query
from cinerec.models.registry import create_model

OUT = Path(__file__).parent / "results" / "query.md"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="ease,svd")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--visitors", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    console = Console()
    ctx = experiment.load_context("ml-latest-small", "random:0.9", seed=42, progress=False)
    rng = np.random.default_rng(0)
    warm = np.flatnonzero(ctx.split.train.user_counts > 0)
    users = rng.choice(warm, size=a.users, replace=True)
    visitors = rng.choice(warm, size=a.visitors, replace=False)
    rows = []
    for name in a.models.split(","):
        model = create_model(name).fit(ctx.split.train, options={"progress": False})
        model.recommend(int(users[0]), k=10)  # warm-up (lazy caches, numba)
        for explain in (False, True):
            t_single, singles = best_of(
                lambda m=model, e=explain: [m.recommend(int(u), k=10, explain=e) for u in users], a.repeats)
            t_batch, batch = best_of(
                lambda m=model, e=explain: m.recommend_batch(users.tolist(), k=10, explain=e), a.repeats)
            same = all(np.array_equal(s.items, b.items) for s, b in zip(singles, batch, strict=True))
            rows.append((name, f"{a.users} known users", explain, t_single, t_batch, same))
        queries = [Query(history=model.train_history(int(u))) for u in visitors]
        t_single, singles = best_of(
            lambda m=model, qs=queries: [m.recommend(q, k=10, explain=False) for q in qs], a.repeats)
        t_batch, batch = best_of(
            lambda m=model, qs=queries: m.recommend_batch(qs, k=10, explain=False), a.repeats)
        same = all(np.array_equal(s.items, b.items) for s, b in zip(singles, batch, strict=True))
        rows.append((name, f"{a.visitors} new visitors (fold-in)", False, t_single, t_batch, same))

    table = Table(title="recommend_batch vs single recommend calls (top 10, wall-clock, best of "
                  f"{a.repeats})")
    header = ["model", "queries", "explanations", "single calls s", "one batch s", "speed-up", "same lists"]
    for col in header:
        table.add_column(col)
    md = [
        "# Query API: batch vs single calls",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"ml-latest-small random:0.9 seed 42, default hyper-parameters. "
        f"`python benchmarks/query.py`, {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "| " + " | ".join(header) + " |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for name, what, explain, ts, tb, same in rows:
        cells = [name, what, "yes" if explain else "no", f"{ts:.3f}", f"{tb:.3f}", f"{ts / tb:.1f}x", "yes" if same else "NO"]
        table.add_row(*cells)
        md.append("| " + " | ".join(cells) + " |")
    console.print(table)
    fs.write_text(a.out, "\n".join(md) + "\n")
    console.print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
