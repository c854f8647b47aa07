"""timesvd: time-dependent biases that SVD cannot learn (the battery covers the contract)."""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.data.dataset import Dataset, IdMap
from cinerec.errors import ConfigError
from cinerec.models.query import History, Query
from cinerec.models.registry import create_model

DAY = 86_400
T0 = 1_000_000_000 // DAY  # a day number near 2001


def _dataset(u, i, r, days, n_users, n_items, name="drift") -> Dataset:
    ts = (T0 + np.asarray(days, dtype=np.int64)) * DAY + 3600
    return Dataset(
        name=name, users=u, items=i, ratings=np.clip(np.round(np.asarray(r) * 2) / 2, 0.5, 5.0),
        timestamps=ts, user_ids=IdMap(np.arange(n_users, dtype=np.int64) + 1),
        item_ids=IdMap(np.arange(n_items, dtype=np.int64) + 1), rating_scale=(0.5, 5.0),
    )  # fmt: skip


def _drifting(seed: int = 0, n_users: int = 150, n_items: int = 80) -> tuple[Dataset, Dataset]:
    """Users whose bias drifts by about +-1 over their 400 active days, plus low-rank
    taste; (train, test) = each user's first 80% / last 20% of ratings in time."""
    rng = np.random.default_rng(seed)
    us, its, ds = [], [], []
    start = rng.integers(0, 600, n_users)
    for u in range(n_users):
        items = rng.choice(n_items, 40, replace=False)
        us.append(np.full(40, u))
        its.append(items)
        ds.append(np.sort(start[u] + rng.integers(0, 400, 40)))
    u, i, d = np.concatenate(us), np.concatenate(its), np.concatenate(ds)
    slope = rng.choice([-1.0, 1.0], n_users) * rng.uniform(0.7, 1.2, n_users)
    p, q = rng.normal(0, 0.5, (n_users, 2)), rng.normal(0, 0.5, (n_items, 2))
    bi = rng.normal(0, 0.4, n_items)
    drift = slope[u] * ((d - start[u]) / 400.0 - 0.5) * 2
    r = 3.3 + bi[i] + drift + (p[u] * q[i]).sum(1) + rng.normal(0, 0.2, u.shape[0])
    full = _dataset(u, i, r, d, n_users, n_items)
    rank = np.zeros(u.shape[0], dtype=np.int64)
    for user in range(n_users):
        rows = np.flatnonzero(u == user)
        rank[rows] = np.arange(rows.size)  # rows are in time order per user
    later = rank >= 32
    return full.subset(~later, name="drift[train]"), full.subset(later, name="drift[test]")


def _rmse(model, test: Dataset) -> float:
    return float(np.sqrt(np.mean((model.predict(test.users, test.items) - test.ratings) ** 2)))


FAST = {"n_factors": 4, "epochs": 30, "seed": 3}


def test_beats_svd_on_the_later_ratings_when_user_biases_drift() -> None:
    train, test = _drifting()
    svd = create_model("svd", FAST).fit(train, options={"progress": False})
    tsvd = create_model("timesvd", FAST).fit(train, options={"progress": False})
    assert _rmse(tsvd, test) < _rmse(svd, test) - 0.05, (_rmse(tsvd, test), _rmse(svd, test))
    # and without its time terms the same model is no better than svd
    flat = create_model("timesvd", FAST | {"lr_alpha": 1e-12, "lr_bin": 1e-12, "lr_cu": 1e-12, "day_bias": False,
                                           "day_scale": False}).fit(train, options={"progress": False})  # fmt: skip
    assert _rmse(flat, test) > _rmse(tsvd, test) + 0.05


