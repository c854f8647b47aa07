"""What the run page recomputes from the run's own data: significance and variance.

``results.json`` keeps each model's metrics, not its per-row errors, so the paired tests
behind the page's significance markers need the test part again: `load_run_data`
rebuilds the run's split from the data named in ``results.json`` (refusing data whose
fingerprint differs from the run's), `significance` reloads every artifact, evaluates it
on that split (no fitting) and compares it with the best model (paired bootstrap of the
RMSE difference over the same test rows, Wilcoxon on per-user NDCG), and
`variance_figures` draws paper 000's Fig. 4 (sigma and consistency per rating tier and
genre) and the sigma-against-mean figure from the *train* part.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cinerec import artifacts, experiment
from cinerec.errors import CinerecError

#: Below this p-value a difference from the best model gets its marker.
ALPHA = 0.05


@dataclass
class Significance:
    """Per model label: p-values of "no difference from the best model"."""

    best: dict[str, str]  # metric -> label of the best model
    p: dict[str, dict[str, float]]  # label -> metric -> p


def load_run_data(results: dict[str, Any]) -> tuple[Any | None, str | None]:
    """(context of the run's data and split, None) or (None, why it is not available)."""
    try:
        ctx = experiment.load_context(str(results["data"]), str(results["split"]), int(results.get("seed", 42)),
                                      progress=False)
    except (CinerecError, KeyError, OSError, ValueError) as e:
        return None, f"the run's data could not be loaded ({e})"
    want = results.get("fingerprint")
    if want and ctx.dataset.fingerprint != want:
        return None, (f"the data now named {results['data']!r} differs from the run's (fingerprint "
                      f"{ctx.dataset.fingerprint} vs {want})")
    return ctx, None


def significance(results: dict[str, Any], run_dir: Path, ctx: Any) -> Significance:
    """Every model of the run against the best one on RMSE and NDCG@K (see the module)."""
    from cinerec.evaluation.protocol import evaluate
    from cinerec.evaluation.significance import compare_reports

    k = int(results.get("k", 10))
    ndcg = f"ndcg@{k}"
    reports = {}
    for label, entry in results["models"].items():
        folder = run_dir / entry.get("artifact", label)
        if not artifacts.is_artifact(folder):
            continue
        model = artifacts.load_model(folder)
        reports[label] = evaluate(model, ctx.split, k=k, fit=False, metrics=["rmse", ndcg], progress=False)
    best: dict[str, str] = {}
    for metric, better in (("rmse", min), (ndcg, max)):
        scored = {lab: r.metrics.get(metric) for lab, r in reports.items() if r.metrics.get(metric) is not None}
        if scored:
            best[metric] = better(scored, key=lambda lab, s=scored: s[lab])
    p: dict[str, dict[str, float]] = {label: {} for label in reports}
    for metric, leader in best.items():
        for label, rep in reports.items():
            if label == leader or rep.metrics.get(metric) is None:
                continue
            got = compare_reports(rep, reports[leader])
            value = got.get(metric)
            if value is not None:
                p[label][metric] = float(value["p"])
    return Significance(best=best, p=p)


def variance_figures(ctx: Any, min_count: int = 10) -> list[tuple[str, bytes]]:
    """(file name, PNG) of paper 000's variance figures on the train part: sigma against
    mean, and sigma / consistency per rating tier and genre (Fig. 4)."""
    from cinerec.stats.analysis import analyze
    from cinerec.stats.report import write_figures

    analysis = analyze(ctx.split.train, min_count=min_count)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_figures(analysis, tmp)
        wanted = ("tiers_genres.png", "sigma_vs_mean.png")
        return [(p.name, p.read_bytes()) for name in wanted for p in paths if p.name == name]
