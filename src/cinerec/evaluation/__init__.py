"""Evaluation: metrics (pure functions), the protocol that runs a model on a split, the
`Report` it returns, and significance tests. Rendering is in `cinerec.report`. See
docs/evaluation.md."""

from cinerec.evaluation.metrics import (
    EvaluationError,
    catalogue_coverage,
    mae,
    mean_metrics,
    r2,
    ranking_metrics,
    relevance_matrix,
    rmse,
    topk_from_scores,
)
from cinerec.evaluation.protocol import evaluate
from cinerec.evaluation.report import Report, metric_keys
from cinerec.evaluation.significance import bootstrap_rmse_diff, compare_reports, paired_test

__all__ = [
    "EvaluationError",
    "Report",
    "bootstrap_rmse_diff",
    "catalogue_coverage",
    "compare_reports",
    "evaluate",
    "mae",
    "mean_metrics",
    "metric_keys",
    "paired_test",
    "r2",
    "ranking_metrics",
    "relevance_matrix",
    "rmse",
    "topk_from_scores",
]
