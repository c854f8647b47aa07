"""Data-load benchmark: cold (parse) and warm (cache) loads, synthetic generation.

Every measurement runs in a fresh subprocess; its peak RSS comes from the child's own
rusage (``os.wait4``), so one run's memory never hides another's. Writes
``benchmarks/results/data_load.md`` and prints the same table.

    python benchmarks/data_load.py                 # ml-latest-small + 25M synthetic
    python benchmarks/data_load.py --ratings 1M    # smaller synthetic release
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "data_load.md"

# Runs inside the child: one load (or generation), timing written as JSON.
_CHILD = r"""
import json, sys, time
job, arg, out = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
info = {}
if job == "load":
    from cinerec.data import load_dataset
    t1 = time.perf_counter()
    ds = load_dataset(arg, progress=False)
    info["n_ratings"] = ds.n_ratings
    # touch every rating so a memory-mapped warm load is charged for its pages
    info["checksum"] = float(ds.ratings.sum(dtype="float64"))
    info["seconds"] = time.perf_counter() - t1
elif job == "parse":
    from cinerec.data.movielens import LoadReport, Source, members
    t1 = time.perf_counter()
    df = members.ratings(Source(arg), "error", LoadReport())
    info["n_ratings"] = df.height
    info["seconds"] = time.perf_counter() - t1
else:
    from cinerec.data.synthetic import generate
    counts, target = arg.split(";")
    n_r, n_u, n_i, seed = (int(x) for x in counts.split(","))
    t1 = time.perf_counter()
    generate(target, n_r, n_u, n_i, seed=seed, progress=False)
    info["seconds"] = time.perf_counter() - t1
info["total_seconds"] = time.perf_counter() - t0
open(out, "w").write(json.dumps(info))
"""


def _run(job: str, arg: str, env: dict[str, str], workdir: Path) -> dict:
    """Run one job in a fresh interpreter; add its peak RSS (MB) from wait4."""
    out = workdir / f"job-{time.monotonic_ns()}.json"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, job, arg, str(out)], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark job {job} {arg} failed with exit code {proc.returncode}")
    info = json.loads(out.read_text())
    # ru_maxrss is KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    info["peak_rss_mb"] = usage.ru_maxrss * scale / 2**20
    return info


def _count(text: str) -> int:
    from cinerec.cli.data import parse_count

    return parse_count(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratings", default="25M", help="synthetic ratings (K/M suffixes)")
    p.add_argument("--users", default=None, help="synthetic users (default: scaled like ml-25m)")
    p.add_argument("--items", default=None, help="synthetic movies (default: scaled like ml-25m)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-write", action="store_true", help="print only, do not write results/")
    args = p.parse_args(argv)
    n_r = _count(args.ratings)
    # ml-25m proportions: 162,541 users and 62,423 movies per 25M ratings (floors for tiny runs)
    n_u = _count(args.users) if args.users else max(200, round(n_r * 162_541 / 25_000_095))
    n_i = _count(args.items) if args.items else max(100, round(n_r * 62_423 / 25_000_095))

    console = Console()
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="cinerec-bench-"))
    env = dict(os.environ, CINEREC_CACHE=str(work / "cache"))
    try:
        home = Path(env.get("CINEREC_DATA", "")) if env.get("CINEREC_DATA") else None
        small = None
        if home is not None:
            from cinerec.data.store import find_local

            small = find_local("ml-latest-small", home)
        if small is not None:
            for label in ("cold (parse)", "warm (cache)"):
                r = _run("load", str(small), env, work)
                rows.append((f"ml-latest-small {label}", f"{r['n_ratings']:,}", f"{r['seconds']:.3f}", f"{r['peak_rss_mb']:.0f}"))
        else:
            notes.append("ml-latest-small not found (set CINEREC_DATA): skipped.")

        try:
            import cinerec.data.synthetic as synthetic

            has_generate = hasattr(synthetic, "generate")
        except ImportError:
            has_generate = False
        if has_generate:
            gen_dir = work / "synthetic"
            r = _run("generate", f"{n_r},{n_u},{n_i},{args.seed};{gen_dir}", env, work)
            rows.append((f"synthetic generate ({n_u:,} users, {n_i:,} movies)", f"{n_r:,}", f"{r['seconds']:.2f}", f"{r['peak_rss_mb']:.0f}"))
            r = _run("parse", str(gen_dir), env, work)
            rows.append(("synthetic ratings.csv parse only", f"{r['n_ratings']:,}", f"{r['seconds']:.3f}", f"{r['peak_rss_mb']:.0f}"))
            for label in ("cold (parse + build + cache write)", "warm (cache)"):
                r = _run("load", str(gen_dir), env, work)
                rows.append((f"synthetic {label}", f"{r['n_ratings']:,}", f"{r['seconds']:.3f}", f"{r['peak_rss_mb']:.0f}"))
        else:
            notes.append("cinerec.data.synthetic.generate is not available yet: synthetic rows skipped.")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = Table(title="cinerec data loading")
    for col in ("what", "ratings", "seconds", "peak RSS (MB)"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for n in notes:
        console.print(f"[yellow]note:[/] {n}")

    if not args.no_write:
        md = [
            "# Data loading",
            "",
            f"`python benchmarks/data_load.py --ratings {args.ratings}` on {platform.machine()}, "
            f"{os.cpu_count()} CPU(s), Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d')}. Each row is a fresh process; peak RSS is that "
            "process's maximum resident set (includes the interpreter and imports, ~150 MB). "
            "Cold = parse all source files, build the Dataset and write the cache; warm = load the parsed-array "
            "cache (memory-mapped .npy + parquet); the load is followed by a pass over all ratings.",
            "",
            "| what | ratings | seconds | peak RSS (MB) |",
            "| --- | ---: | ---: | ---: |",
            *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
            "",
            *[f"Note: {n}" for n in notes],
        ]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("\n".join(md).rstrip() + "\n")
        console.print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
