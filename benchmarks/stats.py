"""Benchmark of the full variance analysis (`cinerec.stats.analyze`, no figures).

Each case runs in its own subprocess so peak RSS (``resource.getrusage``) is that
case's alone; the subprocess is pinned to 2 cores where the OS allows it. Writes
``benchmarks/results/stats.md``.

    python benchmarks/stats.py [--ratings 25000000] [--skip-real]

Targets: 25M synthetic ratings in < 20 s and < 3 GB peak RSS on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "stats.md"


def _child(case: str, n_ratings: int) -> None:
    """Run one case and print a JSON line (time of load and of analysis, peak RSS)."""
    import resource

    t0 = time.perf_counter()
    if case == "synthetic":
        from cinerec.data.synthetic import generate_dataset

        n_users = max(1000, n_ratings // 150)  # ML-25M: 25M ratings, 162k users, 62k movies
        n_items = max(500, n_ratings // 400)
        ds = generate_dataset(n_ratings, n_users, n_items, seed=0, progress=False)
    else:
        from cinerec.data import load_dataset

        ds = load_dataset(case, progress=False)
    from cinerec.stats import analyze  # import time is not analysis time

    t1 = time.perf_counter()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    a = analyze(ds, min_count=10)
    t2 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    pear = a.correlation.row(0, named=True)
    print(
        json.dumps(
            {
                "case": ds.name,
                "ratings": ds.n_ratings,
                "movies_kept": a.movies.height,
                "users_kept": a.users.height,
                "load_s": t1 - t0,
                "analyze_s": t2 - t1,
                "peak_rss_mb_before_analyze": rss_before / 1024,
                "peak_rss_mb": rss / 1024,
                "pearson_r": pear["r"],
            }
        )
    )


def _run(case: str, n_ratings: int) -> dict:
    cmd = [sys.executable, __file__, "--child", case, "--ratings", str(n_ratings)]
    env = dict(
        os.environ,
        OMP_NUM_THREADS="2",
        OPENBLAS_NUM_THREADS="2",
        MKL_NUM_THREADS="2",
        POLARS_MAX_THREADS="2",
        NUMBA_NUM_THREADS="2",
    )
    preexec = (
        (lambda: os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:2])))
        if (hasattr(os, "sched_setaffinity"))
        else None
    )
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=preexec)
    if out.returncode != 0:
        return {"case": case, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--ratings", type=int, default=25_000_000)
    p.add_argument("--skip-real", action="store_true")
    args = p.parse_args()
    if args.child:
        _child(args.child, args.ratings)
        return
    rows = [_run("synthetic", args.ratings)]
    if not args.skip_real:
        rows.append(_run("ml-latest-small", 0))
    lines = [
        "# Variance analysis benchmark (`benchmarks/stats.py`)",
        "",
        f"`cinerec.stats.analyze(ds, min_count=10)`, no figures; one subprocess per case, "
        f"pinned to 2 cores. Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs visible (shared), Python {platform.python_version()}. "
        f"Peak RSS is the whole process (data set included). Target for 25M: < 20 s, < 3 GB.",
        "",
        "| case | ratings | movies kept | users kept | load/generate s | analyze s | "
        "peak RSS before analyze (MB) | peak RSS (MB) | Pearson r(sigma, mean) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | error: {r['error']} | | | | | | | |")
            continue
        lines.append(
            f"| {r['case']} | {r['ratings']:,} | {r['movies_kept']:,} | {r['users_kept']:,} | "
            f"{r['load_s']:.1f} | {r['analyze_s']:.2f} | {r['peak_rss_mb_before_analyze']:,.0f} | "
            f"{r['peak_rss_mb']:,.0f} | {r['pearson_r']:.3f} |"
        )
    lines.append("")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
