"""Candidate retrieval measured: exact top-k against faiss flat / HNSW / IVF-PQ.

Part 1: svd and als (default hyper-parameters) fitted on ml-latest-small random:0.9,
seed 42; each model's retrieval space (``x_u . y_i``, with the scaled sigma coordinate
for risk aversion) is indexed. Part 2: a synthetic catalogue of 62,423 items (the
ML-25M movie count) x d = 64: a mixture of 64 Gaussian "genres" whose item norms
follow a log-normal popularity spread, queried by 2,000 user vectors drawn from the
same mixture (no model; the vectors are the space).

Per index: build seconds, memory (the index's own bytes, serialised for faiss),
``search`` latency p50 / p99 for one query and for a batch of 64 (100 candidates per
query, every call timed, users cycled), and recall@10: the top 10 after exact
re-scoring of the 100 candidates against the exact top 10. For the models that is
`cinerec.serving.index.recall_at_k` (seen items excluded, the model's own
``recommend_batch`` re-scoring), at risk aversion 0 and 0.5; for the synthetic
catalogue `vector_recall`. Latency is retrieval only: today ``recommend_batch`` still
scores the whole catalogue when given candidates.

Run: CINEREC_DATA=../shared/data .venv/bin/python benchmarks/ann.py
     [--models svd,als] [--kinds exact,flat,hnsw,ivfpq,ivfpq:nprobe=64] [--threads N]
     [--quick]   (tiny sizes, to check the script; not a measurement)
Writes benchmarks/results/ann.md (rewritten after every row).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from _timing import best_of
from rich.console import Console
from rich.table import Table

from cinerec import experiment
from cinerec._util import fs
from cinerec.models.registry import create_model
from cinerec.models.retrieval import RetrievalSpace
from cinerec.serving.index import build_index, recall_at_k, vector_recall

OUT = Path(__file__).parent / "results" / "ann.md"
HEADER = ["catalogue", "index", "params", "build s", "memory MB", "p50 1 ms", "p99 1 ms",
          "p50 64 ms", "p99 64 ms", "recall@10", "recall@10 risk 0.5"]  # fmt: skip


def parse_kind(spec: str) -> tuple[str, dict[str, Any]]:
    """``"ivfpq:nprobe=64,nlist=512"`` -> ("ivfpq", {"nprobe": 64, "nlist": 512})."""
    kind, _, rest = spec.partition(":")
    params = {}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        params[key.strip()] = int(value)
    return kind.strip(), params


def synthetic_space(n_items: int, dim: int, n_queries: int, seed: int = 0) -> tuple[RetrievalSpace, np.ndarray]:
    """Mixture-of-genres item vectors with log-normal norms, and user queries from it."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(64, dim)) / np.sqrt(dim)
    genre = rng.zipf(1.5, n_items) % 64
    items = centers[genre] + 0.5 * rng.normal(size=(n_items, dim)) / np.sqrt(dim)
    items *= rng.lognormal(0.0, 0.4, n_items)[:, None]
    likes = rng.integers(0, 64, (n_queries, 3))
    queries = centers[likes].mean(axis=1) + 0.3 * rng.normal(size=(n_queries, dim)) / np.sqrt(dim)
    queries = queries.astype(np.float32)
    space = RetrievalSpace(items.astype(np.float32), lambda users, folded: queries[users])
    return space, queries


