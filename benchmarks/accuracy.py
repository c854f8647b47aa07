"""Accuracy and speed of every cinerec model, measured against the classics.

Writes benchmarks/results/accuracy.md. Sections:

1. ml-latest-small, random 90/10 (seed 42): RMSE / MAE of the rating models, the
   paper-002 preset next to its claimed 0.9001, Surprise in the same run when installed.
2. ml-latest-small, global temporal 80/20 (paper 002's protocol), warm and all rows.
3. ml-latest-small, per-user temporal 80/20, full-catalogue ranking (relevant >= 4).
4. svd fit time vs Surprise SVD (same factors and epochs) on ml-latest-small and on a
   1M-rating synthetic release, as a ratio.

Usage: python benchmarks/accuracy.py [--quick] [--sections 1,2,3,4] [--threads 1]

Each section writes benchmarks/results/accuracy.d/section-N.md as soon as it ends and
accuracy.md is reassembled from the section files present, so sections can run in
separate processes (e.g. `--sections 1,2` and `--sections 3,4` side by side).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import best_of
from rich.console import Console

from cinerec import experiment
from cinerec.data.dataset import Dataset
from cinerec.data.splits import Split
from cinerec.evaluation.protocol import evaluate
from cinerec.models.registry import create_model
from cinerec.report import tables

RESULTS = Path(__file__).parent / "results" / "accuracy.md"
PARTS = Path(__file__).parent / "results" / "accuracy.d"
RATING_MODELS = ["mean", "bias", "user-knn", "item-knn", "svd", "svdpp", "als", "mf-torch", "autorec", "ncf"]
RANKING_MODELS = ["popular", "ials", "ease", "ease@binary", "rank-blend"]
#: Named variants: "NAME@tag" is model NAME with these hyper-parameters. EASE's default
#: is rating-weighted (chosen on a validation split carved from the train part,
#: docs/models-classic.md, never on this test part); "ease@binary" is the paper's form.
VARIANTS = {"ease@binary": {"weighting": "binary"}, "ncf@paper": {"preset": "paper"}}
PAPER_002_CLAIM = 0.9001
REFERENCES_RANDOM = {"Surprise SVD (default)": 0.8755, "Surprise KNNBaseline": 0.8482, "Cornac MF (k=100)": 0.8396}
REFERENCES_RANKING = {
    "most-popular": 0.0743,
    "implicit item-KNN": 0.0819,
    "implicit ALS": 0.0800,
    "plain EASE (lambda 200-500)": "0.1023-0.1028",
}

console = Console()


def fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(x) for x in row) + " |")
    return "\n".join(lines)


def run_models(names: list[str], split: Split, configs: dict | None = None, k: int = 10) -> dict:
    out = {}
    for name in names:
        cfg = (configs or {}).get(name, VARIANTS.get(name, {}))
        console.print(f"  fitting {name} {cfg or ''}")
        model = create_model(name.split("@")[0], cfg)
        out[name] = evaluate(model, split, k=k, fit=True, progress=False)
    return out


# ---- Surprise (peer) -----------------------------------------------------------------
def surprise_available() -> bool:
    try:
        import surprise  # noqa: F401
    except ImportError:
        return False
    return True


def surprise_svd(train: Dataset, test: Dataset, n_factors: int, n_epochs: int, **kw) -> dict:
    import pandas as pd
    from surprise import SVD, Reader
    from surprise import Dataset as SDataset

    lo, hi = train.rating_scale
    frame = pd.DataFrame({"u": train.users, "i": train.items, "r": train.ratings})
    trainset = SDataset.load_from_df(frame, Reader(rating_scale=(lo, hi))).build_full_trainset()
    fit_s, algo = best_of(lambda: SVD(n_factors=n_factors, n_epochs=n_epochs, random_state=0, **kw).fit(trainset))
    preds = np.array([algo.predict(int(u), int(i)).est for u, i in zip(test.users, test.items, strict=True)])
    err = preds - test.ratings
    return {"fit_s": fit_s, "rmse": float(np.sqrt(np.mean(err**2)))}


def cinerec_svd(split: Split, n_factors: int, n_epochs: int, threads: int = 0) -> dict:
    cfg = {"n_factors": n_factors, "epochs": n_epochs}
    opts = {"threads": threads, "progress": False}
    create_model("svd", cfg).fit(split.train, options=opts)  # warm numba's cache: compile time is not fit time
    fit_s, model = best_of(lambda: create_model("svd", cfg).fit(split.train, options=opts))
    err = model.predict(split.test.users, split.test.items) - split.test.ratings
    return {"fit_s": fit_s, "rmse": float(np.sqrt(np.mean(err**2)))}


# ---- sections ----------------------------------------------------------------------
def section_random(quick: bool) -> str:
    console.rule("1. ml-latest-small, random 90/10 (seed 42)")
    ctx = experiment.load_context("ml-latest-small", "random:0.9", seed=42, progress=False)
    names = RATING_MODELS + ["blend"] if not quick else ["mean", "bias", "svd", "ncf"]
    reports = run_models(names, ctx.split)
    paper = run_models(["ncf@paper"], ctx.split, {"ncf@paper": {"preset": "paper"}})["ncf@paper"]
    rows = [[n, r.metrics["rmse"], r.metrics["mae"], r.metrics["r2"], r.metrics["fit_s"]] for n, r in reports.items()]
    rows.append(["ncf, paper-002 preset (10 epochs, batch 64)", paper.metrics["rmse"], paper.metrics["mae"], paper.metrics["r2"], paper.metrics["fit_s"]])
    if surprise_available():
        for label, kw in (("Surprise SVD (default), same run", {}),):
            s = surprise_svd(ctx.split.train, ctx.split.test, 100, 20, **kw)
            rows.append([label, s["rmse"], None, None, s["fit_s"]])
    console.print(tables.rich_table(list(reports.values()) + [paper]))
    svd = reports["svd"].metrics["rmse"]
    ncf = reports["ncf"].metrics["rmse"]
    text = [
        "## 1. ml-latest-small, random 90/10 (seed 42)",
        "",
        md_table(["model", "RMSE", "MAE", "R²", "fit s"], rows),
        "",
        "Reference points measured with established libraries on this split: "
        + ", ".join(f"{k} {v}" for k, v in REFERENCES_RANDOM.items())
        + f". The paper-002 claim for its network is RMSE {PAPER_002_CLAIM}.",
        "",
        f"- target `svd` (defaults) <= 0.845: measured {svd:.4f} — {'met' if svd <= 0.845 else 'NOT met'}",
        f"- target `ncf` (early stopping) <= 0.875: measured {ncf:.4f} — {'met' if ncf <= 0.875 else 'NOT met'}",
        f"- paper preset: measured {paper.metrics['rmse']:.4f} vs claimed {PAPER_002_CLAIM}",
    ]
    best = min(reports, key=lambda n: reports[n].metrics["rmse"])
    rmse = reports[best].metrics["rmse"]
    text.append(f"- target best single model or `blend` <= 0.825: `{best}` {rmse:.4f} — {'met' if rmse <= 0.825 else 'NOT met'}")
    if "blend" in reports:
        text += ["", "`blend` (defaults): ridge stack of svdpp, svd, item-knn, user-knn, autorec and bias, "
                 "weights learned on 10% of the train part, members refitted on all of it."]
    return "\n".join(text)


def section_global_temporal(quick: bool) -> str:
    console.rule("2. ml-latest-small, global temporal 80/20")
    ctx = experiment.load_context("ml-latest-small", "temporal:0.8", seed=42, progress=False)
    names = RATING_MODELS + ["blend"] if not quick else ["mean", "bias", "svd", "ncf"]
    reports = run_models(names, ctx.split)
    share = ctx.split.cold_share()
    rows = [
        [n, r.metrics["rmse"], r.metrics["mae"], r.metrics["rmse_warm"], r.metrics["mae_warm"]]
        for n, r in reports.items()
    ]
    console.print(tables.rich_table(list(reports.values())))
    return "\n".join(
        [
            "## 2. ml-latest-small, global temporal 80/20 (paper 002's stated protocol)",
            "",
            md_table(["model", "RMSE (all)", "MAE (all)", "RMSE (warm)", "MAE (warm)"], rows),
            "",
            f"Test rows: {ctx.split.test.n_ratings:,}; rows whose user has no training rating: "
            f"{share['cold_user_rows']:.1%}; rows whose movie has none: {share['cold_item_rows']:.1%}; "
            f"warm rows (user and movie both seen): {share['warm_rows']:.1%}.",
            "",
            "What this protocol measures: the last 20% of ratings in time come mostly from users who "
            "joined after the cut, so the 'all rows' column is dominated by the cold-user fallback "
            "(every model falls back to the same damped item mean for them, hence similar numbers). "
            "Only the 'warm' column compares personalisation, on a small and late-biased sample.",
        ]
    )


def section_ranking(quick: bool) -> str:
    console.rule("3. ml-latest-small, per-user temporal 80/20, full-catalogue ranking")
    ctx = experiment.load_context("ml-latest-small", "user-temporal:0.8", seed=42, progress=False)
    names = RANKING_MODELS + (RATING_MODELS if not quick else ["bias", "svd"])
    reports = run_models(names, ctx.split)
    rows = [
        [n, r.metrics["precision@10"], r.metrics["recall@10"], r.metrics["ndcg@10"], r.metrics["hit@10"], r.metrics["fit_s"]]
        for n, r in reports.items()
    ]
    console.print(tables.rich_table(list(reports.values())))
    best_name, best = max(((n, r.metrics["ndcg@10"]) for n, r in reports.items()), key=lambda t: t[1])
    ease = reports["ease"].metrics["ndcg@10"]
    return "\n".join(
        [
            "## 3. ml-latest-small, per-user temporal 80/20, full-catalogue ranking (relevant: rating >= 4)",
            "",
            md_table(["model", "P@10", "R@10", "NDCG@10", "HR@10", "fit s"], rows),
            "",
            "Reference points measured on exactly this protocol: "
            + ", ".join(f"{k} {v}" for k, v in REFERENCES_RANKING.items())
            + ".",
            "",
            f"- target `ease` >= 0.10: measured {ease:.4f} — {'met' if ease >= 0.10 else 'NOT met'}",
            f"- target best model >= 0.105: best is `{best_name}` with {best:.4f} — {'met' if best >= 0.105 else 'NOT met'}",
            f"- target (issue 15) NDCG@10 >= 0.12: best is `{best_name}` with {best:.4f} — {'met' if best >= 0.12 else 'NOT met'}",
        ]
    )


def section_speed(quick: bool) -> str:
    console.rule("4. svd fit time vs Surprise SVD")
    if not surprise_available():
        return "## 4. svd vs Surprise\n\nSurprise is not installed (`pip install -e '.[bench]'`): not measured."
    from cinerec.data import load_dataset
    from cinerec.data.splits import make_split
    from cinerec.data.synthetic import generate

    rows = []
    cases = [("ml-latest-small", "ml-latest-small")]
    tmp = tempfile.TemporaryDirectory()
    if not quick:
        path = Path(tmp.name) / "synth-1m"
        generate(path, n_ratings=1_000_000, n_users=6_000, n_items=4_000, seed=0, progress=False)
        cases.append(("synthetic 1M", str(path)))
    for label, data in cases:
        split = make_split(load_dataset(data, progress=False), "random:0.9", seed=42)
        for n_factors, n_epochs in ((100, 20),):
            ours = cinerec_svd(split, n_factors, n_epochs)
            serial = cinerec_svd(split, n_factors, n_epochs, threads=1)
            theirs = surprise_svd(split.train, split.test, n_factors, n_epochs)
            ratio = theirs["fit_s"] / ours["fit_s"]
            ratio_serial = theirs["fit_s"] / serial["fit_s"]
            rows.append(
                [
                    label,
                    f"{n_factors}/{n_epochs}",
                    ours["fit_s"],
                    theirs["fit_s"],
                    f"{ratio:.1f}x",
                    serial["fit_s"],
                    f"{ratio_serial:.1f}x",
                    ours["rmse"],
                    theirs["rmse"],
                ]
            )
            console.print(rows[-1])
    tmp.cleanup()
    return "\n".join(
        [
            "## 4. `svd` fit time vs Surprise SVD (same factors and epochs, same split)",
            "",
            md_table(
                [
                    "data",
                    "factors/epochs",
                    "cinerec s",
                    "Surprise s",
                    "speed-up",
                    "cinerec 1 thread s",
                    "speed-up 1 thread",
                    "cinerec RMSE",
                    "Surprise RMSE",
                ],
                rows,
            ),
            "",
            "Wall-clock fit time, best of 3, same train part. Surprise is single-threaded; cinerec's "
            "`svd` runs the blocks of each DSGD stratum in 2 threads (`blocks=2`; identical results "
            "with 1 thread, shown in the `1 thread` columns) on this 2-vCPU machine, whose vCPUs "
            "share a core (2 threads give ~1.25x). "
            "cinerec's time excludes numba's one-off compilation (cached on disk after the first "
            "run). Target: >= 5x at equal or better RMSE.",
        ]
    )


SECTIONS = {"1": section_random, "2": section_global_temporal, "3": section_ranking, "4": section_speed}


def assemble(header: str) -> None:
    """accuracy.md = header + every section file written so far, in section order."""
    parts = [header] + [p.read_text() for p in sorted(PARTS.glob("section-*.md"))]
    RESULTS.write_text("\n".join(parts) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer models, no 1M synthetic set")
    parser.add_argument("--sections", default="1,2,3,4")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    header = "\n".join(
        [
            "# Accuracy benchmark",
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
            "Written by `python benchmarks/accuracy.py`; each section below names the run that made it.",
            "",
        ]
    )
    PARTS.mkdir(parents=True, exist_ok=True)
    for key in args.sections.split(","):
        key = key.strip()
        t0 = time.perf_counter()
        text = SECTIONS[key](args.quick)
        text += (
            f"\n\n_section time {time.perf_counter() - t0:.0f} s; "
            f"`python benchmarks/accuracy.py {' '.join(sys.argv[1:])}`, {time.strftime('%Y-%m-%d %H:%M')}_\n"
        )
        (PARTS / f"section-{key}.md").write_text(text)
        assemble(header)
        console.print(f"wrote section {key} to {RESULTS}")


if __name__ == "__main__":
    main()
