"""Content models compress like every model with embedding tables, and a compressed
artifact still carries its feature pipeline."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from cinerec.artifacts import load_model, save_model
from cinerec.compress.api import compress_model
from cinerec.models.registry import create_model
from cinerec.testing.battery import fast_config, warm_part
from cinerec.testing.data import battery_data


@pytest.fixture(scope="module")
def data():
    return battery_data()


def _rmse(model, test) -> float:
    w = warm_part(model, test)
    return float(np.sqrt(np.mean((model.predict(w.users, w.items) - w.ratings) ** 2)))


@pytest.mark.parametrize("name", ["feature-mlp", "text-hybrid", "multimodal"])
def test_int8_tables_keep_accuracy_and_round_trip(name, data, tmp_path):
    train, test = data
    model = create_model(name, fast_config(name)).fit(train, options={"progress": False})
    before, tables = _rmse(model, test), set(model.embedding_tables())
    assert tables, f"{name} declares no embedding tables"
    compress_model(model, "int8")
    assert model.compression and model.compression.get("method") == "int8"
    assert abs(_rmse(model, test) - before) < 0.01
    scores = model.score(np.array([3, 4]))
    save_model(model, tmp_path / "a")
    back = load_model(tmp_path / "a")
    np.testing.assert_allclose(back.score(np.array([3, 4])), scores, atol=1e-5)
    # The pipeline travels with the compressed weights: a brand-new movie is scored.
    new = pl.DataFrame(
        {
            "item": [0],
            "movieId": [99999],
            "title": ["bright fast funny good"],
            "year": [2001],
            "genres": [["F0+", "F1+", "F2+"]],
        }
    )
    got = back.predict_new_items(np.array([3]), new)
    assert got.shape == (1, 1) and np.isfinite(got).all()
