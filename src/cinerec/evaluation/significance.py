"""Is model A really better than model B on this split? Paired tests on kept arrays.

- `bootstrap_rmse_diff`: paired bootstrap of RMSE(A) - RMSE(B) over the same test
  rows (rows are resampled together, so the shared difficulty of a row cancels);
- `paired_test`: Wilcoxon signed-rank or paired t-test on a per-user ranking metric;
- `compare_reports`: both, from two `Report`s of the same split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from cinerec.evaluation.metrics import EvaluationError

if TYPE_CHECKING:
    from cinerec.evaluation.report import Report

#: Upper bound on the resampled index matrix per chunk (elements), ~32 MB of int64.
_CHUNK_ELEMENTS = 4_000_000


def bootstrap_rmse_diff(
    err_a: np.ndarray,
    err_b: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, float]:
    """Paired bootstrap of ``RMSE(A) - RMSE(B)`` from per-row SQUARED errors.

    ``err_a[i]`` and ``err_b[i]`` must be ``(pred - true)**2`` of the two models on the
    same test row ``i`` (`Report.per_row["sq_err"]`). Returns ``diff`` (observed),
    ``low``/``high`` (percentile interval at level ``ci``) and ``p``: two-sided
    p-value of "no difference", from the bootstrap distribution shifted to the null
    (share of resampled differences at least as far from the observed one as the
    observed one is from 0; add-one smoothed so it is never exactly 0).
    """
    a = np.asarray(err_a, dtype=np.float64).ravel()
    b = np.asarray(err_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise EvaluationError(
            f"err_a has {a.size} rows and err_b {b.size}: both must be errors on the same test rows"
        )
    if a.size == 0:
        raise EvaluationError("err_a and err_b are empty: nothing to compare")
    if (a < 0).any() or (b < 0).any():
        raise EvaluationError("errors must be squared errors (pred - true)**2, got negative values")
    if not 0 < ci < 1:
        raise EvaluationError(f"ci must be in (0, 1), got {ci}")
    if n_boot < 1:
        raise EvaluationError(f"n_boot must be >= 1, got {n_boot}")
    n = a.size
    diff = float(np.sqrt(a.mean()) - np.sqrt(b.mean()))
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    # Resample indices in chunks of bootstrap replicates so memory stays bounded
    # for 100k+ test rows; each chunk is one vectorised gather + mean.
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for s in range(0, n_boot, chunk):
        m = min(chunk, n_boot - s)
        idx = rng.integers(0, n, size=(m, n))
        boots[s : s + m] = np.sqrt(a[idx].mean(axis=1)) - np.sqrt(b[idx].mean(axis=1))
    alpha = (1.0 - ci) / 2.0
    low, high = np.quantile(boots, [alpha, 1.0 - alpha])
    extreme = np.count_nonzero(np.abs(boots - diff) >= abs(diff) - 1e-15)
    p = (extreme + 1) / (n_boot + 1)
    return {"diff": diff, "low": float(low), "high": float(high), "p": float(min(p, 1.0))}


def paired_test(
    values_a: np.ndarray,
    values_b: np.ndarray,
    test: str = "wilcoxon",
) -> dict[str, float]:
    """Paired test on per-user values (e.g. NDCG@10 of models A and B per user).

    ``test`` is ``"wilcoxon"`` (signed-rank, no normality assumption; the default,
    since per-user NDCG is bounded and skewed) or ``"ttest"`` (paired t-test). Pairs
    where either value is NaN are dropped. Returns ``stat``, two-sided ``p`` and
    ``mean_diff`` (mean of A - B) and ``n`` (pairs used).
    """
    a = np.asarray(values_a, dtype=np.float64).ravel()
    b = np.asarray(values_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise EvaluationError(
            f"values_a has {a.size} values and values_b {b.size}: pass one value per user, same order"
        )
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size == 0:
        raise EvaluationError("no pair of non-NaN values to compare")
    d = a - b
    mean_diff = float(d.mean())
    if not np.any(d != 0):
        # Both tests are undefined on identical samples; there is no evidence of a difference.
        return {"stat": 0.0, "p": 1.0, "mean_diff": mean_diff, "n": int(a.size)}
    if test == "wilcoxon":
        res = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    elif test == "ttest":
        res = stats.ttest_rel(a, b, alternative="two-sided")
    else:
        raise EvaluationError(f"unknown test {test!r}; use 'wilcoxon' or 'ttest'")
    return {
        "stat": float(res.statistic),
        "p": float(res.pvalue),
        "mean_diff": mean_diff,
        "n": int(a.size),
    }


def compare_reports(
    report_a: Report,
    report_b: Report,
    test: str = "wilcoxon",
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, Any]:
    """Significance of A vs B from two Reports of the same split (arrays kept).

    Returns ``{"rmse": bootstrap result or None, "<metric>@K": paired_test result ...}``
    for ndcg, precision, recall, f1, hit and map, with users aligned by index.
    """
    if report_a.dataset != report_b.dataset or report_a.split != report_b.split:
        raise EvaluationError(
            f"reports come from different data ({report_a.dataset!r}/{report_a.split!r} vs "
            f"{report_b.dataset!r}/{report_b.split!r}): evaluate both models on the same split"
        )
    if report_a.k != report_b.k:
        raise EvaluationError(f"reports use different K ({report_a.k} vs {report_b.k})")
    if not (report_a.per_row or report_a.per_user) or not (report_b.per_row or report_b.per_user):
        raise EvaluationError(
            "a report has no per-user/per-row arrays (loaded from JSON without arrays?): "
            "use the Reports returned by evaluate(), or to_json(arrays=True)"
        )
    out: dict[str, Any] = {"rmse": None}
    ea, eb = report_a.per_row.get("sq_err"), report_b.per_row.get("sq_err")
    if ea is not None and eb is not None:
        if ea.shape != eb.shape:
            raise EvaluationError(
                "reports have different test rows: evaluate both on the same split"
            )
        out["rmse"] = bootstrap_rmse_diff(ea, eb, n_boot=n_boot, seed=seed, ci=ci)
    ua, ub = report_a.per_user.get("users"), report_b.per_user.get("users")
    if ua is not None and ub is not None and ua.size and ub.size:
        common, ia, ib = np.intersect1d(ua, ub, assume_unique=True, return_indices=True)
        for name, src in (
            ("ndcg", "ndcg"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "f1"),
            ("hit", "hit"),
            ("map", "ap"),
        ):
            if common.size:
                out[f"{name}@{report_a.k}"] = paired_test(
                    report_a.per_user[src][ia], report_b.per_user[src][ib], test=test
                )
    return out
