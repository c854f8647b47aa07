"""Plots of evaluation reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cinerec._util import fs
from cinerec.evaluation.metrics import EvaluationError
from cinerec.evaluation.report import Report


def bar_chart(reports: Sequence[Report], metric: str, path: str | Path) -> Path:
    """Bar chart of one metric across models, written to ``path`` (png/svg/pdf).

    Models without a value for ``metric`` are shown with an empty bar and "n/a".
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not reports:
        raise EvaluationError("no reports to plot: evaluate at least one model")
    if not any(metric in r.metrics for r in reports):
        known = ", ".join(reports[0].metrics)
        raise EvaluationError(f"no report has metric {metric!r}; known metrics: {known}")
    names = [r.model for r in reports]
    vals = [r.metrics.get(metric) for r in reports]
    heights = [float(v) if v is not None else 0.0 for v in vals]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names)), 3.5))
    bars = ax.bar(names, heights, color="#4c72b0")
    for bar, v in zip(bars, vals, strict=True):
        label = "n/a" if v is None else f"{float(v):.3g}"
        ax.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    r0 = reports[0]
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} · {r0.dataset} · {r0.split or 'split'}")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with fs.atomic_file(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path


def plot_cold_start_curve(rows: Sequence[dict], path: str | Path) -> Path:
    """NDCG@K and RMSE against the number of known ratings N, a line per model
    (`cinerec.evaluation.coldstart.cold_start_curve` rows), written to ``path``.

    A hollow marker is a point where most new users got the fallback, not a
    personal answer; models without RMSE (ranking-only) are left out of that panel.
    """
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global figure state to close

    if not rows:
        raise EvaluationError("no cold-start rows to plot: run cold_start_curve first")
    ndcg_key = next((key for key in rows[0] if key.startswith("ndcg@")), None)
    if ndcg_key is None or "N" not in rows[0]:
        raise EvaluationError("the rows lack N or ndcg@K: pass cold_start_curve's rows")
    fig = Figure(figsize=(9.0, 3.6))
    axes = fig.subplots(1, 2)
    palette = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, name in enumerate(dict.fromkeys(r["model"] for r in rows)):
        color = palette[j % len(palette)]  # one colour per model in both panels
        own = sorted((r for r in rows if r["model"] == name), key=lambda r: r["N"])
        ns = [r["N"] for r in own]
        fallback = [r["basis"].get("fallback", 0) * 2 > sum(r["basis"].values()) for r in own]
        for ax, key in ((axes[0], ndcg_key), (axes[1], "rmse")):
            ys = [r.get(key) for r in own]
            if all(y is None for y in ys):
                continue
            ys = [float("nan") if y is None else float(y) for y in ys]
            ax.plot(ns, ys, label=name, linewidth=1.4, color=color)
            ax.scatter(ns, ys, s=22, zorder=3, edgecolors=color,
                       facecolors=["none" if f else color for f in fallback])
    for ax, label in ((axes[0], ndcg_key.upper()), (axes[1], "RMSE (targets)")):
        ax.set_xlabel("known ratings N")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for ax in axes:
        if ax.has_data():
            ax.legend(fontsize=8)
    axes[0].set_title(f"{ndcg_key} of new users", fontsize=10)
    axes[1].set_title("rating error of new users", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with fs.atomic_file(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png")
    return out
