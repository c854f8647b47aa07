"""`blend`: the stacking arithmetic, what it refuses, its explanation and its artifact.
(The battery runs every generic check on it too: tests/models/test_battery.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.artifacts import load_model, save_model
from cinerec.data.splits import random_split
from cinerec.errors import ConfigError
from cinerec.models.explain import ScoreBreakdown
from cinerec.models.query import History, Query
from cinerec.models.registry import create_model
from cinerec.testing.data import battery_data

MEMBERS = [
    {"name": "svd", "params": {"n_factors": 8, "epochs": 12}},
    {"name": "item-knn", "params": {"k": 20}},
    {"name": "bias"},
]
QUIET = {"progress": False}


@pytest.fixture(scope="module")
def data():
    return battery_data()


@pytest.fixture(scope="module")
def fitted(data):
    return create_model("blend", members=MEMBERS, meta_features=True).fit(data[0], options=QUIET)


def test_weights_are_the_least_squares_fit_of_the_held_out_part(data) -> None:
    """Rebuild the held-out part, fit the members on the rest and solve the normal
    equations by hand: the blend's coefficients must be that solution."""
    train = data[0]
    blend = create_model("blend", members=MEMBERS, ridge=0.0, refit=False).fit(train, options=QUIET)
    inner = random_split(train, test_frac=0.1, seed=42)
    members = [create_model(m["name"], m.get("params", {})).fit(inner.train, options=QUIET) for m in MEMBERS]
    held = inner.test
    warm = members[0].fallback_kind(held.users, held.items) == 0
    x = np.column_stack([m.predict(held.users[warm], held.items[warm]) for m in members] + [np.ones(warm.sum())])
    want, *_ = np.linalg.lstsq(x.astype(np.float64), held.ratings[warm].astype(np.float64), rcond=None)
    np.testing.assert_allclose(blend.coef_, want, rtol=1e-6, atol=1e-8)
    # without refit the members are the ones fitted on the rest: the blend's
    # predictions are that linear combination, clipped to the scale
    test = data[1]
    ok = blend.fallback_kind(test.users, test.items) == 0
    pairs = test.users[ok], test.items[ok]
    stacked = np.column_stack([m.predict(*pairs) for m in members] + [np.ones(ok.sum())]) @ want
    np.testing.assert_allclose(blend.predict(*pairs), np.clip(stacked, 0.5, 5.0), rtol=1e-5, atol=1e-5)


def test_on_the_held_out_part_the_blend_is_no_worse_than_any_member(data) -> None:
    """Least squares with an intercept can put weight 1 on one member: in-sample it
    cannot lose to any of them (with meta features too)."""
    blend = create_model("blend", members=MEMBERS, ridge=0.0, meta_features=True).fit(data[0], options=QUIET)
    scores = blend.valid_rmse_
    assert set(scores) == {"blend", "svd", "item-knn", "bias"}
    assert all(scores["blend"] <= scores[m] + 1e-9 for m in ("svd", "item-knn", "bias")), scores


def test_ridge_shrinks_the_member_weights(data) -> None:
    free = create_model("blend", members=MEMBERS, ridge=0.0, refit=False).fit(data[0], options=QUIET)
    tight = create_model("blend", members=MEMBERS, ridge=1e6, refit=False).fit(data[0], options=QUIET)
    assert np.abs(tight.coef_[:-1]).sum() < 0.5 * np.abs(free.coef_[:-1]).sum()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([{"name": "no-such-model"}], "no model named"),
        ([{"name": "ease"}], "does not predict ratings: use rank-blend"),
        ([{"name": "blend"}], "cannot be a member"),
        ([{"name": "svd", "params": {"n_factors": -3}}], "member 'svd'"),
        ([{"name": "svd", "params": {"colour": 1}}], "member 'svd'"),
        ([], "at least 1"),
    ],
)
def test_bad_members_are_refused_with_the_member_named(members, message) -> None:
    with pytest.raises(ConfigError, match=message):
        create_model("blend", members=members)


def test_explanation_parts_add_up_to_the_prediction(fitted, data) -> None:
    test = data[1]
    ok = np.flatnonzero(fitted.fallback_kind(test.users, test.items) == 0)[:5]
    for n in ok:
        u, i = int(test.users[n]), int(test.items[n])
        why = fitted.explain(u, i)
        assert isinstance(why, ScoreBreakdown)
        assert [p[0].split(" ")[0] for p in why.parts] == ["svd", "item-knn", "bias", "intercept"]
        assert why.total == pytest.approx(sum(v for _, v in why.parts))
        want = float(fitted.predict(np.array([u]), np.array([i]))[0])
        if 0.5 < why.total < 5.0:  # not clipped
            assert why.total == pytest.approx(want, abs=1e-4)


