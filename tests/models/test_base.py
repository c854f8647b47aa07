"""The Recommender contract shared by every model: fallbacks, recommend, artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cinerec.errors import ArtifactError, ConfigError, NotFittedError, UnknownModel
from cinerec.models import base
from cinerec.models.base import ModelConfig, Recommender, create_model, model_class
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

    def _load_state(self, arrays):
        self.means = arrays["means"]


@pytest.fixture(autouse=True)
def _registered():
    base.register(ItemMean.name, f"{__name__}:ItemMean")
    yield
    base._REGISTRY.pop(ItemMean.name, None)


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
    assert recs.fallback is None
    assert np.all((recs.confidence >= 0) & (recs.confidence <= 1))


def test_unknown_user_gets_a_flagged_fallback():
    model, _, ds = _fitted()
    for user in (0, -1):  # cold in train, and not in the data at all
        recs = model.recommend(user, k=3)
        assert recs.fallback and "damped item mean" in recs.fallback
        assert recs.items.tolist() == np.argsort(-model.item_baseline_)[:3].tolist()
        assert all("fallback" in r for r in recs.to_records(ds))


def test_risk_aversion_demotes_high_variance_items():
    model, _, _ = _fitted()
    plain = model.recommend(1, k=model.n_items_, exclude_seen=False)
    averse = model.recommend(1, k=model.n_items_, exclude_seen=False, risk_aversion=5.0)
    # with a large lambda the order follows score - lambda*sigma, not score
    expected = np.argsort(-(model.means - 5.0 * model.item_sigma_), kind="stable")
    assert averse.items.tolist() == expected.tolist()
    assert plain.items.tolist() != averse.items.tolist()
    with pytest.raises(ConfigError):
        model.recommend(1, risk_aversion=-1)


def test_save_load_round_trip_is_exact(tmp_path):
    model, train, _ = _fitted()
    model.provenance = {"data": "tiny", "split": "random:0.9", "seed": 1}
    model.save(tmp_path / "m", metrics={"rmse": 1.0})
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["config.json", "manifest.json", "model.safetensors"]
    assert not list(tmp_path.glob(".m.*"))  # no temporary folder left behind
    loaded = Recommender.load(tmp_path / "m")
    u, i = train.users[:100], train.items[:100]
    np.testing.assert_array_equal(loaded.predict(u, i), model.predict(u, i))
    np.testing.assert_array_equal(loaded.score(np.array([1, 2])), model.score(np.array([1, 2])))
    assert loaded.provenance["split"] == "random:0.9"
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["metrics"]["rmse"] == 1.0 and "cinerec" in manifest["versions"]


def test_loading_an_incomplete_folder_is_a_clear_error(tmp_path):
    model, _, _ = _fitted()
    model.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="model.safetensors is missing"):
        Recommender.load(tmp_path / "m")
