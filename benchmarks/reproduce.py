"""Wall time of ``cinerec reproduce paper-00N`` as a clean clone sees it, and its tables.

Each paper runs in its own process (the installed ``cinerec`` command) into a fresh
temporary run folder with an empty cache (``CINEREC_CACHE``: the data is parsed and the
texts encoded again), pinned to two cores when ``taskset`` exists. Goal: each under 15
minutes on 2 cores. Every paper's section is kept in ``results/reproduce.d/`` so one can
be re-run alone; the markdown is rewritten after each.

Usage: CINEREC_DATA=../shared/data python benchmarks/reproduce.py [--papers paper-002,paper-004]
Writes benchmarks/results/reproduce.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _markdown import load_sections, save_section  # benchmarks/ is on sys.path when a script runs

from cinerec import reproduce
from cinerec._util import fs

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "reproduce.md"
STORE = RESULTS / "reproduce.d"
GOAL_S = 15 * 60


def run_paper(paper: str) -> dict:
    cinerec = Path(sys.executable).with_name("cinerec")
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"CINEREC_CACHE": str(Path(tmp) / "cache")}
        cmd = [str(cinerec), "reproduce", paper, "--out", str(Path(tmp) / paper), "--format", "md", "--quiet"]
        if shutil.which("taskset") and (os.cpu_count() or 1) > 2:
            cmd = ["taskset", "-c", "0,1", *cmd]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{paper} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return {"paper": paper, "wall_s": wall, "markdown": done.stdout}


def render(store: dict, stamps: dict) -> str:
    md = ["# Paper reproductions (`cinerec reproduce`)", "",
          f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, CPU "
          "only. Each paper in a fresh process, fresh run folder and empty cache, as on a clean clone. Goal: each "
          f"under {GOAL_S // 60} minutes on 2 cores.", "",
          "| paper | wall s | goal met | agrees / holds | differs / fails | not run |", "|---|---:|---|---:|---:|---:|"]
    for paper in sorted(store):
        r = store[paper]
        lines = [ln for ln in r["markdown"].splitlines() if ln.startswith("| ") and not ln.startswith("| table")]
        count = {v: sum(f"| {v} |" in ln for ln in lines) for v in ("agrees", "holds", "differs", "fails", "not run")}
        md.append(f"| {paper} | {r['wall_s']:.0f} | {'yes' if r['wall_s'] < GOAL_S else 'no'} | "
                  f"{count['agrees'] + count['holds']} | {count['differs'] + count['fails']} | {count['not run']} |")
    md.append("")
    for paper in sorted(store):
        body = store[paper]["markdown"].strip().splitlines()
        md += ["#" + body[0], *body[1:], "", f"_{stamps[paper]}_", ""]
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--papers", default=",".join(reproduce.available()))
    a = p.parse_args(argv)
    STORE.mkdir(parents=True, exist_ok=True)
    for paper in [x.strip() for x in a.papers.split(",") if x.strip()]:
        row = run_paper(paper)
        print(f"{paper}: {row['wall_s']:.0f} s", flush=True)
        save_section(STORE, paper, row, f"{row['wall_s']:.0f} s; `python benchmarks/reproduce.py --papers {paper}`, "
                                        f"{time.strftime('%Y-%m-%d %H:%M')}")
        store, stamps = load_sections(STORE)
        fs.write_text(OUT, render(store, stamps))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
