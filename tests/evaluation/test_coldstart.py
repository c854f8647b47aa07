"""The "first N ratings known" cold-start protocol (cinerec.evaluation.coldstart)."""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.data.dataset import Dataset, IdMap
from cinerec.evaluation.coldstart import cold_start_curve, cold_start_split
from cinerec.evaluation.metrics import EvaluationError
from cinerec.models.registry import create_model
from cinerec.report.plots import plot_cold_start_curve

QUIET = {"progress": False}


def two_tastes(n_users: int = 200, n_items: int = 100, seed: int = 0) -> Dataset:
    """Even users love the first half of the catalogue, odd users the second; people
    rate what they love more often. The item means are alike across halves, so the
    fallback (one list for all) cannot tell the groups apart; 20 ratings can."""
    rng = np.random.default_rng(seed)
    u, i = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    u, i = u.ravel(), i.ravel()
    love = (u % 2) == (i < n_items // 2)
    rated = rng.random(u.size) < np.where(love, 0.45, 0.15)
    base = np.where(love, 4.5, 2.0) + rng.normal(0, 0.4, u.size)
    r = np.clip(np.round(base * 2) / 2, 0.5, 5.0)[rated]
    ts = rng.integers(0, 1000, int(rated.sum()))  # few distinct times: many ties
    return Dataset(
        name="two-tastes", users=u[rated], items=i[rated], ratings=r, timestamps=ts,
        user_ids=IdMap(np.arange(n_users) + 1), item_ids=IdMap(np.arange(n_items) + 100),
    )  # fmt: skip


@pytest.fixture(scope="module")
def cs():
    return cold_start_split(two_tastes(), user_frac=0.3, seed=1)


@pytest.fixture(scope="module")
def knn(cs):
    return create_model("item-knn").fit(cs.train, options=QUIET)


@pytest.fixture(scope="module")
def knn_rows(cs, knn):
    return cold_start_curve(knn, cs)


def test_split_hides_every_rating_of_the_new_users(cs):
    ds = two_tastes()
    assert cs.n_users == round(0.3 * (ds.user_counts >= 25).sum())
    assert (ds.user_counts[cs.users] >= 25).all()
    assert (cs.train.user_counts[cs.users] == 0).all()
    assert cs.train.n_ratings + cs.ratings.n_ratings == ds.n_ratings
    assert cs.train.user_ids == ds.user_ids and cs.train.item_ids == ds.item_ids
    again = cold_start_split(ds, user_frac=0.3, seed=1)
    other = cold_start_split(ds, user_frac=0.3, seed=2)
    assert np.array_equal(again.users, cs.users) and not np.array_equal(other.users, cs.users)


def test_ratings_are_ordered_by_time_then_row():
    ds = two_tastes()
    cs = cold_start_split(ds, user_frac=0.3, seed=1)
    r = cs.ratings
    for j, u in enumerate(cs.users[:10]):
        s, e = cs.indptr[j], cs.indptr[j + 1]
        assert (r.users[s:e] == u).all()
        rows = np.flatnonzero(ds.users == u)
        expect = rows[np.lexsort((rows, ds.timestamps[rows]))]  # time, then row position
        assert np.array_equal(r.items[s:e], ds.items[expect])
        assert np.array_equal(r.timestamps[s:e], ds.timestamps[expect])


def test_targets_follow_the_first_max_known_ratings(cs):
    t = cs.targets
    assert t.n_ratings == int((np.diff(cs.indptr) - 20).sum())
    known = cs.known(20)
    for j, h in enumerate(known[:10]):
        assert len(h) == 20
        assert np.array_equal(cs.known(5)[j].items, h.items[:5])
        own = t.items[t.users == cs.users[j]]
        assert not np.isin(own, h.items).any()


def test_targets_are_the_same_for_every_n(cs, knn):
    seen: dict[int, list] = {}
    original = knn.recommend_batch

    def spy(queries, k, explain=True):
        if queries[0].candidates is not None:
            n = 0 if queries[0].history is None else len(queries[0].history)
            seen[n] = [np.sort(q.candidates) for q in queries]
        return original(queries, k, explain=explain)

    knn.recommend_batch = spy
    try:
        rows = cold_start_curve(knn, cs, ns=(0, 3, 20))
    finally:
        del knn.recommend_batch
    assert sorted(seen) == [0, 3, 20]
    for n in (3, 20):
        assert all(np.array_equal(a, b) for a, b in zip(seen[0], seen[n], strict=True))
    assert len({r["n_users"] for r in rows}) == 1 and len({r["n_rmse"] for r in rows}) == 1


def test_fold_in_beats_the_fallback(cs, knn_rows):
    by_n = {r["N"]: r for r in knn_rows}
    assert [r["N"] for r in knn_rows] == [0, 1, 3, 5, 10, 20]
    assert by_n[0]["basis"] == {"fallback": cs.n_users}
    assert by_n[20]["basis"] == {"fold-in": cs.n_users}
    assert by_n[20]["ndcg@10"] > by_n[0]["ndcg@10"] + 0.1
    assert by_n[20]["hr@10"] >= by_n[0]["hr@10"]
    assert by_n[20]["rmse"] < by_n[0]["rmse"] - 0.3


def test_ranking_model_folds_in_without_rmse(cs):
    ease = create_model("ease").fit(cs.train, options=QUIET)
    rows = cold_start_curve(ease, cs, ns=(0, 20))
    assert rows[0]["basis"] == {"fallback": cs.n_users}
    assert rows[1]["ndcg@10"] > rows[0]["ndcg@10"] + 0.1
    assert all(r["rmse"] is None and r["n_rmse"] == 0 for r in rows)


def test_bad_arguments_are_refused(cs, knn):
    ds = two_tastes()
    with pytest.raises(EvaluationError, match="max_known=20"):
        cold_start_curve(knn, cs, ns=(0, 25))
    with pytest.raises(EvaluationError, match="ns is empty"):
        cold_start_curve(knn, cs, ns=())
    with pytest.raises(EvaluationError, match="k must be"):
        cold_start_curve(knn, cs, k=0)
    with pytest.raises(EvaluationError, match="user_frac"):
        cold_start_split(ds, user_frac=0.0)
    with pytest.raises(EvaluationError, match="no user"):
        cold_start_split(ds, min_ratings=10_000)
    with pytest.raises(EvaluationError, match="no target"):
        cold_start_split(ds, min_ratings=20)
    with pytest.raises(EvaluationError, match="not fitted"):
        cold_start_curve(create_model("item-knn"), cs)
    on_all = create_model("popular").fit(ds, options=QUIET)
    with pytest.raises(EvaluationError, match="training ratings of the new users"):
        cold_start_curve(on_all, cs)


def test_plot_writes_a_png(tmp_path, knn_rows):
    path = plot_cold_start_curve(knn_rows, tmp_path / "fig" / "cold.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(EvaluationError, match="no cold-start rows"):
        plot_cold_start_curve([], tmp_path / "x.png")
