"""AutoRec: sparse item-based autoencoder beats the mean and persists exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cinerec.artifacts import load_model, save_model
from cinerec.models.registry import create_model
from tests.conftest import make_ratings_dataset

FAST = {
    "epochs": 12, "hidden": 32, "lr": 1e-2, "batch_size": 8, "weight_decay": 0.01,
    "early_stopping_patience": None,
}


@pytest.fixture(scope="module")
def split():
    d = make_ratings_dataset(n_users=100, n_items=80, density=0.3, seed=5, noise=0.2)
    mask = np.random.default_rng(2).random(d.n_ratings) < 0.2
    return d.subset(~mask), d.subset(mask)


@pytest.fixture(scope="module")
def model(split):
    return create_model("autorec", FAST).fit(split[0])


def test_beats_mean(model, split) -> None:
    train, test = split
    warm = test.subset(train.user_counts[test.users] > 0)
    mean = create_model("mean").fit(train)
    rmse = np.sqrt(np.mean((model.predict(warm.users, warm.items) - warm.ratings) ** 2))
    base = np.sqrt(np.mean((mean.predict(warm.users, warm.items) - warm.ratings) ** 2))
    assert rmse < 0.97 * base


def test_sparse_encoding_equals_dense_autoencoder(model, split) -> None:
    train = split[0]
    m = model.module_
    dense = torch.from_numpy(train.to_csr().T.toarray())  # items x users, 0 = missing
    with torch.no_grad():
        h = torch.sigmoid(dense @ m.encoder.weight + m.encoder_bias)
        recon = h @ m.decoder.weight.T + m.decoder_bias.weight.T
    users = np.array([0, 3, 5])
    np.testing.assert_allclose(model._score(users), recon[:, users].T.numpy(), rtol=1e-4, atol=1e-4)


def test_save_load_identical(model, split, tmp_path) -> None:
    test = split[1]
    save_model(model, tmp_path / "ar")
    loaded = load_model(tmp_path / "ar")
    np.testing.assert_array_equal(loaded.predict(test.users, test.items), model.predict(test.users, test.items))
    np.testing.assert_array_equal(loaded.score(np.arange(4)), model.score(np.arange(4)))


def test_tables_exposed(model) -> None:
    tables = model.embedding_tables()
    assert set(tables) == {"encoder", "decoder"}
    assert tables["decoder"].num_embeddings == model.n_users_


def test_finetune_keeps_every_train_rating_as_input(split) -> None:
    train, _ = split
    # early stopping holds a tenth of train out of training, not out of the input
    m = create_model("autorec", FAST | {"epochs": 2, "early_stopping_patience": 2}).fit(train)
    assert m.input_users_.shape[0] == train.n_ratings
    before = m.predict(train.users[:50], train.items[:50])
    m.finetune(train, epochs=1, lr=1e-9)  # a step that cannot move the weights
    assert m.input_users_.shape[0] == train.n_ratings
    np.testing.assert_allclose(m.predict(train.users[:50], train.items[:50]), before, atol=1e-4)
