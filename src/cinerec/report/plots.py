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
