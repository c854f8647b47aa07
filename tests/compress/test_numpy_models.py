"""Compression of the numpy factor models (svd, svdpp, als, ials) through the same codecs
as the torch models: ratio, prediction cost, save/load, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cinerec.artifacts import load_model, save_model
from cinerec.compress.api import compress_model, embedding_bytes
from cinerec.compress.codecs import NumpyTable
from cinerec.errors import ConfigError
from cinerec.models import create_model
from tests.conftest import make_ratings_dataset

QUIET = {"progress": False}
CONFIGS = {
    "svd": {"n_factors": 16, "epochs": 5},
    "svdpp": {"n_factors": 16, "epochs": 3},
    "als": {"n_factors": 16, "epochs": 3},
    "ials": {"n_factors": 16, "epochs": 3},
}


@pytest.fixture(scope="module")
def data():
    return make_ratings_dataset(n_users=120, n_items=90, density=0.25, seed=7)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize(("method", "opts", "min_ratio"), [
    ("int8", {}, 3.2),
    ("int4", {}, 5.3),
    ("pq", {"subvectors": 4, "centroids": 8, "min_rows": 0}, 1.5),
])  # fmt: skip
def test_numpy_model_compresses_saves_and_loads(tmp_path: Path, data, name: str, method: str, opts: dict, min_ratio: float) -> None:
    model = create_model(name, CONFIGS[name]).fit(data, options=QUIET)
    users = np.arange(6)
    ref_scores = model.score(users)
    compress_model(model, method, **opts)
    assert all(isinstance(t, NumpyTable) for t in model.embedding_tables().values())
    assert embedding_bytes(model)["ratio"] >= min_ratio
    scores = model.score(users)
    # The ranking barely moves: the top-10 of the compressed model overlaps the fp32 one.
    top_ref = np.argsort(-ref_scores, axis=1)[:, :10]
    top = np.argsort(-scores, axis=1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_ref, top, strict=True)])
    assert overlap >= (0.7 if method != "pq" else 0.3)
    save_model(model, tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert loaded.compression["method"] == method
    np.testing.assert_allclose(loaded.score(users), scores, atol=1e-4)
    rec = loaded.recommend(0, k=5)
    assert rec.items.shape == (5,)


def test_int8_svd_rmse_cost_is_small(data) -> None:
    model = create_model("svd", CONFIGS["svd"]).fit(data, options=QUIET)
    truth = data.ratings.astype(np.float64)
    before = np.sqrt(np.mean((model.predict(data.users, data.items) - truth) ** 2))
    compress_model(model, "int8")
    after = np.sqrt(np.mean((model.predict(data.users, data.items) - truth) ** 2))
    assert abs(after - before) < 0.01


def test_retraining_methods_are_refused_for_numpy_models(data) -> None:
    model = create_model("svd", CONFIGS["svd"]).fit(data, options=QUIET)
    for method in ("qat-int4", "hash", "qr"):
        with pytest.raises(ConfigError, match="numpy model"):
            compress_model(model, method, train=data)
    with pytest.raises(ConfigError, match="numpy model"):
        compress_model(model, "pq", train=data, finetune_epochs=1)
    with pytest.raises(ConfigError, match="no factor or embedding tables"):
        compress_model(create_model("bias").fit(data, options=QUIET), "int8")
