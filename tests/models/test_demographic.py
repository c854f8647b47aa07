"""The demographic model: cold users with known demographics get group rankings that
beat the damped item mean; explanations, fold-in, persistence and fallbacks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cinerec.artifacts import load_model, save_model
from cinerec.data import load_dataset
from cinerec.data.dataset import Dataset
from cinerec.data.synthetic import generate
from cinerec.errors import ConfigError
from cinerec.evaluation.metrics import (
    mean_metrics,
    ranking_metrics,
    relevance_matrix,
    rmse,
    topk_from_scores,
)
from cinerec.models.classic.demographic import Demographic, age_buckets
from cinerec.models.explain import GroupTaste
from cinerec.models.query import History, Query
from cinerec.models.registry import create_model

OFF = {"progress": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Dataset, np.ndarray]:
    """(train, test, cold users) on a generated ml-1m set: 20% of the users are held
    out entirely (zero training ratings, demographics known)."""
    path = generate(tmp_path_factory.mktemp("d") / "ml-1m", 150_000, 2_000, 1_000, seed=0, progress=False,
                    format="ml-1m")  # fmt: skip
    ds = load_dataset(path, cache=False, progress=False)
    cold = np.random.default_rng(0).random(ds.n_users) < 0.2
    return ds.subset(~cold[ds.users]), ds.subset(cold[ds.users]), np.flatnonzero(cold)


@pytest.fixture(scope="module")
def model(data) -> Demographic:
    return create_model("demographic").fit(data[0], options=OFF)


def _metrics(m, test: Dataset, users: np.ndarray) -> tuple[float, float]:
    rel = relevance_matrix(test.users, test.items, test.ratings, test.n_users, test.n_items, 4.0)[users]
    ndcg = mean_metrics(ranking_metrics(topk_from_scores(m.score(users), 10), rel, 10))["ndcg"]
    return rmse(test.ratings, m.predict(test.users, test.items)), ndcg


def test_cold_users_beat_the_damped_item_mean(data, model: Demographic) -> None:
    train, test, users = data
    assert (train.user_counts[users] == 0).all()
    demo = _metrics(model, test, users)
    for name in ("bias", "popular"):  # both give a cold user the damped item mean
        base = _metrics(create_model(name).fit(train, options=OFF), test, users)
        assert demo[0] < base[0] - 0.005, (name, demo, base)  # measured 1.0408 vs 1.0515
        assert demo[1] > base[1] + 0.02, (name, demo, base)  # measured 0.403 vs 0.357


def test_cold_user_gets_a_group_list_with_group_explanations(data, model: Demographic) -> None:
    train, _, users = data
    meta = train.users_meta
    young_man = next(u for u in users if meta.row(int(u), named=True)["age"] == 18
                     and meta.row(int(u), named=True)["gender"] == "M")  # fmt: skip
    old_woman = next(u for u in users if meta.row(int(u), named=True)["age"] == 56
                     and meta.row(int(u), named=True)["gender"] == "F")  # fmt: skip
    a, b = model.recommend(int(young_man), k=10), model.recommend(int(old_woman), k=10)
    assert a.basis == "model" and a.fallback is None
    assert not np.array_equal(a.items, b.items)
    why = a.explanations[0]
    assert isinstance(why, GroupTaste) and why.group == "18-24, M" and why.user_bias is None
    text = why.to_text(model.catalogue)
    assert text.startswith("people like you (18-24, M) rate it ") and "ratings)" in text
    d = why.to_dict(model.catalogue)
    assert d["kind"] == "group_taste" and d["n_ratings"] == why.n_ratings
    json.dumps(d)
    assert abs(why.mean_rating - float(a.predicted_ratings[0])) < 1e-4
    warm = int(np.flatnonzero(train.user_counts > 0)[0])
    assert model.explain(warm, int(a.items[0])).user_bias == pytest.approx(float(model.user_bias_[warm]))


def test_group_scores_are_shrunk_item_means(data, model: Demographic) -> None:
    train = data[0]
    g = model.user_group_[train.users]
    item = int(np.argmax(train.item_counts))
    grp = int(np.bincount(g[g >= 0]).argmax())
    rows = (g == grp) & (train.items == item)
    m_i, b_g, d = float(model.item_baseline_[item]), float(model.group_bias_[grp]), model.config.damping
    want = m_i + b_g + (train.ratings[rows] - m_i - b_g).sum() / (rows.sum() + d)
    assert model._pair_scores(np.array([grp]), np.array([item]))[0] == pytest.approx(want, abs=1e-4)
    # Heavy damping leaves the overall damped item mean plus a group offset per user.
    stiff = create_model("demographic", {"damping": 1e5}).fit(train, options=OFF)
    rated = train.item_counts > 0
    gap = stiff.score(np.array(data[2][:5]))[:, rated] - model.item_baseline_[rated]
    assert gap.std(axis=1).max() < 1e-3


def test_save_load_round_trip(data, tmp_path: Path) -> None:
    train, test, users = data
    m = create_model("demographic", {"attributes": ["age", "gender", "occupation"]}).fit(train, options=OFF)
    save_model(m, tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert isinstance(back, Demographic) and back.config == m.config
    assert back.occupations_ == m.occupations_ and len(m.occupations_) > 10
    np.testing.assert_array_equal(back.predict(test.users, test.items), m.predict(test.users, test.items))
    np.testing.assert_array_equal(back.score(users[:20]), m.score(users[:20]))
    u = int(users[0])
    assert np.array_equal(back.recommend(u, k=5).items, m.recommend(u, k=5).items)
    assert back.explain(u, 3).to_text() == m.explain(u, 3).to_text()
    assert back.group_label(int(m.user_group_[u])).count(",") == 2


def _with_meta(ds: Dataset, meta: pl.DataFrame | None) -> Dataset:
    return replace(ds, users_meta=meta)


def test_unknown_demographics_fall_back_to_the_item_mean(data) -> None:
    train, test, users = data
    cold_unknown, cold_known = int(users[0]), int(users[1])
    warm = int(np.flatnonzero(train.user_counts > 0)[0])
    meta = train.users_meta.with_columns(
        pl.when(pl.col("user").is_in([cold_unknown, warm])).then(None).otherwise(pl.col("gender")).alias("gender")
    )
    m = create_model("demographic").fit(_with_meta(train, meta), options=OFF)
    items = np.arange(50)
    # Cold and unknown: the declared fallback (damped item mean), explained.
    np.testing.assert_allclose(m.predict(np.full(50, cold_unknown), items), m.item_baseline_[items], rtol=1e-6)
    rec = m.recommend(cold_unknown, k=5)
    assert rec.basis == "fallback" and "no known age x gender" in rec.fallback.reason
    assert m.fallback_kind(np.array([cold_unknown, cold_known]), np.array([1, 1])).tolist() == [1, 0]
    # Warm and unknown: item mean plus their own bias, explained as "everyone".
    np.testing.assert_allclose(m.predict(np.full(50, warm), items),
                               np.clip(m.item_baseline_[items] + m.user_bias_[warm], 1, 5), rtol=1e-5)  # fmt: skip
    why = m.explain(warm, 1)
    assert why.group == "" and why.to_text().startswith("no demographics known: everyone rates it")
    # A value the model never saw (another gender code) is unknown too.
    odd = meta.with_columns(pl.when(pl.col("user") == cold_known).then(pl.lit("X")).otherwise(pl.col("gender")).alias("gender"))
    assert create_model("demographic").fit(_with_meta(train, odd), options=OFF).user_group_[cold_known] == -1


def test_without_users_meta_it_is_item_mean_plus_user_bias(data) -> None:
    train, _, users = data
    m = create_model("demographic").fit(_with_meta(train, None), options=OFF)
    assert m.group_keys_.shape[0] == 0 and (m.user_group_ == -1).all()
    warm = np.flatnonzero(train.user_counts > 0)[:3]
    u = train.users[np.isin(train.users, warm)]
    i = train.items[np.isin(train.users, warm)]
    bias = np.bincount(u, train.ratings[np.isin(train.users, warm)] - m.item_baseline_[i], train.n_users)[warm]
    bias /= train.user_counts[warm] + m.config.user_damping
    np.testing.assert_allclose(m.user_bias_[warm], bias, rtol=1e-4)
    assert m.recommend(int(users[0]), k=3).basis == "fallback"


def test_fold_in(data, model: Demographic) -> None:
    train, _, users = data
    h = History(np.array([1, 2, 3, 5, 8]), np.array([5.0, 5.0, 4.0, 5.0, 5.0], dtype=np.float32))
    rec = model.recommend(Query(history=h), k=10)
    assert rec.basis == "fold-in" and not np.isin(rec.items, h.items).any()
    bias = float((h.ratings - model.item_baseline_[h.items]).sum() / (len(h) + model.config.user_damping))
    assert bias > 0 and rec.explanations[0].group == "" and rec.explanations[0].user_bias == pytest.approx(bias)
    want = np.clip(model.item_baseline_[rec.items] + bias, 1, 5)
    np.testing.assert_allclose(rec.predicted_ratings, want, rtol=1e-5)
    # A known cold user's first ratings keep their group.
    u = int(users[0])
    mine = model.recommend(Query(user=u, history=h), k=10)
    assert mine.basis == "fold-in" and mine.explanations[0].group == model.group_label(int(model.user_group_[u]))


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        create_model("demographic", {"attributes": ["age", "age"]})
    with pytest.raises(ConfigError):
        create_model("demographic", {"attributes": ["zip"]})
    with pytest.raises(ConfigError):
        create_model("demographic", {"damping": -1})


def test_age_buckets_take_years_and_ml1m_codes() -> None:
    years = np.array([7, 17, 18, 24, 25, 44, 45, 49, 50, 55, 56, 80, 0, np.nan])
    assert age_buckets(years).tolist() == [0, 0, 1, 1, 2, 3, 4, 4, 5, 5, 6, 6, -1, -1]
    assert age_buckets(np.array([1, 18, 25, 35, 45, 50, 56])).tolist() == list(range(7))