def test_a_history_is_folded_in_by_every_member(fitted, data) -> None:
    history = fitted.train_history(7)
    rec = fitted.recommend(Query(history=History(history.items, history.ratings)), k=10)
    assert rec.basis == "fold-in" and len(rec.items) == 10
    assert not np.isin(rec.items, history.items).any()
    # a blend with a member that cannot fold in falls back, and says why
    no_fold = create_model("blend", members=[{"name": "bias"}, {"name": "ncf", "params": {"epochs": 1}}])
    no_fold.fit(data[0], options=QUIET)
    rec = no_fold.recommend(Query(history=history), k=5)
    assert rec.basis == "fallback" and "fold" in rec.fallback.reason


def test_artifact_round_trip_keeps_every_member(fitted, data, tmp_path) -> None:
    path = save_model(fitted, tmp_path / "blend")
    back = load_model(path)
    test = data[1]
    np.testing.assert_array_equal(back.predict(test.users, test.items), fitted.predict(test.users, test.items))
    assert [m.name for m in back.members_] == ["svd", "item-knn", "bias"]
    assert back.weights() == fitted.weights()
    np.testing.assert_array_equal(back.recommend(7, k=10).items, fitted.recommend(7, k=10).items)


# ---- rank-blend ---------------------------------------------------------------------
RANK_MEMBERS = [{"name": "ease", "params": {"reg": 20.0}}, {"name": "item-knn", "params": {"k": 20}}]


def test_rank_blend_is_the_weighted_sum_of_per_user_standardised_scores(data) -> None:
    train = data[0]
    blend = create_model("rank-blend", members=RANK_MEMBERS, weights=[1.0, 0.5]).fit(train, options=QUIET)
    users = np.array([3, 7, 11])
    warm = train.item_counts > 0
    want = 0.0
    for spec, w in zip(RANK_MEMBERS, [1.0, 0.5], strict=True):
        s = create_model(spec["name"], spec["params"]).fit(train, options=QUIET).score(users).astype(np.float64)
        v = s[:, warm]
        want = want + w * (v - v.mean(axis=1, keepdims=True)) / v.std(axis=1, keepdims=True)
    np.testing.assert_allclose(blend.score(users)[:, warm], want, rtol=1e-4, atol=1e-4)
    # weight 0 on item-knn ranks exactly as ease does
    only_ease = create_model("rank-blend", members=RANK_MEMBERS, weights=[1.0, 0.0]).fit(train, options=QUIET)
    ease = create_model("ease", reg=20.0).fit(train, options=QUIET)
    np.testing.assert_array_equal(only_ease.recommend(7, k=10).items, ease.recommend(7, k=10).items)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"weights": [1.0]}, "one weight per member"),
        ({"weights": [1.0, -0.2]}, ">= 0"),
        ({"weights": [0.0, 0.0]}, "at least one weight"),
        ({"members": [{"name": "rank-blend"}]}, "cannot be a member"),
    ],
)
def test_rank_blend_refuses_bad_weights(config, message) -> None:
    with pytest.raises(ConfigError, match=message):
        create_model("rank-blend", config)


def test_rank_blend_members_without_weights_weigh_one_each() -> None:
    m = create_model("rank-blend", members=[{"name": "ease"}, {"name": "popular"}, {"name": "svd"}])
    assert m.config.weights == [1.0, 1.0, 1.0]


def test_rank_blend_round_trips_and_folds_in(data, tmp_path) -> None:
    blend = create_model("rank-blend", members=RANK_MEMBERS).fit(data[0], options=QUIET)
    back = load_model(save_model(blend, tmp_path / "rb"))
    np.testing.assert_array_equal(back.score(np.arange(10)), blend.score(np.arange(10)))
    history = blend.train_history(7)
    rec = back.recommend(Query(history=history), k=10)
    assert rec.basis == "fold-in" and not np.isin(rec.items, history.items).any()
    why = back.explain(7, int(back.recommend(7, k=1).items[0]))
    assert isinstance(why, ScoreBreakdown) and [p[0].split(" ")[0] for p in why.parts] == ["ease", "item-knn"]
