"""Significance tests on known distributions and on two real evaluation Reports."""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.data.splits import Split
from cinerec.evaluation import EvaluationError, Report, evaluate
from cinerec.evaluation import significance as sig
from cinerec.evaluation.significance import bootstrap_rmse_diff, compare_reports, paired_test
from tests.evaluation.conftest import Oracle, RandomModel

FAST = {"progress": False, "latency_samples": 3}


def _sq(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    return rng.normal(0.0, scale, n) ** 2


def test_identical_errors_give_zero_difference():
    err = _sq(np.random.default_rng(0), 500, 1.0)
    res = bootstrap_rmse_diff(err, err.copy(), n_boot=300)
    assert res["diff"] == 0.0
    assert res["low"] <= 0.0 <= res["high"]
    assert res["p"] == 1.0


def test_clearly_different_errors_are_significant():
    rng = np.random.default_rng(1)
    a, b = _sq(rng, 2000, 0.8), _sq(rng, 2000, 1.0)
    res = bootstrap_rmse_diff(a, b, n_boot=500)
    assert res["diff"] == pytest.approx(np.sqrt(a.mean()) - np.sqrt(b.mean()))
    assert res["low"] < res["diff"] < res["high"] < 0.0  # CI excludes 0
    assert res["p"] < 0.01
    # Swapping the models flips the sign.
    swapped = bootstrap_rmse_diff(b, a, n_boot=500)
    assert swapped["diff"] == pytest.approx(-res["diff"]) and swapped["low"] > 0


def test_same_distribution_is_not_significant():
    # Two independent draws of the same error distribution (fixed seed).
    rng = np.random.default_rng(2)
    res = bootstrap_rmse_diff(_sq(rng, 1000, 1.0), _sq(rng, 1000, 1.0), n_boot=500)
    assert res["low"] < 0.0 < res["high"]
    assert res["p"] > 0.05


def test_bootstrap_is_seeded_and_chunk_independent(monkeypatch):
    rng = np.random.default_rng(3)
    a, b = _sq(rng, 300, 0.9), _sq(rng, 300, 1.0)
    one = bootstrap_rmse_diff(a, b, n_boot=101, seed=7)
    assert bootstrap_rmse_diff(a, b, n_boot=101, seed=7) == one
    # Resampling in chunks of 3 replicates must give the same replicates as one chunk.
    monkeypatch.setattr(sig, "_CHUNK_ELEMENTS", 300 * 3)
    assert bootstrap_rmse_diff(a, b, n_boot=101, seed=7) == pytest.approx(one)
    assert bootstrap_rmse_diff(a, b, n_boot=101, seed=8) != one


def test_bootstrap_rejects_bad_input():
    with pytest.raises(EvaluationError, match="same test rows"):
        bootstrap_rmse_diff(np.ones(3), np.ones(4))
    with pytest.raises(EvaluationError, match="squared errors"):
        bootstrap_rmse_diff(np.array([-1.0, 1.0]), np.ones(2))


@pytest.mark.parametrize("test", ["wilcoxon", "ttest"])
def test_paired_test_detects_shift(test):
    rng = np.random.default_rng(4)
    a = rng.uniform(0, 1, 300)
    shifted = paired_test(a, a + 0.05 + rng.normal(0, 0.05, 300), test=test)
    assert shifted["p"] < 1e-6 and shifted["mean_diff"] == pytest.approx(-0.05, abs=0.01)
    same = paired_test(a, a + rng.normal(0, 0.05, 300), test=test)
    assert same["p"] > 0.01
    assert paired_test(a, a.copy(), test=test) == {"stat": 0.0, "p": 1.0, "mean_diff": 0.0, "n": 300}


def test_paired_test_drops_nan_and_validates():
    res = paired_test(np.array([0.1, np.nan, 0.3, 0.5]), np.array([0.2, 0.1, np.nan, 0.4]))
    assert res["n"] == 2
    with pytest.raises(EvaluationError, match="unknown test"):
        paired_test(np.ones(3), np.zeros(3), test="anova")


def test_compare_reports(split: Split):
    good = evaluate(Oracle(split.test), split, **FAST)
    bad = evaluate(RandomModel(seed=3), split, **FAST)
    res = compare_reports(good, bad, n_boot=300)
    assert res["rmse"]["diff"] < 0 and res["rmse"]["high"] < 0
    assert res["ndcg@10"]["mean_diff"] > 0 and res["ndcg@10"]["p"] < 0.01
    assert set(res) == {"rmse", "ndcg@10", "precision@10", "recall@10", "f1@10", "hit@10", "map@10"}
    # Reports without arrays (JSON default) cannot be compared.
    with pytest.raises(EvaluationError, match="per-user"):
        compare_reports(Report.from_json(good.to_json()), bad)
    # ...but a JSON with arrays can.
    again = compare_reports(Report.from_json(good.to_json(arrays=True)), bad, n_boot=300)
    assert again["rmse"] == res["rmse"]
    other = Report.from_dict(bad.to_dict(arrays=True) | {"split": "temporal:0.2"})
    with pytest.raises(EvaluationError, match="same split"):
        compare_reports(good, other)
