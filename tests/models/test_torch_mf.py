"""TorchMF: fits, persists, exposes its tables to the compression hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cinerec.artifacts import load_model, save_model
from cinerec.models.registry import create_model
from tests.conftest import make_ratings_dataset

FAST = {"epochs": 15, "batch_size": 64, "n_factors": 8}


@pytest.fixture(scope="module")
def split():
    d = make_ratings_dataset(n_users=80, n_items=50, density=0.35, seed=4, noise=0.2)
    mask = np.random.default_rng(1).random(d.n_ratings) < 0.2
    return d.subset(~mask), d.subset(mask)


@pytest.fixture(scope="module")
def model(split):
    return create_model("mf-torch", FAST).fit(split[0])


def _rmse(p: np.ndarray, r: np.ndarray) -> float:
    return float(np.sqrt(np.mean((p - r) ** 2)))


def test_beats_mean_and_score_matches_predict(model, split) -> None:
    train, test = split
    mean = create_model("mean").fit(train)
    assert _rmse(model.predict(test.users, test.items), test.ratings) < 0.95 * _rmse(
        mean.predict(test.users, test.items), test.ratings
    )
    users = np.array([1, 2, 3])
    s = model._score(users)
    items = np.arange(train.n_items)
    direct = model._predict(np.repeat(users, train.n_items), np.tile(items, 3)).reshape(3, -1)
    np.testing.assert_allclose(s, direct, rtol=1e-5, atol=1e-5)


def test_save_load_identical(model, split, tmp_path) -> None:
    test = split[1]
    save_model(model, tmp_path / "mf")
    loaded = load_model(tmp_path / "mf")
    np.testing.assert_array_equal(loaded.predict(test.users, test.items), model.predict(test.users, test.items))
    assert loaded.compression is None


class _DotAllTable(nn.Module):
    """A stand-in for a quantized table: forward + dot_all, no usable .weight."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("codes", weight.clone())
        self.dot_all_calls = 0

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.codes[idx]

    def dot_all(self, x: torch.Tensor) -> torch.Tensor:
        self.dot_all_calls += 1
        return x @ self.codes.T


def test_compression_hooks(split) -> None:
    model = create_model("mf-torch", FAST, epochs=2).fit(split[0])
    tables = model.embedding_tables()
    assert set(tables) == {"user_emb", "item_emb"}
    before = model.score(np.array([1, 2]))
    new = _DotAllTable(tables["item_emb"].weight.detach())
    model.replace_embedding("item_emb", new)
    assert model.embedding_tables()["item_emb"] is new
    np.testing.assert_allclose(model.score(np.array([1, 2])), before, rtol=1e-5)
    assert new.dot_all_calls > 0
    assert model.artifact_extra() == {"compression": None}
    hist = model.finetune(split[0], epochs=1)
    assert len(hist) == 1


def test_same_seed_same_predictions(split) -> None:
    train, test = split
    a = create_model("mf-torch", FAST, epochs=3).fit(train)
    b = create_model("mf-torch", FAST, epochs=3).fit(train)
    np.testing.assert_array_equal(a.predict(test.users, test.items), b.predict(test.users, test.items))
