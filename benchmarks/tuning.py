"""What `cinerec tune` buys over the defaults, measured on parts it never saw.

For each study: the model's defaults and the best trial's config, each scored on the
validation part the tuner used (carved from the split's train part) and then fitted on
the whole train part and scored on the test part, which the tuner never reads.

1. `svd`, ml-latest-small random 90/10 (seed 42), 30 trials, RMSE;
2. `svdpp`, same split, 20 trials, RMSE;
3. `ease`, per-user temporal 80/20 (relevant: rating >= 4), 16 trials, NDCG@10 over the
   full catalogue.

Usage: python benchmarks/tuning.py [--sections 1,2,3]
Writes benchmarks/results/tuning.md (sections kept in results/tuning.d/).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _markdown import save_section, stamp, table, write_results  # benchmarks/ is on sys.path
from rich.console import Console

from cinerec import experiment
from cinerec.evaluation.protocol import evaluate
from cinerec.models.registry import create_model
from cinerec.tuning import tune, validation_split

HERE = Path(__file__).parent
OUT = HERE / "results" / "tuning.md"
STORE = HERE / "results" / "tuning.d"
#: section -> (model, split spec, metric, trials)
STUDIES: dict[str, tuple[str, str, str, int]] = {
    "1": ("svd", "random:0.9", "rmse", 30),
    "2": ("svdpp", "random:0.9", "rmse", 20),
    "3": ("ease", "user-temporal:0.8", "ndcg@10", 16),
}


def _metric(model: Any, split: Any, metric: str) -> float:
    return float(evaluate(model, split, k=10, fit=True, metrics=[metric], progress=False).metrics[metric])


def study(section: str, console: Console) -> dict[str, Any]:
    name, spec, metric, trials = STUDIES[section]
    console.rule(f"{section}. {name}, {spec}, {metric}, {trials} trials")
    ctx = experiment.load_context("ml-latest-small", spec, seed=42, progress=False)
    parts = validation_split(ctx)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = tune(name, ctx, trials=trials, metric=metric, storage=Path(tmp) / "study.db", progress=False)
        seconds = time.perf_counter() - t0
    rows = []
    for label, cfg in (("defaults", {}), ("tuned", result.config)):
        valid = _metric(create_model(name, cfg), parts, metric)
        test = _metric(create_model(name, cfg), ctx.split, metric)
        rows.append({"config": label, "params": cfg, "valid": valid, "test": test})
        console.print(f"  {label:8s} valid {valid:.4f}  test {test:.4f}  {cfg}")
    return {"model": name, "split": spec, "metric": metric, "trials": trials, "seconds": seconds,
            "complete": result.complete, "pruned": result.pruned, "rows": rows}


def render(store: dict[str, Any], stamps: dict[str, str]) -> str:
    md = ["# `cinerec tune` against the defaults", "",
          f"Machine: {platform.machine()}, torch {torch.__version__}, CPU. ml-latest-small, seed 42. "
          "`valid`: the validation part the tuner scored (the split spec applied again to the train "
          "part, same seed); `test`: the model fitted on the whole train part, scored on the test "
          "part the tuner never reads.", ""]
    for s in sorted(store):
        r = store[s]
        better = "lower" if r["metric"] in ("rmse", "mae") else "higher"
        md += [f"## {s}. `{r['model']}`, {r['split']}, {r['metric']} ({better} is better)", ""]
        md += table(["config", "hyper-parameters", f"valid {r['metric']}", f"test {r['metric']}"],
                    [[x["config"], ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in x["params"].items()) or "(defaults)",
                      x["valid"], x["test"]] for x in r["rows"]])
        d, t = r["rows"]
        sign = 1 if better == "lower" else -1
        verdict = "improves on" if sign * (t["test"] - d["test"]) < 0 else "does not improve on"
        md += ["", f"{r['trials']} trials ({r['complete']} complete, {r['pruned']} pruned) in "
               f"{r['seconds']:.0f} s; on the test part the tuned config {verdict} the defaults "
               f"({t['test'] - d['test']:+.4f}).", "", f"_{stamps[s]}_", ""]
    return "\n".join(md)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default="1,2,3")
    a = p.parse_args(argv)
    console = Console()
    STORE.mkdir(parents=True, exist_ok=True)
    for s in a.sections.split(","):
        if s not in STUDIES:
            raise SystemExit(f"unknown section {s!r} (1, 2 or 3)")
        t0 = time.perf_counter()
        out = study(s, console)
        save_section(STORE, s, out, stamp("tuning.py", f"--sections {s}", t0))
    console.print(f"wrote {write_results(STORE, OUT, render)}")

if __name__ == "__main__":
    main()
