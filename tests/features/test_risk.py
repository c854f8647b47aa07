"""item_risk: the per-item signals used by every model's recommend."""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.features.risk import SUPPORT_PRIOR, item_risk
from cinerec.stats import movie_stats
from tests.conftest import make_ratings_dataset
from tests.stats._data import hand_dataset


def test_item_risk_matches_movie_stats_and_bounds() -> None:
    ds = make_ratings_dataset(n_users=40, n_items=25, seed=6)
    risk = item_risk(ds)
    assert set(risk) == {"sigma", "consistency", "polarization", "confidence", "count"}
    for v in risk.values():
        assert v.shape == (ds.n_items,)
    m = movie_stats(ds)
    idx = m.get_column("item").to_numpy()
    np.testing.assert_allclose(risk["sigma"][idx], m.get_column("sigma").to_numpy())
    np.testing.assert_allclose(risk["polarization"][idx], m.get_column("polarization").to_numpy())
    for key in ("consistency", "polarization", "confidence"):
        assert ((risk[key] >= 0) & (risk[key] <= 1)).all()


def test_confidence_by_hand_and_unrated_items() -> None:
    # item 0: 2 ratings 1 and 4 (sigma 1.5); item 1: one rating; item 2: none
    ds = hand_dataset([0, 1, 0], [0, 0, 1], [1, 4, 3], n_items=3)
    risk = item_risk(ds)
    assert risk["sigma"].tolist() == pytest.approx([1.5, 0.0, 0.0])
    cons0 = 1 - 1.5 / 2.25
    assert risk["confidence"][0] == pytest.approx(cons0 * 2 / (2 + SUPPORT_PRIOR))
    assert risk["confidence"][1] == pytest.approx(1 / (1 + SUPPORT_PRIOR))
    assert risk["confidence"][2] == 0.0 and risk["count"][2] == 0
    assert risk["polarization"].tolist() == pytest.approx([1.0, 0.0, 0.0])
