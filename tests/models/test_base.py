"""The Recommender contract shared by every model: fallbacks, the Query API, options."""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.errors import ConfigError, NotFittedError, UnknownModel
from cinerec.models import registry
from cinerec.models.base import ModelConfig, Recommender
from cinerec.models.explain import Fallback, Popularity
from cinerec.models.query import History, Query
from cinerec.models.registry import create_model, model_class
from tests.conftest import make_ratings_dataset


class _ItemMeanConfig(ModelConfig):
    shift: float = 0.0


class ItemMean(Recommender):
    """A real (if simple) model: each item's train mean plus a configurable shift."""

    name = "test-item-mean"
    Config = _ItemMeanConfig

    def _fit(self, train, valid):
        s = np.bincount(train.items, weights=train.ratings, minlength=train.n_items)
        self.means = (s / np.maximum(train.item_counts, 1) + self.config.shift).astype(np.float32)

    def _predict(self, users, items):
        return self.means[items].astype(np.float64)

    def _score(self, users):
        return np.tile(self.means, (len(users), 1))

    def _state(self):
        return {"means": self.means}

    def _load_state(self, arrays, tables):
        self.means = arrays["means"]


@pytest.fixture(autouse=True)
def _registered():
    registry.register(ItemMean.name, f"{__name__}:ItemMean")
    yield
    registry._REGISTRY.pop(ItemMean.name, None)


def _fitted(ds=None):
    ds = ds or make_ratings_dataset(seed=1)
    train = ds.subset(ds.users != 0)  # user 0 is cold in train
    return ItemMean().fit(train), train, ds


def test_unknown_names_and_bad_config_are_clear():
    with pytest.raises(UnknownModel, match="available"):
        model_class("no-such-model")
    with pytest.raises(ConfigError, match="shift"):
        create_model(ItemMean.name, {"shift": "a lot"})
    with pytest.raises(ConfigError, match="unexpected|extra|not permitted"):
        create_model(ItemMean.name, {"no_such_param": 1})
    with pytest.raises(ConfigError, match="finite"):
        create_model(ItemMean.name, {"shift": float("nan")})
    with pytest.raises(ConfigError, match="run option"):
        create_model(ItemMean.name, {"device": "cpu"})
    with pytest.raises(ConfigError, match="mapping"):
        create_model(ItemMean.name, [1, 2])  # type: ignore[arg-type]


def test_surprise_names_are_accepted_aliases():
    svd = create_model("svd", n_epochs=3, lr_all=0.02, reg_all=0.1, init_std_dev=0.1)
    assert (svd.config.epochs, svd.config.lr, svd.config.reg, svd.config.init_std) == (3, 0.02, 0.1, 0.1)
    assert "n_epochs" not in svd.config.model_dump()
    assert create_model("als", n_iter=4).config.epochs == 4
    assert create_model("ncf", embedding_dim=16).config.n_factors == 16


def test_use_before_fit_raises():
    with pytest.raises(NotFittedError):
        ItemMean().predict(np.array([0]), np.array([0]))


def test_cold_and_unknown_pairs_use_the_declared_fallback():
    model, train, _ = _fitted()
    users = np.array([1, 0, -1, 10_000, 1])
    items = np.array([3, 3, 3, 3, -1])
    pred = model.predict(users, items)
    assert pred[0] == pytest.approx(model.means[3])
    # cold / unknown user -> damped item mean; unknown item -> damped user mean
    assert pred[1] == pytest.approx(model.item_baseline_[3])
    assert pred[2] == pytest.approx(model.item_baseline_[3])
    assert pred[3] == pytest.approx(model.item_baseline_[3])
    assert pred[4] == pytest.approx(model.user_baseline_[1])
    assert model.fallback_kind(users, items).tolist() == [0, 1, 1, 1, 2]


def test_predictions_are_clipped_to_the_rating_scale():
    ds = make_ratings_dataset(seed=2)
    model = ItemMean(shift=10.0).fit(ds)
    assert model.predict(ds.users[:50], ds.items[:50]).max() == pytest.approx(5.0)


def test_recommend_excludes_seen_and_sorts():
    model, train, _ = _fitted()
    recs = model.recommend(1, k=5)
    seen = set(model.seen_items(1).tolist())
    assert len(recs) == 5 and not seen & set(recs.items.tolist())
    assert np.all(np.diff(recs.scores) <= 0)
    assert recs.fallback is None and recs.basis == "model"
    assert np.all((recs.confidence >= 0) & (recs.confidence <= 1))