def test_time_bins_come_from_the_train_range_only() -> None:
    train, test = _drifting()
    m = create_model("timesvd", FAST | {"n_bins": 7}).fit(train, options={"progress": False})
    days = train.timestamps // DAY
    assert (m.day_min_, m.day_max_) == (days.min(), days.max())
    later = test.timestamps // DAY
    assert later.max() > days.max()  # the test part runs past the train range ...
    bins = m.day_bins(days)
    assert bins.min() == 0 and bins.max() == 6 and (np.diff(m.day_bins(np.sort(days))) >= 0).all()
    assert (m.day_bins(later[later > days.max()]) == 6).all()  # ... and is clipped, not rebinned
    expect = np.histogram(days, bins=7, range=(days.min(), days.max() + 1))[0]
    np.testing.assert_array_equal(np.bincount(bins, minlength=7), expect)
    # the test part changes nothing: fitting again on train alone gives the same model
    again = create_model("timesvd", FAST | {"n_bins": 7}).fit(train, options={"progress": False})
    np.testing.assert_array_equal(again.bibin_, m.bibin_)


def test_a_users_day_bias_is_learned() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items = 40, 60
    u = np.repeat(np.arange(n_users), 30)
    i = np.concatenate([rng.choice(n_items, 30, replace=False) for _ in range(n_users)])
    d = np.tile(np.repeat(np.arange(0, 300, 20), 2), n_users)  # 15 days of 2 ratings ...
    d[u == 5] = np.repeat([10, 50, 90], 10)  # ... but user 5 rates on 3 days, 10 each
    bi = rng.normal(0, 0.3, n_items)
    r = 3.0 + bi[i] + rng.normal(0, 0.1, u.shape[0])
    r[(u == 5) & (d == 50)] += 1.5  # a good day
    train = _dataset(u, i, r, d, n_users, n_items)
    m = create_model("timesvd", {"n_factors": 2, "epochs": 40, "lr_day": 0.02, "reg_day": 0.05}).fit(
        train, options={"progress": False})
    good, other = m.day_bias(5, T0 + 50), [m.day_bias(5, T0 + x) for x in (10, 90)]
    assert good > 0.6 and max(abs(x) for x in other) < good / 2, (good, other)
    assert m.day_bias(5, T0 + 51) == 0.0  # a day the user did not rate on
    # the day's mood is in the in-time prediction, not in "now" (day 90 is the last)
    items = np.arange(n_items)
    users = np.full(n_items, 5)
    at_good = m.predict_at(users, items, np.full(n_items, (T0 + 50) * DAY))
    at_last = m.predict_at(users, items, np.full(n_items, (T0 + 90) * DAY))
    assert np.mean(at_good - at_last) > 0.6
    off = create_model("timesvd", {"n_factors": 2, "epochs": 40, "day_bias": False}).fit(train, options={"progress": False})
    assert off.day_bias(5, T0 + 50) == 0.0


def test_explanations_add_up_to_the_prediction_and_fold_in_ignores_time() -> None:
    train, _ = _drifting()
    m = create_model("timesvd", FAST | {"lr_alpha": 0.01, "reg_alpha": 0.01}).fit(train, options={"progress": False})
    items = np.arange(10)
    for e, p in zip(m._explain_many(7, items), m._predict(np.full(10, 7), items), strict=True):
        assert e.total == pytest.approx(p, abs=1e-4)
        assert sum(v for _, v in e.parts) == pytest.approx(e.total, abs=1e-9)
    h = History(np.arange(20, dtype=np.int64), np.full(20, 4.0, dtype=np.float32))
    rec = m.recommend(Query(history=h), k=5)
    assert rec.basis == "fold-in"
    movie = dict(rec.explanations[0].parts)["movie bias"]
    assert movie == pytest.approx(m.item_bias_now_[rec.items[0]])


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"n_bins": 0}, "n_bins"), ({"beta": 1.5}, "beta"), ({"item_time": "later"}, "item_time"),
     ({"lr_alpha": 0}, "lr_alpha"), ({"n_bin": 3}, "n_bin")],
)  # fmt: skip
def test_config_errors_name_the_field(bad, field) -> None:
    with pytest.raises(ConfigError, match=field) as err:
        create_model("timesvd", bad)
    assert "timesvd" in str(err.value)
