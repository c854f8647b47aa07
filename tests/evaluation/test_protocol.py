"""`evaluate` on a tiny split with tiny real Recommender subclasses (see conftest)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from cinerec.data.splits import Split
from cinerec.evaluation import EvaluationError, Report, evaluate, metric_keys
from cinerec.evaluation.metrics import relevance_matrix
from cinerec.report import report_markdown, to_csv
from tests.evaluation.conftest import Memorizer, Oracle, RandomModel, RankOnly

FAST = {"progress": False, "latency_samples": 5}

EXACT_KEYS = [
    "rmse", "mae", "r2", "rmse_warm", "mae_warm", "r2_warm", "rmse_cold_item", "mae_cold_item", "r2_cold_item",
    "precision@10", "recall@10", "f1@10", "ndcg@10", "hit@10", "map@10", "coverage@10",
    "fit_s", "predict_per_s", "topk_p50_ms", "topk_p99_ms", "model_bytes",
    "n_test", "n_test_cold_user", "n_test_cold_item", "n_rank_users",
]  # fmt: skip


@pytest.fixture
def oracle_report(split: Split) -> Report:
    return evaluate(Oracle(split.test), split, **FAST)


def test_metric_keys_are_exact(oracle_report: Report, split: Split):
    assert list(oracle_report.metrics) == EXACT_KEYS == metric_keys(10)
    assert all(oracle_report.metrics[key] is not None for key in EXACT_KEYS if not key.endswith("_cold_item"))
    # No test movie lacks train ratings here: the cold-item slice is empty, not zero.
    assert not (split.cold_item_rows & ~split.cold_user_rows).any()
    assert oracle_report.metrics["rmse_cold_item"] is None


def test_oracle_beats_random(split: Split, oracle_report: Report):
    rand = evaluate(RandomModel(seed=1), split, **FAST)
    o, r = oracle_report.metrics, rand.metrics
    assert o["ndcg@10"] > 0.9 > r["ndcg@10"]
    for key in ("precision@10", "recall@10", "f1@10", "hit@10", "map@10"):
        assert o[key] > r[key], key
    assert o["rmse"] < r["rmse"] and o["r2"] > r["r2"]
    # The oracle is exact on warm rows; cold rows go through the fallback.
    assert o["rmse_warm"] == 0.0 and o["rmse"] > 0.0


def test_cold_rows_counted(split: Split, oracle_report: Report):
    test = split.test
    cold_users = np.flatnonzero(split.train.user_counts == 0)
    assert {0, 1, 2, 3} <= set(cold_users.tolist())
    m = oracle_report.metrics
    assert m["n_test"] == test.n_ratings
    assert m["n_test_cold_user"] == int(np.isin(test.users, cold_users).sum()) > 0
    cold_items = np.flatnonzero(split.train.item_counts == 0)
    assert m["n_test_cold_item"] == int(np.isin(test.items, cold_items).sum())
    fb = oracle_report.info["fallback"]
    assert sum(fb.values()) == test.n_ratings
    assert fb["cold user: item baseline"] + fb["both cold: global mean"] == m["n_test_cold_user"]
    assert oracle_report.info["n_test_warm"] == int(split.warm_rows.sum())
    # Warm metrics are over warm rows only: recompute RMSE from the kept squared errors.
    sq = oracle_report.per_row["sq_err"]
    assert m["rmse"] == pytest.approx(np.sqrt(sq.mean()))
    assert m["rmse_warm"] == pytest.approx(np.sqrt(sq[split.warm_rows].mean()))


def test_ranked_users_have_relevant_items(split: Split, oracle_report: Report):
    test = split.test
    rel = relevance_matrix(test.users, test.items, test.ratings, test.n_users, test.n_items, 4.0)
    expected = np.flatnonzero(np.asarray(rel.sum(axis=1)).ravel() > 0)
    assert np.array_equal(oracle_report.per_user["users"], expected)
    assert oracle_report.metrics["n_rank_users"] == expected.size < test.n_active_users
    # A stricter threshold evaluates fewer users.
    strict = evaluate(Oracle(split.test), split, threshold=5.0, metrics=["ranking"], **FAST)
    assert strict.metrics["n_rank_users"] < expected.size
    # No relevant item at all: nothing to rank, metrics are missing rather than 0.
    none = evaluate(Oracle(split.test), split, threshold=6.0, metrics=["ranking"], **FAST)
    assert none.metrics["n_rank_users"] == 0
    assert none.metrics["ndcg@10"] is None and none.metrics["coverage@10"] is None


def test_train_items_are_masked(split: Split, oracle_report: Report):
    mem = evaluate(Memorizer(split.test), split, metrics=["ranking"], **FAST)
    for key in ("ndcg@10", "precision@10", "map@10", "coverage@10"):
        assert mem.metrics[key] == pytest.approx(oracle_report.metrics[key]), key


def test_batching_does_not_change_results(split: Split, oracle_report: Report):
    small = evaluate(Oracle(split.test), split, batch_users=7, metrics=["ranking"], **FAST)
    for key in ("ndcg", "precision", "recall", "ap"):
        np.testing.assert_array_equal(small.per_user[key], oracle_report.per_user[key])


def test_metric_selection_and_fit_flag(split: Split):
    model = Oracle(split.test).fit(split.train)
    rep = evaluate(model, split, metrics=["ndcg", "rmse"], fit=False, **FAST)
    assert rep.metrics["ndcg@10"] is not None and rep.metrics["rmse"] is not None
    assert rep.metrics["precision@10"] is None and rep.metrics["fit_s"] is None
    assert rep.metrics["mae"] is None
    with pytest.raises(EvaluationError, match="unknown metric 'ndgc'"):
        evaluate(model, split, metrics=["ndgc"], fit=False, **FAST)
    with pytest.raises(EvaluationError, match="not fitted"):
        evaluate(Oracle(split.test), split, fit=False, **FAST)


def test_ranking_only_model_has_no_rating_metrics(split: Split):
    rep = evaluate(RankOnly(), split, k=5, **FAST)
    assert rep.metrics["rmse"] is None and rep.metrics["rmse_warm"] is None
    assert rep.metrics["ndcg@5"] is not None and "ndcg@10" not in rep.metrics
    assert "sq_err" not in rep.per_row


def test_efficiency_figures(split: Split, oracle_report: Report):
    m = oracle_report.metrics
    assert m["fit_s"] >= 0 and m["predict_per_s"] > 0
    assert 0 < m["topk_p50_ms"] <= m["topk_p99_ms"]
    model = Oracle(split.test).fit(split.train)
    assert m["model_bytes"] == sum(v.nbytes for v in model.state().values())
    assert 0 < m["coverage@10"] <= 1


def test_serialisation_round_trips(oracle_report: Report):
    back = Report.from_json(oracle_report.to_json())
    assert back.metrics == pytest.approx(oracle_report.metrics)
    assert back.model == "oracle" and back.k == 10 and back.per_user == {}
    assert "per_user" not in json.loads(oracle_report.to_json())  # arrays not by default
    full = Report.from_json(oracle_report.to_json(arrays=True))
    for key, v in oracle_report.per_user.items():
        np.testing.assert_array_equal(full.per_user[key], v)
    np.testing.assert_array_equal(full.per_row["warm"], oracle_report.per_row["warm"])
    assert Report.from_dict(oracle_report.to_dict()).metrics == back.metrics

    rows = list(csv.DictReader(io.StringIO(to_csv([oracle_report]))))
    assert len(rows) == 1 and rows[0]["model"] == "oracle"
    for key in EXACT_KEYS:
        want = oracle_report.metrics[key]
        assert (rows[0][key] == "") if want is None else float(rows[0][key]) == pytest.approx(want), key

    md = report_markdown(oracle_report)
    assert "oracle" in md and all(f"| {key} |" in md for key in EXACT_KEYS)
    assert f"seed {oracle_report.seed})" in md


def test_report_carries_the_split_seed_not_the_latency_seed(split: Split):
    rep = evaluate(Oracle(split.test), split, metrics=["rating", "efficiency"], latency_seed=7, **FAST)
    assert rep.seed == split.seed and rep.info["latency_seed"] == 7


def test_empty_test_set_is_an_error(split: Split):
    empty = Split(train=split.train, test=split.test.subset(np.zeros(split.test.n_ratings, bool)))
    with pytest.raises(EvaluationError, match="empty"):
        evaluate(RandomModel(), empty, **FAST)