def test_unknown_user_gets_an_explained_fallback():
    model, _, ds = _fitted()
    for user, reason in ((0, "no training ratings"), (-1, "unknown user"), (None, "no user and no history")):
        recs = model.recommend(user, k=3)
        assert recs.basis == "fallback" and isinstance(recs.fallback, Fallback)
        assert reason in recs.fallback.reason and "damped item mean" in recs.fallback.to_text()
        assert recs.items.tolist() == np.argsort(-model.item_baseline_)[:3].tolist()
        assert all(isinstance(e, Popularity) for e in recs.explanations)
        assert recs.to_dict(ds)["fallback"]["kind"] == "fallback"


def test_a_model_without_fold_in_says_so_for_a_history():
    model, _, _ = _fitted()
    h = History(np.array([3, 4]), np.array([5.0, 4.0]))
    recs = model.recommend(Query(history=h), k=4)
    assert recs.basis == "fallback" and "cannot fold" in recs.fallback.reason
    assert not np.isin(recs.items, [3, 4]).any()  # what the visitor rated is not proposed
    # a known user with new ratings still gets the model's own list, minus what they rated
    known = model.recommend(Query(user=1, history=h), k=4)
    assert known.basis == "model" and not np.isin(known.items, [3, 4]).any()


def test_candidates_and_exclusions():
    model, train, _ = _fitted()
    cands = np.array([2, 5, 7, 9])
    recs = model.recommend(1, k=10, candidates=cands, exclude=[5], exclude_seen=False)
    assert set(recs.items.tolist()) == {2, 7, 9}
    order = np.argsort(-model.means[[2, 7, 9]], kind="stable")
    assert recs.items.tolist() == np.array([2, 7, 9])[order].tolist()
    with pytest.raises(ConfigError, match="outside the catalogue"):
        model.recommend(1, candidates=[train.n_items + 5])


def test_history_is_validated():
    model, train, _ = _fitted()
    with pytest.raises(ConfigError, match="one rating per item"):
        History(np.array([1, 2]), np.array([4.0]))
    with pytest.raises(ConfigError, match="finite"):
        History(np.array([1]), np.array([np.nan]))
    with pytest.raises(ConfigError, match="rating scale"):
        model.recommend(Query(history=History(np.array([1]), np.array([7.0]))))
    with pytest.raises(ConfigError, match="not in the catalogue"):
        model.recommend(Query(history=History(np.array([train.n_items]), np.array([4.0]))))
    h = History(np.array([3, 4, 3]), np.array([1.0, 2.0, 5.0]))  # the latest rating of 3 wins
    assert h.items.tolist() == [4, 3] and h.ratings.tolist() == [2.0, 5.0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e308, -1.0, "x"])
def test_numeric_options_are_validated(bad):
    model, _, _ = _fitted()
    with pytest.raises(ConfigError, match="risk_aversion"):
        model.recommend(1, risk_aversion=bad)


@pytest.mark.parametrize("k", [0, -3, 2.5, float("nan")])
def test_k_is_validated(k):
    model, _, _ = _fitted()
    with pytest.raises(ConfigError, match="k must"):
        model.recommend(1, k=k)


def test_risk_aversion_demotes_high_variance_items():
    model, _, _ = _fitted()
    plain = model.recommend(1, k=model.n_items_, exclude_seen=False)
    averse = model.recommend(1, k=model.n_items_, exclude_seen=False, risk_aversion=5.0)
    # with a large lambda the order follows score - lambda*sigma, not score
    expected = np.argsort(-(model.means - 5.0 * model.item_sigma_), kind="stable")
    assert averse.items.tolist() == expected.tolist()
    assert plain.items.tolist() != averse.items.tolist()


def test_recommend_batch_handles_mixed_queries():
    model, train, _ = _fitted()
    h = History(np.array([3]), np.array([4.0]))
    out = model.recommend_batch([1, Query(user=2), Query(history=h), -1], k=3)
    assert [r.basis for r in out] == ["model", "model", "fallback", "fallback"]
    assert out[0].items.tolist() == model.recommend(1, k=3).items.tolist()


def test_fit_refuses_non_finite_ratings_and_bad_options():
    ds = make_ratings_dataset(seed=3)
    bad = ds.subset(np.arange(ds.n_ratings))
    ratings = bad.ratings.copy()
    ratings[0] = np.nan
    from dataclasses import replace

    with pytest.raises(ConfigError, match="NaN"):
        ItemMean().fit(replace(bad, ratings=ratings))
    with pytest.raises(ConfigError, match="device"):
        ItemMean().fit(ds, options={"device": "gpu"})
