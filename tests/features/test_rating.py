"""Paper 004's six rating features: values by hand and the train-only rule."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from cinerec.errors import StatsError
from cinerec.features import FEATURE_NAMES, FeatureStats, rating_features
from tests.conftest import make_ratings_dataset
from tests.stats._data import hand_dataset


def test_feature_values_by_hand_and_cold_fallback() -> None:
    # user 0 rates items 0,1 with 2,4; user 1 rates item 0 with 5. user 2 / item 2 are cold.
    train = hand_dataset([0, 0, 1], [0, 1, 0], [2, 4, 5], n_users=3, n_items=3)
    f = rating_features(train, np.array([0, 1, 2, -1]), np.array([0, 2, 1, 0]))
    assert f.shape == (4, 6) and len(FEATURE_NAMES) == 6
    gm, gs = 11 / 3, float(np.std([2, 4, 5]))
    assert f[0].tolist() == pytest.approx([3.0, 1.0, 2, 3.5, 1.5, 2])
    assert f[1].tolist() == pytest.approx([5.0, 0.0, 1, gm, gs, 0])  # cold item 2
    assert f[2].tolist() == pytest.approx([gm, gs, 0, 4.0, 0.0, 1])  # cold user 2
    assert f[3, :3].tolist() == pytest.approx([gm, gs, 0])  # unknown id (-1)
    # sample sd on request; a single rating falls back to the global sample sd
    fs = FeatureStats.fit(train, ddof=1)
    row = fs.transform(np.array([0, 1]), np.array([0, 0]))
    assert row[0, 1] == pytest.approx(math.sqrt(2.0))
    assert row[1, 1] == pytest.approx(float(np.std([2, 4, 5], ddof=1)))


def test_features_use_train_only() -> None:
    full = make_ratings_dataset(n_users=40, n_items=30, seed=4)
    rng = np.random.default_rng(0)
    is_test = rng.random(full.n_ratings) < 0.2
    train, test = full.subset(~is_test), full.subset(is_test)
    fs = FeatureStats.fit(train)
    before = fs.transform(test.users, test.items)
    # change every test rating: features of the test rows must not move
    changed = replace(full, ratings=np.where(is_test, 5.5 - full.ratings, full.ratings))
    after = FeatureStats.fit(changed.subset(~is_test)).transform(test.users, test.items)
    np.testing.assert_array_equal(before, after)
    # ... while changing a train rating does move them (the check can fail)
    bumped = replace(full, ratings=np.where(~is_test, 5.5 - full.ratings, full.ratings))
    moved = FeatureStats.fit(bumped.subset(~is_test)).transform(test.users, test.items)
    assert not np.allclose(before, moved)
    # counts are train counts
    np.testing.assert_array_equal(before[:, 2], train.user_counts[test.users])
    np.testing.assert_array_equal(before[:, 5], train.item_counts[test.items])


def test_feature_errors() -> None:
    train = hand_dataset([0], [0], [3.0])
    with pytest.raises(StatsError, match="same length"):
        FeatureStats.fit(train).transform(np.array([0, 0]), np.array([0]))
    with pytest.raises(StatsError, match="no ratings"):
        FeatureStats.fit(train.subset(np.zeros(0, dtype=np.int64)))
