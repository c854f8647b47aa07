"""The long fuzz run: every target of tests/reliability/fuzz_targets.py, many inputs each.

Counts, per target: inputs tried, inputs accepted (a correct result), declared errors
(a clear CinerecError), undeclared exceptions (bugs: must be 0) and hangs (an input
that runs longer than --hang-s: must be 0). The first undeclared exceptions are listed
with the input that raised them.

Run: CINEREC_DATA=../shared/data .venv/bin/python benchmarks/fuzz.py [--examples 15000]
     [--targets a,b] [--hang-s 10]
Writes benchmarks/results/fuzz.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package
from tests.reliability.fuzz_targets import TARGETS  # noqa: E402

from cinerec._util import fs  # noqa: E402

OUT = Path(__file__).parent / "results" / "fuzz.md"


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def run_target(name: str, examples: int, hang_s: float, seed: int) -> dict:
    target = TARGETS[name]
    counts = collections.Counter()
    bugs: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def run(example) -> None:
        counts["tried"] += 1
        signal.setitimer(signal.ITIMER_REAL, hang_s)
        try:
            target.run(example)
            counts["accepted"] += 1
        except target.declared:
            counts["declared"] += 1
        except Hang:
            counts["hangs"] += 1
            bugs.append(f"hang > {hang_s:g} s on {example!r:.300}")
        except Exception as e:  # noqa: BLE001 - counting them is the point
            counts["undeclared"] += 1
            if len(bugs) < 5:
                where = traceback.extract_tb(e.__traceback__)[-1]
                bugs.append(f"{type(e).__name__}: {e!s:.200} at {where.filename}:{where.lineno} on {example!r:.300}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    signal.signal(signal.SIGALRM, _alarm)
    t0 = time.perf_counter()
    settings_seed = __import__("hypothesis").seed(seed)
    settings_seed(run)()
    counts["seconds"] = time.perf_counter() - t0
    return {"counts": counts, "bugs": bugs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=15_000, help="inputs per target")
    p.add_argument("--targets", default=",".join(sorted(TARGETS)))
    p.add_argument("--hang-s", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    console = Console()
    names = [n for n in a.targets.split(",") if n]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        p.error(f"unknown targets {unknown}; known: {', '.join(sorted(TARGETS))}")
    results = {}
    for name in names:
        results[name] = run_target(name, a.examples, a.hang_s, a.seed)
        c = results[name]["counts"]
        console.print(f"{name}: {c['tried']:,} inputs, {c['undeclared']} undeclared, {c['hangs']} hangs "
                      f"({c['seconds']:.0f} s)")
    cols = ["target", "inputs", "accepted", "declared errors", "undeclared", "hangs", "seconds"]
    table = Table(title=f"fuzz: {a.examples:,} examples per target (hypothesis, seed {a.seed})")
    for col in cols:
        table.add_column(col, justify="left" if col == "target" else "right")
    md = [
        "# Fuzzing the boundaries",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"`python benchmarks/fuzz.py --examples {a.examples}`, {time.strftime('%Y-%m-%d %H:%M')}. "
        "Hypothesis stops a target early when its input space is exhausted.",
        "",
        "| " + " | ".join(cols) + " |",
        "|---|" + "---:|" * (len(cols) - 1),
    ]
    total = collections.Counter()
    for name, r in results.items():
        c = r["counts"]
        total.update({k: v for k, v in c.items() if k != "seconds"})
        cells = [name, f"{c['tried']:,}", f"{c['accepted']:,}", f"{c['declared']:,}", str(c["undeclared"]),
                 str(c["hangs"]), f"{c['seconds']:.0f}"]
        table.add_row(*cells)
        md.append("| " + " | ".join(cells) + " |")
    cells = ["**all**", f"{total['tried']:,}", f"{total['accepted']:,}", f"{total['declared']:,}",
             str(total["undeclared"]), str(total["hangs"]), ""]
    table.add_row(*cells)
    md.append("| " + " | ".join(cells) + " |")
    bugs = [f"- {name}: {b}" for name, r in results.items() for b in r["bugs"]]
    md += ["", "## Undeclared exceptions and hangs", "", *(bugs or ["None."])]
    console.print(table)
    for b in bugs:
        console.print(b, markup=False)
    fs.write_text(a.out, "\n".join(md) + "\n")
    console.print(f"wrote {a.out}")
    return 1 if total["undeclared"] or total["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