def latencies(retriever: Any, queries: np.ndarray, batch: int, calls: int, n: int) -> tuple[float, float]:
    """(p50, p99) milliseconds of ``calls`` searches of ``batch`` queries (cycled)."""
    retriever.search(queries[:batch], n)  # warm-up
    times = np.empty(calls)
    for c in range(calls):
        rows = (np.arange(batch) + c * batch) % queries.shape[0]
        q = queries[rows]
        t0 = time.perf_counter()
        retriever.search(q, n)
        times[c] = time.perf_counter() - t0
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def measure(label: str, space: RetrievalSpace, queries: np.ndarray, spec: str, a: argparse.Namespace,
            recall: Any) -> list[str]:
    kind, params = parse_kind(spec)
    build_s, retriever = best_of(lambda: build_index(space, kind, **params), 1)
    p1 = latencies(retriever, queries, 1, a.calls, a.candidates)
    p64 = latencies(retriever, queries, 64, max(a.calls // 8, 5), a.candidates)
    r0, r5 = recall(retriever)
    shown = ", ".join(f"{k}={v}" for k, v in retriever.params.items()) or "-"
    return [label, kind, shown, f"{build_s:.2f}", f"{retriever.nbytes() / 2**20:.1f}",
            f"{p1[0]:.3f}", f"{p1[1]:.3f}", f"{p64[0]:.2f}", f"{p64[1]:.2f}",
            f"{r0:.3f}", "-" if r5 is None else f"{r5:.3f}"]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="svd,als", help="models on ml-latest-small ('' skips part 1)")
    p.add_argument("--kinds", default="exact,flat,hnsw,ivfpq,ivfpq:nprobe=64")
    p.add_argument("--n-items", type=int, default=62_423)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--calls", type=int, default=400, help="timed batch-1 searches (batch 64: calls / 8)")
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--threads", type=int, default=0, help="faiss OpenMP threads (0: faiss's default)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    fit_overrides: dict[str, Any] = {}
    if a.quick:
        a.n_items, a.queries, a.calls = 5000, 200, 16
        fit_overrides = {"epochs": 2}
    if a.threads:
        import faiss

        faiss.omp_set_num_threads(a.threads)
    try:
        import faiss

        threads = faiss.omp_get_max_threads()
    except ImportError:
        threads = 0
    console = Console()
    kinds = [k for k in a.kinds.split(",") if k]
    rows: list[list[str]] = []
    md_head = [
        "# Candidate retrieval: exact vs faiss flat / HNSW / IVF-PQ" + (" (QUICK: not a measurement)" if a.quick else ""),
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (faiss threads: {threads}), Python "
        f"{platform.python_version()}; `python benchmarks/ann.py{' --quick' if a.quick else ''}`, "
        f"{time.strftime('%Y-%m-%d %H:%M')}. {a.candidates} candidates per query; latency is "
        f"`Retriever.search` only (p50/p99 over {a.calls} batch-1 and {max(a.calls // 8, 5)} batch-64 "
        "calls); recall@10 = top 10 after exact re-scoring of the candidates vs the exact top 10 "
        "(models: seen items excluded, through `recommend_batch`).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|---|---|---|" + "---:|" * (len(HEADER) - 3),
    ]

    def flush() -> None:
        fs.write_text(a.out, "\n".join(md_head + ["| " + " | ".join(r) + " |" for r in rows]) + "\n")

    models = [m for m in a.models.split(",") if m]
    if models:
        ctx = experiment.load_context("ml-latest-small", "random:0.9", seed=42, progress=False)
        train = ctx.split.train
        users = np.flatnonzero(train.user_counts > 0)
        if a.quick:
            users = users[:50]
        for name in models:
            model = create_model(name, fit_overrides).fit(train, options={"progress": False})
            space = model.retrieval_space()
            queries = space.query_vectors(users=users)
            label = f"ml-latest-small {name} ({space.ids().shape[0]} x {space.dim})"

            def recall(r: Any, m: Any = model) -> tuple[float, float]:
                return (recall_at_k(m, r, users, 10, a.candidates),
                        recall_at_k(m, r, users, 10, a.candidates, risk_aversion=0.5))  # fmt: skip

            for spec in kinds:
                rows.append(measure(label, space, queries, spec, a, recall))
                console.print(" | ".join(rows[-1]))
                flush()
    space, queries = synthetic_space(a.n_items, a.dim, a.queries)
    label = f"synthetic {a.n_items:,} x {a.dim}"
    for spec in kinds:
        rows.append(measure(label, space, queries, spec, a, lambda r: (vector_recall(r, queries, 10, a.candidates), None)))
        console.print(" | ".join(rows[-1]))
        flush()

    table = Table(title="candidate retrieval (latency: search only)")
    for col in HEADER:
        table.add_column(col)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    console.print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
