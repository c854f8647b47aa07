"""Sequence models (gru4rec, sasrec) on data where order is everything.

The shared battery (tests/models/test_battery.py) checks the contract; these tests
check what only a sequence model can do: every user walks a cycle of items
(i, i + 1, i + 2 ...), so the next item follows from the last one, whatever the user.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cinerec.data.dataset import Dataset, IdMap
from cinerec.errors import ConfigError
from cinerec.models.query import History, Query
from cinerec.models.registry import create_model
from cinerec.models.sequence.base import SequenceConfig, sequence_loss

N_ITEMS = 30
FAST = {"epochs": 30, "embedding_dim": 32, "max_len": 8, "batch_size": 32, "lr": 5e-3, "dropout": 0.0,
        "early_stopping_patience": None}


def cycles(n_users: int = 80, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    for u in range(n_users):
        n = int(rng.integers(8, 16))
        start = int(rng.integers(N_ITEMS))
        users += [u] * n
        items += [(start + j) % N_ITEMS for j in range(n)]
        ts += list(10_000 * u + 60 * np.arange(n))
    users, items, ts = np.array(users), np.array(items), np.array(ts)
    order = rng.permutation(users.shape[0])  # rows not in time order: the model must sort
    return Dataset(
        name="cycles", users=users[order], items=items[order], ratings=np.full(users.shape[0], 4.0)[order],
        timestamps=ts[order], user_ids=IdMap(np.arange(n_users) + 1), item_ids=IdMap(np.arange(N_ITEMS) + 1),
        rating_scale=(0.5, 5.0),
    )


@pytest.fixture(scope="module")
def data() -> Dataset:
    return cycles()


@pytest.fixture(scope="module", params=["sasrec", "gru4rec"])
def fitted(request, data):
    return create_model(request.param, FAST).fit(data, options={"progress": False})


def _history(items: list[int], timestamps: list[int] | None = None) -> History:
    return History(np.array(items), np.full(len(items), 4.0), None if timestamps is None else np.array(timestamps))


def test_a_new_visitor_gets_the_next_item_of_the_cycle(fitted):
    for start in (0, 7, 25):
        hist = [(start + j) % N_ITEMS for j in range(5)]
        rec = fitted.recommend(Query(history=_history(hist)), k=3)
        assert rec.basis == "fold-in"
        assert rec.items[0] == (start + 5) % N_ITEMS, (start, rec.items)


def test_order_decides_and_timestamps_order_a_history(fitted):
    forward = fitted.recommend(Query(history=_history([10, 11, 12, 13])), k=1).items[0]
    backward = fitted.recommend(Query(history=_history([13, 12, 11, 10])), k=1).items[0]
    assert forward == 14 and backward != forward
    timed = _history([13, 12, 11, 10], timestamps=[40, 30, 20, 10])  # really 10, 11, 12, 13
    assert fitted.recommend(Query(history=timed), k=1).items[0] == 14


def test_a_known_user_is_scored_from_his_latest_items(fitted, data):
    hits = 0
    for u in range(20):
        hist = fitted.train_history(u)
        last = int(hist.items[-1])
        hits += int(fitted.recommend(u, k=1).items[0] == (last + 1) % N_ITEMS)
        # fresh feedback moves the list on
        after = fitted.recommend(Query(user=u, history=_history([(last + 1) % N_ITEMS])), k=1).items[0]
        hits += int(after == (last + 2) % N_ITEMS)
    assert hits >= 36


def test_the_explanation_names_recent_items(fitted):
    rec = fitted.recommend(Query(history=_history([3, 4, 5, 6])), k=1)
    why = rec.explanations[0]
    assert why.kind == "because_you_rated" and set(why.items) <= {3, 4, 5, 6} and why.items


@pytest.mark.parametrize("loss", ["sampled-ce", "bpr-max", "bce", "gbce"])
def test_every_loss_learns_the_cycle(loss, data):
    cfg = FAST | {"loss": loss, "n_negatives": 8, "epochs": 40}
    model = create_model("sasrec", cfg).fit(data, options={"progress": False})
    right = sum(int(model.recommend(Query(history=_history([s, s + 1, s + 2])), k=3).items[0] == s + 3)
                for s in range(0, 24, 3))
    assert right >= 6, loss


def test_rating_and_time_inputs_train_and_round_trip(data, tmp_path):
    from cinerec.artifacts import load_model, save_model

    model = create_model("gru4rec", FAST | {"use_ratings": True, "use_time_gaps": True, "epochs": 5})
    model.fit(data, options={"progress": False})
    assert model.module_.rating_emb is not None and model.module_.gap_emb is not None
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    users = np.arange(10)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))


def test_early_stopping_watches_held_out_next_items(data):
    model = create_model("sasrec", FAST | {"epochs": 60, "early_stopping_patience": 2, "valid_fraction": 0.1})
    model.fit(data, options={"progress": False})
    h = model.history_
    assert all(v is not None and 0 <= v <= 1 for v in h.valid_loss)
    assert min(h.valid_loss) < 0.5  # 1 - NDCG@10 of each user's latest items
    assert h.best_loss == min(h.valid_loss)


def test_gbce_with_t_zero_is_bce():
    torch.manual_seed(0)
    table = torch.nn.Embedding(11, 4)
    hidden, targets = torch.randn(6, 4), torch.randint(1, 11, (6,))
    negs = torch.randint(1, 11, (6, 3))
    bce = sequence_loss(SequenceConfig(loss="bce"), table, hidden, targets, negs, 10)
    gbce0 = sequence_loss(SequenceConfig(loss="gbce", gbce_t=0.0), table, hidden, targets, negs, 10)
    gbce1 = sequence_loss(SequenceConfig(loss="gbce", gbce_t=1.0), table, hidden, targets, negs, 10)
    torch.testing.assert_close(bce, gbce0)
    assert gbce1 < bce  # beta < 1 down-weights the positive term (alpha = 3/9)


def test_bad_configs_are_clear():
    with pytest.raises(ConfigError, match="n_heads"):
        create_model("sasrec", {"embedding_dim": 10, "n_heads": 3}).fit(cycles(10), options={"progress": False})
    with pytest.raises(ConfigError, match="loss"):
        create_model("gru4rec", {"loss": "mse"})
    with pytest.raises(ConfigError, match="max_len"):
        create_model("sasrec", {"max_len": 0})


def test_a_horizon_teaches_the_items_after_the_next(data):
    """With horizon 3 the model learns the next three items of the cycle, so all three
    rank above the rest; with horizon 1 only the next one is learnt."""
    model = create_model("sasrec", FAST | {"horizon": 3, "epochs": 40}).fit(data, options={"progress": False})
    got = [set(model.recommend(Query(history=_history([s, s + 1, s + 2])), k=3).items.tolist()) for s in range(0, 24, 4)]
    assert sum(g == {s + 3, s + 4, s + 5} for g, s in zip(got, range(0, 24, 4), strict=True)) >= 5
    with pytest.raises(ConfigError, match="horizon"):
        create_model("sasrec", {"horizon": 3, "loss": "bce"})


def test_target_min_rating_filters_what_is_learnt(data):
    """Every rating of the cycles is 4: a 4.5 threshold leaves nothing to learn."""
    create_model("gru4rec", FAST | {"epochs": 1, "target_min_rating": 4.0}).fit(data, options={"progress": False})
    with pytest.raises(ConfigError, match="no rows"):
        create_model("gru4rec", FAST | {"epochs": 1, "target_min_rating": 4.5}).fit(data, options={"progress": False})
