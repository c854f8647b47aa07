"""Sequence models, time-aware ratings, new-user cold start and data imbalance.

Sections (ml-latest-small, full-catalogue ranking, never sampled negatives):

1. leave-last-out (each user's latest rating is test; relevant: any rating, i.e. "the
   next movie this person rated"): NDCG@10 / HR@10 of gru4rec, sasrec, ease
   (rating-weighted), ease@binary, ials, item-knn, popular, with fit time and seconds per epoch;
2. per-user temporal 80/20 (relevant: rating >= 4, the accuracy benchmark's protocol
   where ease (rating-weighted) holds 0.1178): the same models;
3. timesvd against svd on the per-user temporal 80/20 split (RMSE, all and warm rows);
4. new users, "first N ratings known" (`cinerec.evaluation.coldstart`): NDCG@10 and
   RMSE for N = 0, 1, 3, 5, 10, 20, a table and a figure
   (results/sequence-coldstart.png);
5. data imbalance on the temporal 80/20 split (`cinerec.evaluation.imbalance`): quality
   per popularity tier and user-activity tier, coverage, novelty; the popularity
   penalty's trade-off curve for ease.

Usage: python benchmarks/sequence.py [--sections 1,2,3,4,5] [--epochs 40] [--threads 0]
Writes benchmarks/results/sequence.md (each section's rows are kept in
results/sequence.d/, so one section can be re-run alone).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _markdown import (  # benchmarks/ is on sys.path when a script runs
    save_section,
    stamp,
    table,
    write_results,
)
from rich.console import Console

from cinerec.data import load_dataset
from cinerec.data.splits import make_split
from cinerec.evaluation.coldstart import cold_start_curve, cold_start_split
from cinerec.evaluation.imbalance import tier_metrics, tradeoff_curve
from cinerec.evaluation.protocol import evaluate
from cinerec.models.registry import create_model
from cinerec.report.plots import plot_cold_start_curve

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "sequence.md"
STORE = RESULTS / "sequence.d"
FIGURE = RESULTS / "sequence-coldstart.png"
QUIET = {"progress": False}

#: name -> (registered model, config); the sequence models' settings are the measured defaults.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "popular": ("popular", {}),
    "item-knn": ("item-knn", {}),
    "ials": ("ials", {}),
    "ease": ("ease", {}),  # rating-weighted (the default since 2026-12-04)
    "ease@binary": ("ease", {"weighting": "binary"}),
    "gru4rec": ("gru4rec", {}),
    "sasrec": ("sasrec", {}),
}
SEQUENCE = {"gru4rec", "sasrec"}


def _model(label: str, epochs: int):
    name, cfg = MODELS[label]
    if label in SEQUENCE:
        cfg = cfg | {"epochs": epochs}
    return create_model(name, cfg)


def ranking_section(ds, spec: str, threshold: float, epochs: int, console: Console) -> list[dict]:
    split = make_split(ds, spec, seed=42)
    rows = []
    for label in MODELS:
        model = _model(label, epochs)
        r = evaluate(model, split, metrics=["ndcg", "hit", "fit_s"], threshold=threshold, progress=False,
                     options=QUIET)
        h = getattr(model, "history_", None)
        row = {"model": label, "ndcg@10": r.metrics["ndcg@10"], "hr@10": r.metrics["hit@10"],
               "fit_s": r.metrics["fit_s"], "epochs": len(h.epoch) if h else None,
               "s_per_epoch": float(np.mean(h.time_s)) if h and h.time_s else None}
        console.print(row)
        rows.append(row)
    return rows


def timesvd_section(ds, console: Console) -> list[dict]:
    split = make_split(ds, "user-temporal:0.8", seed=42)
    rows = []
    for name in ("svd", "timesvd"):
        r = evaluate(create_model(name), split, metrics=["rating", "fit_s"], progress=False, options=QUIET)
        row = {"model": name, **{k: r.metrics[k] for k in ("rmse", "mae", "rmse_warm", "mae_warm", "fit_s")}}
        console.print(row)
        rows.append(row)
    return rows


def coldstart_section(ds, epochs: int, console: Console) -> list[dict]:
    cs = cold_start_split(ds, user_frac=0.2, seed=42)
    rows = []
    for label in ("popular", "item-knn", "ials", "ease", "svd", "gru4rec", "sasrec"):
        model = _model(label, epochs) if label in MODELS else create_model(label)
        model.fit(cs.train, options=QUIET)
        for row in cold_start_curve(model, cs):
            row = {k: v for k, v in row.items() if k != "basis"} | {"basis": dict(row["basis"])}
            console.print(row)
            rows.append(row)
    return rows


def imbalance_section(ds, epochs: int, console: Console) -> dict[str, Any]:
    split = make_split(ds, "user-temporal:0.8", seed=42)
    tiers = []
    ease = None
    for label in ("popular", "item-knn", "ease", "sasrec"):
        model = _model(label, epochs).fit(split.train, options=QUIET)
        ease = model if label == "ease" else ease
        row = {"model": label} | tier_metrics(model, split)
        console.print(row)
        tiers.append(row)
    curve = tradeoff_curve(ease, split)
    return {"tiers": tiers, "tradeoff": curve}


# ---- rendering ---------------------------------------------------------------------------
def _ranking_md(rows: list[dict], goal: str) -> list[str]:
    out = table(["model", "NDCG@10", "HR@10", "fit s", "epochs", "s/epoch"],
                 [[r["model"], r["ndcg@10"], r["hr@10"], r["fit_s"], r["epochs"], r["s_per_epoch"]] for r in rows])
    best_seq = max((r for r in rows if r["model"] in SEQUENCE), key=lambda r: r["ndcg@10"])
    ease = max((r for r in rows if r["model"].startswith("ease")), key=lambda r: r["ndcg@10"])
    return out + ["", f"- best sequence model: `{best_seq['model']}` {best_seq['ndcg@10']:.4f}; best ease: "
                      f"`{ease['model']}` {ease['ndcg@10']:.4f} ({best_seq['ndcg@10'] / ease['ndcg@10'] - 1:+.1%}); "
                      f"{goal}"]


def render(store: dict[str, Any], stamp: dict[str, str]) -> str:
    md = ["# Sequence models, time-aware ratings, cold start, imbalance", "",
          f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, CPU only. "
          "ml-latest-small, seed 42, full-catalogue ranking of every item with a training rating minus "
          "the user's training items.", ""]
    if "1" in store:
        md += ["## 1. Leave-last-out (relevant: the user's latest rated movie, any rating)", ""]
        md += _ranking_md(store["1"], "goal: a sequence model beats ease by >= 10% relative")
        md += ["", f"_{stamp.get('1', '')}_", ""]
    if "2" in store:
        md += ["## 2. Per-user temporal 80/20 (relevant: rating >= 4)", ""]
        md += _ranking_md(store["2"], "goal: a sequence model reaches NDCG@10 >= 0.125")
        md += ["", f"_{stamp.get('2', '')}_", ""]
    if "3" in store:
        md += ["## 3. timesvd vs svd, per-user temporal 80/20", ""]
        md += table(["model", "RMSE", "MAE", "RMSE warm", "MAE warm", "fit s"],
                     [[r["model"], r["rmse"], r["mae"], r["rmse_warm"], r["mae_warm"], r["fit_s"]] for r in store["3"]])
        md += ["", "timesvd predicts at each user's last training day (the contract has no time argument); "
                   "its defaults were chosen on this split's test part, so its margin is optimistic.",
               "", f"_{stamp.get('3', '')}_", ""]
    if "4" in store:
        rows = store["4"]
        ns = sorted({r["N"] for r in rows})
        models = list(dict.fromkeys(r["model"] for r in rows))
        get = {(r["model"], r["N"]): r for r in rows}
        md += ["## 4. New users: the first N ratings known", "",
               f"{rows[0]['n_users']} new users (20%, seed 42) with all their ratings removed from train; "
               "targets are each one's ratings after the 20th, the same for every N. N = 0 is each model's "
               "fallback (the damped item mean); N >= 1 folds the first N ratings in, no retraining.", "",
               "NDCG@10:", ""]
        md += table(["model", *[f"N={n}" for n in ns]], [[m, *[get[(m, n)]["ndcg@10"] for n in ns]] for m in models])
        md += ["", "RMSE (rating models):", ""]
        md += table(["model", *[f"N={n}" for n in ns]],
                     [[m, *[get[(m, n)]["rmse"] for n in ns]] for m in models if get[(m, ns[0])]["rmse"] is not None])
        md += ["", f"![cold-start curve]({FIGURE.name})", "", f"_{stamp.get('4', '')}_", ""]
    if "5" in store:
        tiers, curve = store["5"]["tiers"], store["5"]["tradeoff"]
        keys = [k for k in tiers[0] if k != "model" and not isinstance(tiers[0][k], (dict, list))]
        md += ["## 5. Data imbalance, per-user temporal 80/20", ""]
        md += table(["metric", *[t["model"] for t in tiers]], [[k, *[t.get(k) for t in tiers]] for k in keys])
        md += ["", "Popularity penalty (score and log-popularity standardised per user; "
                   "rank by score - beta * popularity), ease:", ""]
        ck = [k for k in curve[0] if not isinstance(curve[0][k], (dict, list))]
        md += table(ck, [[c[k] for k in ck] for c in curve])
        md += ["", f"_{stamp.get('5', '')}_", ""]
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default="1,2,3,4,5")
    p.add_argument("--epochs", type=int, default=40, help="most epochs of the sequence models (early stopping)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    console = Console()
    ds = load_dataset("ml-latest-small", progress=False)
    STORE.mkdir(parents=True, exist_ok=True)
    for s in a.sections.split(","):
        t0 = time.perf_counter()
        if s == "1":
            out: Any = ranking_section(ds, "loo", 0.0, a.epochs, console)
        elif s == "2":
            out = ranking_section(ds, "user-temporal:0.8", 4.0, a.epochs, console)
        elif s == "3":
            out = timesvd_section(ds, console)
        elif s == "4":
            out = coldstart_section(ds, a.epochs, console)
            plot_cold_start_curve(out, FIGURE)
        elif s == "5":
            out = imbalance_section(ds, a.epochs, console)
        else:
            raise SystemExit(f"unknown section {s!r}")
        save_section(STORE, s, out, stamp("sequence.py", f"--sections {s} --epochs {a.epochs}", t0))
    console.print(f"wrote {write_results(STORE, OUT, render)}")


if __name__ == "__main__":
    main()
